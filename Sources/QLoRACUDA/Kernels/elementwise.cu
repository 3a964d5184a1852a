// Row and element ops of a LLaMA block, fp32 in and out (bf16 tensors go through ql_cast_*): RMSNorm and its
// backward, RoPE in place, SwiGLU and its backward, residual add, bias add, scaling, the embedding gather and the
// bf16 casts. Reductions run in a fixed order per row (block-wide tree over a fixed thread count), so results do not
// depend on the launch; no atomics.
#include "qlora_math.h"

#define QL_ROW_THREADS 256

// Sum of `v` over the block's QL_ROW_THREADS threads (fixed tree); every thread gets the result.
static __device__ float block_sum(float v, float *shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = 0.0f;
    if (threadIdx.x < 32) {
        t = threadIdx.x < (QL_ROW_THREADS / 32) ? shared[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
        if (threadIdx.x == 0) shared[0] = t;
    }
    __syncthreads();
    t = shared[0];
    __syncthreads();
    return t;
}

/// out[r, :] = x[r, :] / sqrt(mean(x²) + eps) · w; also writes 1/rms per row to `inverseRMS` when non-null (backward).
/// One block of QL_ROW_THREADS per row.
extern "C" __global__ void ql_rmsnorm_f32(const float *x, const float *w, float *out, float *inverseRMS, ql_i64 rows, ql_i64 dim,
                                          float eps) {
    __shared__ float shared[32];
    for (ql_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * dim;
        float ss = 0.0f;
        for (ql_i64 i = threadIdx.x; i < dim; i += QL_ROW_THREADS) ss += xr[i] * xr[i];
        const float inv = rsqrtf(block_sum(ss, shared) / (float)dim + eps);
        if (inverseRMS && threadIdx.x == 0) inverseRMS[r] = inv;
        for (ql_i64 i = threadIdx.x; i < dim; i += QL_ROW_THREADS) out[r * dim + i] = xr[i] * inv * w[i];
    }
}

/// dx[r, :] = inv·(dy∘w) − x·inv³·mean((dy∘w)∘x), with inv = 1/rms of the row (recomputed, and written to
/// `inverseRMS` when non-null for ql_rmsnorm_weight_grad_f32). One block per row.
extern "C" __global__ void ql_rmsnorm_backward_f32(const float *dy, const float *x, const float *w, float *dx, float *inverseRMS,
                                                   ql_i64 rows, ql_i64 dim, float eps, int accumulate) {
    __shared__ float shared[32];
    for (ql_i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * dim, *dyr = dy + r * dim;
        float ss = 0.0f, dot = 0.0f;
        for (ql_i64 i = threadIdx.x; i < dim; i += QL_ROW_THREADS) {
            ss += xr[i] * xr[i];
            dot += dyr[i] * w[i] * xr[i];
        }
        ss = block_sum(ss, shared);
        dot = block_sum(dot, shared);
        const float inv = rsqrtf(ss / (float)dim + eps);
        if (inverseRMS && threadIdx.x == 0) inverseRMS[r] = inv;
        const float c = dot / (float)dim * inv * inv * inv;
        for (ql_i64 i = threadIdx.x; i < dim; i += QL_ROW_THREADS) {
            const float g = dyr[i] * w[i] * inv - xr[i] * c;
            dx[r * dim + i] = accumulate ? dx[r * dim + i] + g : g;
        }
    }
}

/// dWeight[i] (+)= Σ_r dy[r, i]·x[r, i]·inv(r): one thread per column, rows summed in order (deterministic).
extern "C" __global__ void ql_rmsnorm_weight_grad_f32(const float *dy, const float *x, const float *inverseRMS, float *dWeight,
                                                      ql_i64 rows, ql_i64 dim) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < dim; i += (ql_i64)gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (ql_i64 r = 0; r < rows; r++) s += dy[r * dim + i] * x[r * dim + i] * inverseRMS[r];
        dWeight[i] += s;
    }
}

/// RoPE in place on x [rows, heads, headDim] with tables cos/sin [rows, headDim/2]; `inverse` = the backward rotation.
/// One thread per pair (exact: qlora_math.h's ql_rope_pair, as the CPU backend computes it).
extern "C" __global__ void ql_rope_f32(float *x, const float *cosTable, const float *sinTable, ql_i64 rows, ql_i64 heads,
                                       ql_i64 headDim, int inverse) {
    const ql_i64 half = headDim / 2, pairs = rows * heads * half;
    for (ql_i64 p = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; p < pairs; p += (ql_i64)gridDim.x * blockDim.x) {
        const ql_i64 i = p % half, th = p / half, t = th / heads;
        float *base = x + th * headDim;
        ql_rope_pair(base + i, base + i + half, cosTable[t * half + i], sinTable[t * half + i], inverse);
    }
}

/// out = silu(gate) · up.
extern "C" __global__ void ql_swiglu_f32(const float *gate, const float *up, float *out, ql_i64 count) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x) {
        const float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        out[i] = g * s * up[i];
    }
}

/// dGate = dOut·up·silu'(gate), dUp = dOut·silu(gate).
extern "C" __global__ void ql_swiglu_backward_f32(const float *dOut, const float *gate, const float *up, float *dGate, float *dUp,
                                                  ql_i64 count) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x) {
        const float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        dUp[i] = dOut[i] * g * s;
        dGate[i] = dOut[i] * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

/// x += y.
extern "C" __global__ void ql_add_f32(float *x, const float *y, ql_i64 count) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x) x[i] += y[i];
}

/// x[r, :] += bias.
extern "C" __global__ void ql_add_bias_f32(float *x, const float *bias, ql_i64 rows, ql_i64 width) {
    const ql_i64 count = rows * width;
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x) x[i] += bias[i % width];
}

/// x *= s.
extern "C" __global__ void ql_scale_f32(float *x, float s, ql_i64 count) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x) x[i] = ql_mul(x[i], s);
}

/// out[r, :] = table[ids[r], :].
extern "C" __global__ void ql_embedding_f32(const float *table, const int *ids, float *out, ql_i64 rows, ql_i64 dim) {
    const ql_i64 count = rows * dim;
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x)
        out[i] = table[(ql_i64)ids[i / dim] * dim + i % dim];
}

/// dTable[v, :] += Σ_{r: ids[r] = v} dOut[r, :]: one thread per (vocabulary row, column), rows in order (no atomics).
extern "C" __global__ void ql_embedding_backward_f32(const float *dOut, const int *ids, float *dTable, ql_i64 rows, ql_i64 dim,
                                                     ql_i64 vocab) {
    const ql_i64 count = vocab * dim;
    for (ql_i64 e = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; e < count; e += (ql_i64)gridDim.x * blockDim.x) {
        const ql_i64 v = e / dim, i = e % dim;
        float s = dTable[e];
        for (ql_i64 r = 0; r < rows; r++) if (ids[r] == v) s += dOut[r * dim + i];
        dTable[e] = s;
    }
}

/// bf16 ⇄ fp32 (round to nearest even; exact the other way).
extern "C" __global__ void ql_cast_f32_bf16(const float *x, ql_u16 *out, ql_i64 count) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x)
        out[i] = ql_bf16_from_float(x[i]);
}

extern "C" __global__ void ql_cast_bf16_f32(const ql_u16 *x, float *out, ql_i64 count) {
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x)
        out[i] = ql_bf16_to_float(x[i]);
}
