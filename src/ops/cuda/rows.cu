// Row-wise kernels over the last axis ($T is float or double): one block per row.

// $BEGIN softmax
// Softmax (log_softmax == 0) or LogSoftmax (log_softmax == 1) of each row.
extern "C" __global__ void k(const $T* x, $T* y, long long rows, long long cols,
                             int log_softmax) {
    __shared__ $T shared[256];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const $T* xr = x + r * cols;
        $T* yr = y + r * cols;
        $T m, s;
        row_max_sumexp(xr, cols, shared, m, s);
        $T ls = log(s);
        for (long long j = threadIdx.x; j < cols; j += blockDim.x)
            yr[j] = log_softmax ? xr[j] - m - ls : exp(xr[j] - m) / s;
    }
}
// $END

// $BEGIN sparse_xent
// SparseSoftmaxCrossEntropyWithLogits: loss[r] = logsumexp(row) - row[label], backprop =
// softmax(row) - onehot(label). A label outside [0, cols) gives NaN (as TensorFlow's GPU
// kernel does).
extern "C" __global__ void k(const $T* x, const $L* labels, $T* loss, $T* back,
                             long long rows, long long cols) {
    __shared__ $T shared[256];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const $T* xr = x + r * cols;
        $T* br = back + r * cols;
        long long label = (long long)labels[r];
        bool ok = label >= 0 && label < cols;
        $T m, s;
        row_max_sumexp(xr, cols, shared, m, s);
        $T ls = log(s);
        for (long long j = threadIdx.x; j < cols; j += blockDim.x)
            br[j] = ok ? exp(xr[j] - m) / s - (j == label ? ($T)1 : ($T)0) : ($T)NAN;
        if (threadIdx.x == 0) loss[r] = ok ? ls + m - xr[label] : ($T)NAN;
    }
}
// $END

// $BEGIN xent
// SoftmaxCrossEntropyWithLogits with dense labels: loss[r] = sum(labels * (logsumexp -
// logits)), backprop = softmax - labels.
extern "C" __global__ void k(const $T* x, const $T* labels, $T* loss, $T* back,
                             long long rows, long long cols) {
    __shared__ $T shared[256];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const $T* xr = x + r * cols;
        const $T* lr = labels + r * cols;
        $T* br = back + r * cols;
        $T m, s;
        row_max_sumexp(xr, cols, shared, m, s);
        $T ls = log(s);
        $T l = 0;
        for (long long j = threadIdx.x; j < cols; j += blockDim.x) {
            l += lr[j] * (ls + m - xr[j]);
            br[j] = exp(xr[j] - m) / s - lr[j];
        }
        l = block_sum(l, shared);
        if (threadIdx.x == 0) loss[r] = l;
    }
}
// $END
