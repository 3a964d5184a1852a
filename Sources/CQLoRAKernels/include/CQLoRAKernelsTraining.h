// Elementwise and row kernels of the training ops (softmax rows, cross-entropy rows, SwiGLU backward).
// AVX2 and portable paths run the same float32 operations in the same order (no FMA contraction, the same
// 8-lane accumulation and lane-combining tree, the same exp), so their results are bit-identical; the path
// is chosen by the `path` argument, as for qlk_dequant4.
#ifndef QLORA_CQLORAKERNELS_TRAINING_H
#define QLORA_CQLORAKERNELS_TRAINING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// e^x as the kernels compute it (Cephes expf: x = n·ln2 + r, degree-5 polynomial, 2^n in the exponent bits;
/// x clamped to [-87.33654, 88]); within 2 ulp of the true value. For tests.
float qlk_exp(float x);

/// dst[i] = e^(src[i] - shift) for i < n (dst may equal src, or be NULL to only sum); returns the sum of those
/// values accumulated in 8 lanes (element i in lane i % 8) combined as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
float qlk_exp_shifted_sum(const float *src, float *dst, int64_t n, float shift, int path);

/// p[i] *= s for i < n.
void qlk_scale(float *p, int64_t n, float s, int path);

/// Attention backward row: p[i] = e^(p[i] - lse); ds[i] = (p[i] * (ds[i] - delta)) * scale, for i < n.
void qlk_softmax_backward_row(float *p, float *ds, int64_t n, float lse, float delta, float scale, int path);

/// SwiGLU backward: with s = 1 / (1 + e^-g), dgate = (dy * u) * (s * (1 + g * (1 - s))), dup = dy * (g * s).
/// dgate or dup may alias dy.
void qlk_swiglu_backward(const float *dy, const float *gate, const float *up, float *dgate, float *dup, int64_t n, int path);

/// RMSNorm backward of one row of width `dim`: with rstd = 1 / sqrt(Σx²/dim + eps) and c = rstd³ · Σ(dy·w·x) / dim,
/// dx[i] (+)= rstd·(dy[i]·w[i]) − c·x[i] (added when `accumulate`); when `dweight` is non-NULL,
/// dweight[i] += dy[i]·(x[i]·rstd). Sums use 8 lanes combined as in qlk_exp_shifted_sum.
void qlk_rmsnorm_backward_row(const float *dy, const float *x, const float *weight, float *dx, float *dweight, int64_t dim,
                              float eps, int accumulate, int path);

/// SwiGLU forward: out[i] = (g / (1 + e^-g)) · up[i] with g = gate[i] (the kernels' exp).
void qlk_swiglu(const float *gate, const float *up, float *out, int64_t n, int path);

/// Inverted dropout with a counter-based mask (dropout.c): dst[i] = src[i]·scale when element start+i of the
/// stream `key` is kept (the top 24 bits of its hash are ≥ threshold), else 0. dst may equal src. Chunks of one
/// stream can be processed separately and in any order.
void qlk_dropout(const float *src, float *dst, int64_t n, uint64_t start, uint64_t key, uint32_t threshold, float scale, int path);

#ifdef __cplusplus
}
#endif
#endif
