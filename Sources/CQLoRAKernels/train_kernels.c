#include "CQLoRAKernels.h"

#include <math.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QLK_X86 1
#endif

// ------------------------------------------------------------------------------------------------ portable

#define EXP_LO -87.33654f
#define EXP_HI 88.0f  // keeps 2^n finite (n ≤ 127)
#define LOG2E 1.44269504088896341f
#define MAGIC 12582912.0f  // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define P0 1.9875691500e-4f
#define P1 1.3981999507e-3f
#define P2 8.3334519073e-3f
#define P3 4.1665795894e-2f
#define P4 1.6666665459e-1f
#define P5 5.0000001201e-1f

float qlk_exp(float x) {
    x = x > EXP_LO ? x : EXP_LO;  // as maxps(x, lo): NaN → lo
    x = x < EXP_HI ? x : EXP_HI;
    float shifted = x * LOG2E;
    shifted = shifted + MAGIC;
    float n = shifted - MAGIC;
    float r = x - n * LN2_HI;
    r = r - n * LN2_LO;
    float p = P0;
    p = p * r + P1;
    p = p * r + P2;
    p = p * r + P3;
    p = p * r + P4;
    p = p * r + P5;
    p = p * (r * r);
    p = p + r;
    p = p + 1.0f;
    union { float f; int32_t i; } sh = {shifted}, two;
    two.i = (sh.i - 0x4B400000 + 127) << 23;
    return p * two.f;
}

static float combine8(const float l[8]) {
    float t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    float u0 = t0 + t2, u1 = t1 + t3;
    return u0 + u1;
}

static float exp_shifted_sum_scalar(const float *src, float *dst, int64_t n, float shift) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        float e = qlk_exp(src[i] - shift);
        acc[i & 7] += e;
        if (dst) dst[i] = e;
    }
    return combine8(acc);
}

static float silu_grad_parts(float dy, float g, float u, float *dup) {
    float s = 1.0f / (1.0f + qlk_exp(-g));
    *dup = dy * (g * s);
    return (dy * u) * (s * (1.0f + g * (1.0f - s)));
}

static void rmsnorm_backward_row_scalar(const float *dy, const float *x, const float *w, float *dx, float *dweight,
                                        int64_t dim, float eps, int accumulate) {
    float sq[8] = {0, 0, 0, 0, 0, 0, 0, 0}, dot[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < dim; i++) {
        sq[i & 7] += x[i] * x[i];
        dot[i & 7] += (dy[i] * w[i]) * x[i];
    }
    const float rstd = 1.0f / sqrtf(combine8(sq) / (float)dim + eps);
    const float c = ((rstd * rstd) * rstd) * combine8(dot) / (float)dim;
    for (int64_t i = 0; i < dim; i++) {
        float d = rstd * (dy[i] * w[i]) - c * x[i];
        dx[i] = accumulate ? dx[i] + d : d;
        if (dweight) dweight[i] += dy[i] * (x[i] * rstd);
    }
}

// ------------------------------------------------------------------------------------------------ AVX2

#ifdef QLK_X86
__attribute__((target("avx2,fma")))
static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_LO));
    x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
    __m256 shifted = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _mm256_set1_ps(MAGIC));
    __m256 n = _mm256_sub_ps(shifted, _mm256_set1_ps(MAGIC));
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)));
    __m256 p = _mm256_set1_ps(P0);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P1));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P2));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P3));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P4));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(P5));
    p = _mm256_mul_ps(p, _mm256_mul_ps(r, r));
    p = _mm256_add_ps(p, r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000)), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

__attribute__((target("avx2,fma")))
static inline float combine8_avx2(__m256 acc) {
    float l[8];
    _mm256_storeu_ps(l, acc);
    return combine8(l);
}

__attribute__((target("avx2,fma")))
static float exp_shifted_sum_avx2(const float *src, float *dst, int64_t n, float shift) {
    __m256 acc = _mm256_setzero_ps();
    const __m256 s = _mm256_set1_ps(shift);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(src + i), s));
        acc = _mm256_add_ps(acc, e);
        if (dst) _mm256_storeu_ps(dst + i, e);
    }
    float l[8];
    _mm256_storeu_ps(l, acc);
    for (; i < n; i++) {  // the tail as the scalar path does it: same exp, same lane
        float e = qlk_exp(src[i] - shift);
        l[i & 7] += e;
        if (dst) dst[i] = e;
    }
    return combine8(l);
}

__attribute__((target("avx2,fma")))
static void scale_avx2(float *p, int64_t n, float s) {
    const __m256 v = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), v));
    for (; i < n; i++) p[i] *= s;
}

__attribute__((target("avx2,fma")))
static void softmax_backward_row_avx2(float *p, float *ds, int64_t n, float lse, float delta, float scale) {
    const __m256 l = _mm256_set1_ps(lse), d = _mm256_set1_ps(delta), sc = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 prob = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + i), l));
        _mm256_storeu_ps(p + i, prob);
        _mm256_storeu_ps(ds + i, _mm256_mul_ps(_mm256_mul_ps(prob, _mm256_sub_ps(_mm256_loadu_ps(ds + i), d)), sc));
    }
    for (; i < n; i++) {
        float prob = qlk_exp(p[i] - lse);
        p[i] = prob;
        ds[i] = (prob * (ds[i] - delta)) * scale;
    }
}

