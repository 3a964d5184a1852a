// Causal attention with grouped-query heads and packed documents. Decoding's forward (a few query rows against the KV
// cache) is flash-style in memory: a running max and sum per query row (online softmax), one warp per (row, head), each
// lane holding the head dimensions d ≡ lane (mod 32), up to QL_MAX_HEAD_DIM; keys in increasing order and every sum in
// a fixed order, so results do not depend on the launch. Training attention, forward and backward, is batched GEMMs
// (Sources/QLoRACUDA/GEMMAttention.swift) around the two row kernels at the end of this file.
// Layouts: q, out, dOut, dq [rows, heads, headDim]; k, v, dk, dv [keys, kvHeads, headDim]; logsumexp and delta
// [rows, heads]; starts[t] = the first row of t's document (null: 0 for every row).
#include "qlora_math.h"

#define QL_MAX_HEAD_DIM 256
#define QL_LANE_DIMS (QL_MAX_HEAD_DIM / 32)

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/// Rows t in [0, rows) are queries at positions offset + t (decoding: offset = the cached length, starts null); they
/// see keys starts[t] ... offset + t.
extern "C" __global__ void ql_attention_forward_f32(const float *q, const float *k, const float *v, float *out, float *logsumexp,
                                                    const int *starts, ql_i64 rows, ql_i64 offset, ql_i64 heads, ql_i64 kvHeads,
                                                    ql_i64 headDim, float scale) {
    const int lane = threadIdx.x & 31;
    const ql_i64 warp = (ql_i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (warp >= rows * heads) return;
    const ql_i64 t = warp / heads, h = warp % heads, kvh = h / (heads / kvHeads);
    const ql_i64 qStride = heads * headDim, kvStride = kvHeads * headDim;
    float qv[QL_LANE_DIMS], acc[QL_LANE_DIMS];
    for (int j = 0; j < QL_LANE_DIMS; j++) {
        const ql_i64 d = lane + 32 * j;
        qv[j] = d < headDim ? q[t * qStride + h * headDim + d] : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const ql_i64 first = starts ? starts[t] : 0, last = offset + t;
    for (ql_i64 s = first; s <= last; s++) {
        const float *ks = k + s * kvStride + kvh * headDim, *vs = v + s * kvStride + kvh * headDim;
        float dot = 0.0f;
        for (int j = 0; j < QL_LANE_DIMS; j++) {
            const ql_i64 d = lane + 32 * j;
            if (d < headDim) dot += qv[j] * ks[d];
        }
        const float score = warp_sum(dot) * scale;
        const float mNew = fmaxf(m, score);
        const float correction = expf(m - mNew), p = expf(score - mNew);
        l = l * correction + p;
        for (int j = 0; j < QL_LANE_DIMS; j++) {
            const ql_i64 d = lane + 32 * j;
            if (d < headDim) acc[j] = acc[j] * correction + p * vs[d];
        }
        m = mNew;
    }
    for (int j = 0; j < QL_LANE_DIMS; j++) {
        const ql_i64 d = lane + 32 * j;
        if (d < headDim) out[t * qStride + h * headDim + d] = acc[j] / l;
    }
    if (logsumexp && lane == 0) logsumexp[t * heads + h] = m + logf(l);
}

/// delta[t, h] = Σ_d dOut[t, h, d]·out[t, h, d].
extern "C" __global__ void ql_attention_delta_f32(const float *dOut, const float *out, float *delta, ql_i64 rows, ql_i64 heads,
                                                  ql_i64 headDim) {
    const int lane = threadIdx.x & 31;
    const ql_i64 warp = (ql_i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (warp >= rows * heads) return;
    float s = 0.0f;
    for (ql_i64 d = lane; d < headDim; d += 32) s += dOut[warp * headDim + d] * out[warp * headDim + d];
    s = warp_sum(s);
    if (lane == 0) delta[warp] = s;
}

// Training attention runs as batched cuBLASLt GEMMs (Sources/QLoRACUDA/GEMMAttention.swift); these two row kernels
// are its softmax and its score gradients, over one chunk of scores [batch][nq][nk]: batch g, local row i is query row
// t = r0 + i of head h = g·group + j; column c is key firstKey + c; the row sees keys starts[t] ≤ key ≤ t.

#define QL_ROW_THREADS 256

// A fixed tree over the block's 256 threads (the same order on every launch); every thread gets the result.
static __device__ __forceinline__ float block_reduce(float v, float *shared, bool isMax) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int o = QL_ROW_THREADS / 2; o > 0; o >>= 1) {
        if (threadIdx.x < o) {
            const float other = shared[threadIdx.x + o];
            shared[threadIdx.x] = isMax ? fmaxf(shared[threadIdx.x], other) : shared[threadIdx.x] + other;
        }
        __syncthreads();
    }
    const float result = shared[0];
    __syncthreads();
    return result;
}

/// P = exp(scale·S − lse) over the visible keys, 0 elsewhere, in place. forward: lse = log Σ exp(scale·S) over the
/// visible keys, written to lse[t·heads + h]; else lse is read from there. One block of 256 threads per row.
extern "C" __global__ void ql_attention_softmax_rows_f32(float *scores, const int *starts, float *lse, int forward, ql_i64 r0,
                                                         ql_i64 firstKey, ql_i64 nq, ql_i64 nk, ql_i64 batch, ql_i64 heads,
                                                         ql_i64 group, ql_i64 j, float scale) {
    __shared__ float shared[QL_ROW_THREADS];
    const ql_i64 row = blockIdx.x;
    if (row >= batch * nq) return;   // whole blocks only: the reductions below need every thread
    const ql_i64 g = row / nq, t = r0 + row % nq, h = g * group + j;
    float *s = scores + row * nk;
    const ql_i64 lo = (starts ? (ql_i64)starts[t] : 0) - firstKey, hi = t - firstKey;
    float l;
    if (forward) {
        float m = -INFINITY;
        for (ql_i64 c = lo + threadIdx.x; c <= hi; c += QL_ROW_THREADS) m = fmaxf(m, scale * s[c]);
        m = block_reduce(m, shared, true);
        float sum = 0.0f;
        for (ql_i64 c = lo + threadIdx.x; c <= hi; c += QL_ROW_THREADS) sum += expf(scale * s[c] - m);
        sum = block_reduce(sum, shared, false);
        l = m + logf(sum);
        if (threadIdx.x == 0) lse[t * heads + h] = l;
    } else {
        l = lse[t * heads + h];
    }
    for (ql_i64 c = threadIdx.x; c < nk; c += QL_ROW_THREADS) s[c] = c >= lo && c <= hi ? expf(scale * s[c] - l) : 0.0f;
}

/// dS = scale · P ⊙ (dP − delta[t·heads + h]), in place over dP. Grid-stride over batch·nq·nk.
extern "C" __global__ void ql_attention_score_grad_f32(float *dScores, const float *p, const float *delta, ql_i64 r0, ql_i64 nq,
                                                       ql_i64 nk, ql_i64 batch, ql_i64 heads, ql_i64 group, ql_i64 j, float scale) {
    const ql_i64 count = batch * nq * nk;
    for (ql_i64 idx = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; idx < count; idx += (ql_i64)gridDim.x * blockDim.x) {
        const ql_i64 row = idx / nk, g = row / nq, t = r0 + row % nq, h = g * group + j;
        dScores[idx] = scale * p[idx] * (dScores[idx] - delta[t * heads + h]);
    }
}
