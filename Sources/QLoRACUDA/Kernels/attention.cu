// Causal attention with grouped-query heads and packed documents, flash-style in memory: the forward pass keeps a
// running max and sum per query row (online softmax) and saves only the row's logsumexp; the backward pass recomputes
// the probabilities from it. One warp per (row, head); each lane holds the head dimensions d ≡ lane (mod 32), up to
// QL_MAX_HEAD_DIM. Keys are visited in increasing order and every sum has a fixed order, so results do not depend on
// the launch; the backward pass writes dq per query row and dk/dv per key row, with no atomics.
// Layouts: q, out, dOut, dq [rows, heads, headDim]; k, v, dk, dv [keys, kvHeads, headDim]; logsumexp and delta
// [rows, heads]; starts[t] = the first row of t's document (null: 0 for every row).
#include "qlora_math.h"

#define QL_MAX_HEAD_DIM 256
#define QL_LANE_DIMS (QL_MAX_HEAD_DIM / 32)

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/// starts[t] = the first row of t's document: the smallest s ≤ t with documents[s ... t] all equal. One thread per row.
extern "C" __global__ void ql_document_starts(const int *documents, int *starts, ql_i64 rows) {
    for (ql_i64 t = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; t < rows; t += (ql_i64)gridDim.x * blockDim.x) {
        ql_i64 s = t;
        while (s > 0 && documents[s - 1] == documents[t]) s--;
        starts[t] = (int)s;
    }
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

/// dq[t, h] = scale · Σ_s p(t, s)·(dOut_t·v_s − delta_t)·k_s, p = exp(scale·q_t·k_s − lse_t). One warp per (t, h).
extern "C" __global__ void ql_attention_backward_dq_f32(const float *dOut, const float *q, const float *k, const float *v,
                                                        const float *logsumexp, const float *delta, float *dq, const int *starts,
                                                        ql_i64 rows, ql_i64 heads, ql_i64 kvHeads, ql_i64 headDim, float scale) {
    const int lane = threadIdx.x & 31;
    const ql_i64 warp = (ql_i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (warp >= rows * heads) return;
    const ql_i64 t = warp / heads, h = warp % heads, kvh = h / (heads / kvHeads);
    const ql_i64 qStride = heads * headDim, kvStride = kvHeads * headDim;
    float qv[QL_LANE_DIMS], gv[QL_LANE_DIMS], acc[QL_LANE_DIMS];
    for (int j = 0; j < QL_LANE_DIMS; j++) {
        const ql_i64 d = lane + 32 * j;
        qv[j] = d < headDim ? q[t * qStride + h * headDim + d] : 0.0f;
        gv[j] = d < headDim ? dOut[t * qStride + h * headDim + d] : 0.0f;
        acc[j] = 0.0f;
    }
    const float lse = logsumexp[t * heads + h], dl = delta[t * heads + h];
    for (ql_i64 s = starts ? starts[t] : 0; s <= t; s++) {
        const float *ks = k + s * kvStride + kvh * headDim, *vs = v + s * kvStride + kvh * headDim;
        float dot = 0.0f, dov = 0.0f;
        for (int j = 0; j < QL_LANE_DIMS; j++) {
            const ql_i64 d = lane + 32 * j;
            if (d < headDim) { dot += qv[j] * ks[d]; dov += gv[j] * vs[d]; }
        }
        dot = warp_sum(dot);
        dov = warp_sum(dov);
        const float p = expf(dot * scale - lse), ds = p * (dov - dl) * scale;
        for (int j = 0; j < QL_LANE_DIMS; j++) {
            const ql_i64 d = lane + 32 * j;
            if (d < headDim) acc[j] += ds * ks[d];
        }
    }
    for (int j = 0; j < QL_LANE_DIMS; j++) {
        const ql_i64 d = lane + 32 * j;
        if (d < headDim) dq[t * qStride + h * headDim + d] = acc[j];
    }
}

/// dk[s, g] and dv[s, g] for key row s and kv head g: sums over the group's query heads (in order) and the query rows
/// t ≥ s of s's document (in order). One warp per (s, g).
extern "C" __global__ void ql_attention_backward_dkdv_f32(const float *dOut, const float *q, const float *k, const float *v,
                                                          const float *logsumexp, const float *delta, float *dk, float *dv,
                                                          const int *starts, ql_i64 rows, ql_i64 heads, ql_i64 kvHeads,
                                                          ql_i64 headDim, float scale) {
    const int lane = threadIdx.x & 31;
    const ql_i64 warp = (ql_i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (warp >= rows * kvHeads) return;
    const ql_i64 s = warp / kvHeads, g = warp % kvHeads, group = heads / kvHeads;
    const ql_i64 qStride = heads * headDim, kvStride = kvHeads * headDim;
    float kv[QL_LANE_DIMS], vv[QL_LANE_DIMS], dka[QL_LANE_DIMS], dva[QL_LANE_DIMS];
    for (int j = 0; j < QL_LANE_DIMS; j++) {
        const ql_i64 d = lane + 32 * j;
        kv[j] = d < headDim ? k[s * kvStride + g * headDim + d] : 0.0f;
        vv[j] = d < headDim ? v[s * kvStride + g * headDim + d] : 0.0f;
        dka[j] = 0.0f;
        dva[j] = 0.0f;
    }
    const ql_i64 document = starts ? starts[s] : 0;
    for (ql_i64 h = g * group; h < (g + 1) * group; h++) {
        for (ql_i64 t = s; t < rows && (starts ? starts[t] : 0) == document; t++) {
            const float *qt = q + t * qStride + h * headDim, *gt = dOut + t * qStride + h * headDim;
            float dot = 0.0f, dov = 0.0f;
            for (int j = 0; j < QL_LANE_DIMS; j++) {
                const ql_i64 d = lane + 32 * j;
                if (d < headDim) { dot += qt[d] * kv[j]; dov += gt[d] * vv[j]; }
            }
            dot = warp_sum(dot);
            dov = warp_sum(dov);
            const float p = expf(dot * scale - logsumexp[t * heads + h]);
            const float ds = p * (dov - delta[t * heads + h]) * scale;
            for (int j = 0; j < QL_LANE_DIMS; j++) {
                const ql_i64 d = lane + 32 * j;
                if (d < headDim) { dka[j] += ds * qt[d]; dva[j] += p * gt[d]; }
            }
        }
    }
    for (int j = 0; j < QL_LANE_DIMS; j++) {
        const ql_i64 d = lane + 32 * j;
        if (d < headDim) { dk[s * kvStride + g * headDim + d] = dka[j]; dv[s * kvStride + g * headDim + d] = dva[j]; }
    }
}
