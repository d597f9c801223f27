// Reductions over any set of axes: one block per output element; the threads of a block
// stride over the reduced elements, then combine in shared memory. The generator
// (reduce.rs) substitutes $T (element type), $INIT, $COMBINE(a, b) and $FINAL (of acc and
// count, the number of elements reduced).
#define COMBINE(a, b) ($COMBINE)

extern "C" __global__ void k(const $T* in, $T* out, long long outputs, long long count,
                             int krank, Dims8 kdims, Dims8 kstrides,
                             int rrank, Dims8 rdims, Dims8 rstrides) {
    __shared__ $T shared[256];
    for (long long o = blockIdx.x; o < outputs; o += gridDim.x) {
        long long base = offset_of(o, krank, kdims, kstrides);
        $T acc = $INIT;
        for (long long j = threadIdx.x; j < count; j += blockDim.x) {
            $T v = in[base + offset_of(j, rrank, rdims, rstrides)];
            acc = COMBINE(acc, v);
        }
        shared[threadIdx.x] = acc;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s) {
                $T a = shared[threadIdx.x], b = shared[threadIdx.x + s];
                shared[threadIdx.x] = COMBINE(a, b);
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            acc = shared[0];
            out[o] = $FINAL;
        }
        __syncthreads();
    }
}