__attribute__((target("avx2,fma")))
static void swiglu_backward_avx2(const float *dy, const float *gate, const float *up, float *dgate, float *dup, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_loadu_ps(dy + i), g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, g))));
        __m256 du = _mm256_mul_ps(y, _mm256_mul_ps(g, s));
        __m256 dg = _mm256_mul_ps(_mm256_mul_ps(y, u),
                                  _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s)))));
        _mm256_storeu_ps(dup + i, du);
        _mm256_storeu_ps(dgate + i, dg);
    }
    for (; i < n; i++) {
        float du;
        float dg = silu_grad_parts(dy[i], gate[i], up[i], &du);
        dup[i] = du;
        dgate[i] = dg;
    }
}

__attribute__((target("avx2,fma")))
static void rmsnorm_backward_row_avx2(const float *dy, const float *x, const float *w, float *dx, float *dweight,
                                      int64_t dim, float eps, int accumulate) {
    __m256 sqv = _mm256_setzero_ps(), dotv = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        sqv = _mm256_add_ps(sqv, _mm256_mul_ps(xv, xv));
        dotv = _mm256_add_ps(dotv, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), _mm256_loadu_ps(w + i)), xv));
    }
    float sq[8], dot[8];
    _mm256_storeu_ps(sq, sqv);
    _mm256_storeu_ps(dot, dotv);
    for (int64_t j = i; j < dim; j++) {
        sq[j & 7] += x[j] * x[j];
        dot[j & 7] += (dy[j] * w[j]) * x[j];
    }
    const float rstd = 1.0f / sqrtf(combine8(sq) / (float)dim + eps);
    const float c = ((rstd * rstd) * rstd) * combine8(dot) / (float)dim;
    const __m256 rv = _mm256_set1_ps(rstd), cv = _mm256_set1_ps(c);
    for (i = 0; i + 8 <= dim; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i), gv = _mm256_loadu_ps(dy + i);
        __m256 d = _mm256_sub_ps(_mm256_mul_ps(rv, _mm256_mul_ps(gv, _mm256_loadu_ps(w + i))), _mm256_mul_ps(cv, xv));
        _mm256_storeu_ps(dx + i, accumulate ? _mm256_add_ps(_mm256_loadu_ps(dx + i), d) : d);
        if (dweight) _mm256_storeu_ps(dweight + i, _mm256_add_ps(_mm256_loadu_ps(dweight + i), _mm256_mul_ps(gv, _mm256_mul_ps(xv, rv))));
    }
    for (; i < dim; i++) {
        float d = rstd * (dy[i] * w[i]) - c * x[i];
        dx[i] = accumulate ? dx[i] + d : d;
        if (dweight) dweight[i] += dy[i] * (x[i] * rstd);
    }
}
#endif

#ifdef QLK_X86
__attribute__((target("avx2,fma")))
static void swiglu_avx2(const float *gate, const float *up, float *out, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp8(_mm256_sub_ps(zero, g));
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = (gate[i] / (1.0f + qlk_exp(0.0f - gate[i]))) * up[i];
}
#endif

// ------------------------------------------------------------------------------------------------ dispatch

void qlk_rmsnorm_backward_row(const float *dy, const float *x, const float *weight, float *dx, float *dweight, int64_t dim,
                              float eps, int accumulate, int path) {
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1) {
        rmsnorm_backward_row_avx2(dy, x, weight, dx, dweight, dim, eps, accumulate);
        return;
    }
#endif
    rmsnorm_backward_row_scalar(dy, x, weight, dx, dweight, dim, eps, accumulate);
}

float qlk_exp_shifted_sum(const float *src, float *dst, int64_t n, float shift, int path) {
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1) return exp_shifted_sum_avx2(src, dst, n, shift);
#endif
    return exp_shifted_sum_scalar(src, dst, n, shift);
}

void qlk_scale(float *p, int64_t n, float s, int path) {
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1) {
        scale_avx2(p, n, s);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) p[i] *= s;
}

void qlk_softmax_backward_row(float *p, float *ds, int64_t n, float lse, float delta, float scale, int path) {
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1) {
        softmax_backward_row_avx2(p, ds, n, lse, delta, scale);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        float prob = qlk_exp(p[i] - lse);
        p[i] = prob;
        ds[i] = (prob * (ds[i] - delta)) * scale;
    }
}

void qlk_swiglu_backward(const float *dy, const float *gate, const float *up, float *dgate, float *dup, int64_t n, int path) {
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1) {
        swiglu_backward_avx2(dy, gate, up, dgate, dup, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        float du;
        float dg = silu_grad_parts(dy[i], gate[i], up[i], &du);
        dup[i] = du;
        dgate[i] = dg;
    }
}

void qlk_swiglu(const float *gate, const float *up, float *out, int64_t n, int path) {
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1) {
        swiglu_avx2(gate, up, out, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) out[i] = (gate[i] / (1.0f + qlk_exp(0.0f - gate[i]))) * up[i];
}
