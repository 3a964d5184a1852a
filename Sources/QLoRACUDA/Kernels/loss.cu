// Cross-entropy over a chunk of logit rows: the CUDA backend computes the logits of a few hundred rows at a time
// (one GEMM against the LM head), runs this kernel, and turns them into dlogits in place, so the whole
// [tokens, vocab] matrix never exists. One block per row; fixed reduction order; no atomics.
#include "qlora_math.h"

#define QL_CE_THREADS 256

static __device__ float block_reduce(float v, float *shared, int isMax) {
    for (int o = 16; o > 0; o >>= 1) {
        const float other = __shfl_xor_sync(0xffffffffu, v, o);
        v = isMax ? fmaxf(v, other) : v + other;
    }
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        float t = threadIdx.x < (QL_CE_THREADS / 32) ? shared[threadIdx.x] : (isMax ? -INFINITY : 0.0f);
        for (int o = 16; o > 0; o >>= 1) {
            const float other = __shfl_xor_sync(0xffffffffu, t, o);
            t = isMax ? fmaxf(t, other) : t + other;
        }
        if (threadIdx.x == 0) shared[0] = t;
    }
    __syncthreads();
    const float r = shared[0];
    __syncthreads();
    return r;
}

/// For each row r with targets[r] ≥ 0: loss[r] = logsumexp(logits[r]) − logits[r, target]; with `writeGradient`,
/// logits[r] becomes gradScale·(softmax − onehot) in place. Rows with a negative target (masked) get loss 0 and,
/// with `writeGradient`, a zero gradient row. The host sums `loss` in row order (double).
extern "C" __global__ void ql_cross_entropy_f32(float *logits, const int *targets, float *loss, ql_i64 rows, ql_i64 vocab,
                                                float gradScale, int writeGradient) {
    __shared__ float shared[32];
    for (ql_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        float *row = logits + r * vocab;
        const int target = targets[r];
        if (target < 0) {
            if (threadIdx.x == 0) loss[r] = 0.0f;
            if (writeGradient) for (ql_i64 i = threadIdx.x; i < vocab; i += QL_CE_THREADS) row[i] = 0.0f;
            continue;
        }
        float m = -INFINITY;
        for (ql_i64 i = threadIdx.x; i < vocab; i += QL_CE_THREADS) m = fmaxf(m, row[i]);
        m = block_reduce(m, shared, 1);
        float s = 0.0f;
        for (ql_i64 i = threadIdx.x; i < vocab; i += QL_CE_THREADS) s += expf(row[i] - m);
        s = block_reduce(s, shared, 0);
        const float lse = m + logf(s);
        const float picked = row[target];
        __syncthreads();
        if (threadIdx.x == 0) loss[r] = lse - picked;
        if (writeGradient) {
            for (ql_i64 i = threadIdx.x; i < vocab; i += QL_CE_THREADS) {
                const float p = expf(row[i] - lse);
                row[i] = gradScale * (p - (i == target ? 1.0f : 0.0f));
            }
        }
    }
}
