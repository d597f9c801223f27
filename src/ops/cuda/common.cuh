// Shared by every generated kernel: shapes up to rank 8 passed by value, the offset of an
// element of a (broadcast) operand from the flat index of the output, and block
// reductions in shared memory.
struct Dims8 { long long v[8]; };

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif

// Offset into an operand with `strides` (0 along broadcast axes) of output element `i`
// of an output with `dims`, both of rank `rank`.
__device__ __forceinline__ long long offset_of(long long i, int rank, const Dims8& dims,
                                               const Dims8& strides) {
    long long off = 0;
    for (int d = rank - 1; d >= 0; --d) {
        long long c = i % dims.v[d];
        i /= dims.v[d];
        off += c * strides.v[d];
    }
    return off;
}

#define GRID_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

// Block-wide reductions (blockDim.x a power of two, at most 1024); every thread gets the
// result.
template <typename T>
__device__ T block_sum(T v, T* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    T r = shared[0];
    __syncthreads();
    return r;
}

template <typename T>
__device__ T block_max(T v, T* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s && shared[threadIdx.x + s] > shared[threadIdx.x])
            shared[threadIdx.x] = shared[threadIdx.x + s];
        __syncthreads();
    }
    T r = shared[0];
    __syncthreads();
    return r;
}

// The largest element of a row and the sum of exp(x - largest), on every thread.
template <typename T>
__device__ void row_max_sumexp(const T* xr, long long cols, T* shared, T& m, T& s) {
    m = -(T)INFINITY;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) m = xr[j] > m ? xr[j] : m;
    m = block_max(m, shared);
    s = 0;
    for (long long j = threadIdx.x; j < cols; j += blockDim.x) s += exp(xr[j] - m);
    s = block_sum(s, shared);
}
