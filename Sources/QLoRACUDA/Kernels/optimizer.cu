// The exact training kernels: counter-based dropout (the CPU backend's masks, bit for bit), the AdamW update
// (PyTorch's arithmetic, bit for bit) and the two passes of a deterministic global gradient norm. Compiled with
// --fmad=false (an exact family); the math is qlora_math.h's.
#include "qlora_math.h"

/// dst[i] = keeps(start + i) ? src[i]·scale : 0.
extern "C" __global__ void ql_dropout_f32(const float *src, float *dst, ql_i64 count, ql_u64 start, ql_u64 key, ql_u32 threshold,
                                          float scale) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x)
        dst[i] = ql_dropout(src[i], start + (ql_u64)i, key, threshold, scale);
}

/// One AdamW update of every element.
extern "C" __global__ void ql_adamw_f32(float *p, const float *g, float *m, float *v, ql_i64 count, ql_adamw_step step) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x)
        ql_adamw(p + i, g[i], m + i, v + i, step);
}

#define QL_NORM_THREADS 256

/// Pass 1: partials[b] = Σ x[i]² (in double) over the elements of chunk b (chunkSize elements, the chunk split fixed by the
/// caller, independent of the GPU); one block of QL_NORM_THREADS per chunk, a fixed tree inside it.
extern "C" __global__ void ql_sum_squares_partial(const float *x, ql_i64 count, ql_i64 chunkSize, double *partials) {
    __shared__ double shared[QL_NORM_THREADS];
    const ql_i64 b = blockIdx.x, lo = b * chunkSize, hi = lo + chunkSize < count ? lo + chunkSize : count;
    double s = 0.0;
    for (ql_i64 i = lo + threadIdx.x; i < hi; i += QL_NORM_THREADS) s += (double)x[i] * (double)x[i];
    shared[threadIdx.x] = s;
    __syncthreads();
    for (int stride = QL_NORM_THREADS / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[b] = shared[0];
}

/// Pass 2: *total = Σ partials[b] in index order (one thread: the partial count is small).
extern "C" __global__ void ql_sum_partials(const double *partials, ql_i64 count, double *total) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        double s = 0.0;
        for (ql_i64 i = 0; i < count; i++) s += partials[i];
        *total = s;
    }
}
