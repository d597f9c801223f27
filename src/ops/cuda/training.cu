// In-place optimizer updates ($T is float or double). Hyper-parameters are device scalars
// (read by the kernel: no host round trip).

// $BEGIN sgd
extern "C" __global__ void k($T* var, const $T* alpha, const $T* delta, long long n) {
    $T a = alpha[0];
    GRID_LOOP(i, n) { var[i] -= a * delta[i]; }
}
// $END

// $BEGIN adam
// TensorFlow's ApplyAdam: lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); m += (g - m)(1 -
// beta1); v += (g^2 - v)(1 - beta2); var -= lr_t * m' / (sqrt(v) + eps), with m' = m, or
// m * beta1 + g * (1 - beta1) for Nesterov.
extern "C" __global__ void k($T* var, $T* m, $T* v, const $T* beta1_power,
                             const $T* beta2_power, const $T* lr, const $T* beta1,
                             const $T* beta2, const $T* epsilon, const $T* grad,
                             long long n, int nesterov) {
    $T b1 = beta1[0], b2 = beta2[0], eps = epsilon[0];
    $T alpha = lr[0] * sqrt(($T)1 - beta2_power[0]) / (($T)1 - beta1_power[0]);
    GRID_LOOP(i, n) {
        $T g = grad[i];
        $T mi = m[i] + (g - m[i]) * (($T)1 - b1);
        $T vi = v[i] + (g * g - v[i]) * (($T)1 - b2);
        m[i] = mi;
        v[i] = vi;
        $T step = nesterov ? mi * b1 + g * (($T)1 - b1) : mi;
        var[i] -= step * alpha / (sqrt(vi) + eps);
    }
}
// $END
