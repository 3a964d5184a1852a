// Fused 4-bit matrix-vector product (decoding): y[r] (+)= Σ_j dequant(W[r, j]) · x[j] for rows r of a
// bitsandbytes 4-bit weight W [rows, cols], reading the packed codes and block scales directly (the
// dequantized matrix is never written anywhere).
//
// Values: w = fl32(codebook[code] · scale[block]) exactly as qlk_dequant4 / FourBitQuantizer.dequantizeReference;
// a double-quantized scale is fl32(fl32(map[q] · absmax[b / nested_blocksize]) + offset) as NestedScales.scale.
//
// Accumulation order (the definition both paths implement): per row, 32 float32 lanes start at +0; element j of
// the row (local index, 0 ≤ j < cols) goes to lane 8·((j >> 3) & 3) + ((j & 7) >> 1) + 4·(j & 1), elements taken
// in increasing j within a lane, each as lane = fma(w_j, x_j, lane) (one rounding). Then t[i] = a[i] + a[i + 16]
// (i < 16), u[i] = t[i] + t[i + 8] (i < 8), and the row sum is ((u0 + u4) + (u2 + u6)) + ((u1 + u5) + (u3 + u7));
// with `accumulate` it is added to y[r] last.
// The AVX2 path handles 32 codes (16 bytes) at a time with in-lane byte shuffles only (Zen's lane-crossing
// vpermps was the bottleneck): the high and low nibbles side by side in one register, four vpshufb look up the
// four bytes of codebook[code], two rounds of unpacks assemble the floats — which come out as elements
// 8m + (0, 2, 4, 6, 1, 3, 5, 7) in register m, hence the lane numbering above — then one multiply by the block
// scale (giving exactly fl32(codebook · scale)) and one FMA against x permuted the same way once per call. The
// portable path runs the lanes one element at a time with fmaf. Both round identically, so they give
// bit-identical results. Threads split rows, never a row's sum, so results do not depend on the thread count
// either.
#include "CQLoRAKernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QLK_X86 1
#endif

// Float32 scales of blocks [b0, b0 + count) into out (double quantization expanded without a division per block).
static void expand_scales(const qlk_fourbit *w, int64_t b0, int64_t count, float *out) {
    if (w->scales) {
        for (int64_t i = 0; i < count; i++) out[i] = w->scales[b0 + i];
        return;
    }
    int64_t outer = b0 / w->nested_blocksize, inner = b0 % w->nested_blocksize;
    for (int64_t i = 0; i < count; i++) {
        const float product = w->nested_map[w->nested_codes[b0 + i]] * w->nested_absmax[outer];
        out[i] = product + w->nested_offset;
        if (++inner == w->nested_blocksize) {
            inner = 0;
            outer++;
        }
    }
}

static inline int lane_of(int64_t j) { return (int)(8 * ((j >> 3) & 3) + ((j & 7) >> 1) + 4 * (j & 1)); }

// Elements [j, cols) of row r into the lanes, one at a time (the portable path, and the AVX2 path's tail).
// sc[i] is the scale of block b0 + i.
static void row_scalar(const qlk_fourbit *w, int64_t r, const float *x, int64_t j, const float *sc, int64_t b0, float acc[32]) {
    const int64_t k = w->cols, f0 = r * k, bs = w->blocksize;
    while (j < k) {
        const int64_t b = (f0 + j) / bs;
        const float s = sc[b - b0];
        const int64_t end = (b + 1) * bs - f0 < k ? (b + 1) * bs - f0 : k;
        for (; j < end; j++) {
            const int64_t f = f0 + j;
            const uint8_t byte = w->packed[f >> 1];
            const uint8_t c = (f & 1) ? (byte & 0x0F) : (byte >> 4);
            const float wv = w->codebook[c] * s;
            const int l = lane_of(j);
            acc[l] = fmaf(wv, x[j], acc[l]);
        }
    }
}

static inline float combine(const float a[32]) {
    float t[16], u[8];
    for (int i = 0; i < 16; i++) t[i] = a[i] + a[i + 16];
    for (int i = 0; i < 8; i++) u[i] = t[i] + t[i + 8];
    return ((u[0] + u[4]) + (u[2] + u[6])) + ((u[1] + u[5]) + (u[3] + u[7]));
}

#ifdef QLK_X86
// combine() on vectors: u = (a[0..7] + a[16..23]) + (a[8..15] + a[24..31]) is the caller's part; this adds
// ((u0 + u4) + (u2 + u6)) + ((u1 + u5) + (u3 + u7)), the same operations in the same order.
__attribute__((target("avx2,fma")))
static inline float combine8(__m256 u) {
    const __m128 v = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));  // v_i = u_i + u_{i+4}
    const __m128 t = _mm_add_ps(v, _mm_movehl_ps(v, v));                                  // t_0 = v0 + v2, t_1 = v1 + v3
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));                              // t_0 + t_1
}

// One row whose first element is a multiple of 32 (so 32-element groups start on a byte and never straddle a
// block: block sizes are multiples of 32). planes[k]: byte k of the 16 codebook floats, in both 128-bit halves.
// xp: x's first 32·(cols/32) elements with each 8 permuted to (0, 2, 4, 6, 1, 3, 5, 7).
__attribute__((target("avx2,fma")))
static float row_avx2(const qlk_fourbit *w, int64_t r, const float *x, const float *xp, const __m256i planes[4],
                      const float *sc, int64_t b0) {
    const int64_t k = w->cols, f0 = r * k, bs = w->blocksize, groups = k / 32;
    const uint8_t *p = w->packed + f0 / 2;
    const __m128i fifteen = _mm_set1_epi8(15);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t g = 0, b = f0 / bs, limit = ((b + 1) * bs - f0) / 32;  // limit: first group of the next block
    for (; g < groups; b++, limit += bs / 32) {
        const int64_t end = limit < groups ? limit : groups;
        const __m256 s = _mm256_set1_ps(sc[b - b0]);
        for (; g < end; g++) {
            const __m128i bytes = _mm_loadu_si128((const __m128i *)(p + 16 * g));
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), fifteen), lo = _mm_and_si128(bytes, fifteen);
            const __m256i codes = _mm256_inserti128_si256(_mm256_castsi128_si256(hi), lo, 1);  // even | odd elements
            const __m256i p0 = _mm256_shuffle_epi8(planes[0], codes), p1 = _mm256_shuffle_epi8(planes[1], codes);
            const __m256i p2 = _mm256_shuffle_epi8(planes[2], codes), p3 = _mm256_shuffle_epi8(planes[3], codes);
            const __m256i l01 = _mm256_unpacklo_epi8(p0, p1), h01 = _mm256_unpackhi_epi8(p0, p1);
            const __m256i l23 = _mm256_unpacklo_epi8(p2, p3), h23 = _mm256_unpackhi_epi8(p2, p3);
            const float *xg = xp + 32 * g;
            a0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(l01, l23)), s), _mm256_loadu_ps(xg), a0);
            a1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(l01, l23)), s), _mm256_loadu_ps(xg + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(h01, h23)), s), _mm256_loadu_ps(xg + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(h01, h23)), s), _mm256_loadu_ps(xg + 24), a3);
        }
    }
    if (32 * groups < k) {  // the tail, one element at a time
        float acc[32];
        _mm256_storeu_ps(acc, a0);
        _mm256_storeu_ps(acc + 8, a1);
        _mm256_storeu_ps(acc + 16, a2);
        _mm256_storeu_ps(acc + 24, a3);
        row_scalar(w, r, x, 32 * groups, sc, b0, acc);
        a0 = _mm256_loadu_ps(acc);
        a1 = _mm256_loadu_ps(acc + 8);
        a2 = _mm256_loadu_ps(acc + 16);
        a3 = _mm256_loadu_ps(acc + 24);
    }
    return combine8(_mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3)));
}

__attribute__((target("avx2,fma")))
static void gemv4_avx2(const qlk_fourbit *w, const float *x, float *y, int64_t row_begin, int64_t row_end, int accumulate,
                       const float *sc, int64_t b0) {
    const int64_t k = w->cols, n32 = 32 * (k / 32);
    uint8_t bytes[4][16];
    for (int c = 0; c < 16; c++) {
        uint32_t bits;
        memcpy(&bits, &w->codebook[c], 4);
        for (int i = 0; i < 4; i++) bytes[i][c] = (uint8_t)(bits >> (8 * i));
    }
    __m256i planes[4];
    for (int i = 0; i < 4; i++) planes[i] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)bytes[i]));
    static const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    float xBuffer[4096];
    float *xp = n32 <= 4096 ? xBuffer : (float *)malloc((size_t)n32 * sizeof(float));
    for (int64_t i = 0; i < n32; i++) xp[i] = x[(i & ~7) + order[i & 7]];
    for (int64_t r = row_begin; r < row_end; r++) {
        float s;
        if ((r * k) % 32 == 0) {
            s = row_avx2(w, r, x, xp, planes, sc, b0);
        } else {
            float acc[32] = {0};
            row_scalar(w, r, x, 0, sc, b0, acc);
            s = combine(acc);
        }
        y[r] = accumulate ? y[r] + s : s;
    }
    if (xp != xBuffer) free(xp);
}
#endif

void qlk_gemv4(const qlk_fourbit *w, const float *x, float *y, int64_t row_begin, int64_t row_end, int accumulate, int path) {
    const int64_t k = w->cols, bs = w->blocksize;
    if (row_end <= row_begin || k <= 0) return;
    const int64_t b0 = row_begin * k / bs, blocks = (row_end * k + bs - 1) / bs - b0;
    float scaleBuffer[2048];
    float *sc = blocks <= 2048 ? scaleBuffer : (float *)malloc((size_t)blocks * sizeof(float));
    expand_scales(w, b0, blocks, sc);
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1 && bs % 32 == 0 && k >= 32) {
        gemv4_avx2(w, x, y, row_begin, row_end, accumulate, sc, b0);
        if (sc != scaleBuffer) free(sc);
        return;
    }
#endif
    for (int64_t r = row_begin; r < row_end; r++) {
        float acc[32] = {0};
        row_scalar(w, r, x, 0, sc, b0, acc);
        const float s = combine(acc);
        y[r] = accumulate ? y[r] + s : s;
    }
    if (sc != scaleBuffer) free(sc);
}

// Block-int8 matrix-vector product (qlk_gemv_i8: the decode LM head): row r's element j is
// w = d[r·(cols/32) + j/32] · q[r·cols + j]. Accumulation order: 32 lanes, element j in lane j % 32 (increasing j
// within a lane, lane = fma(w, x_j, lane)), then the same combining tree as qlk_gemv4. Callers build d and q so
// that every product d·q is exact (the fp32 weights it stands for), so the two paths agree bit for bit.
static float row_i8_scalar(const int8_t *q, const float *d, const float *x, int64_t cols) {
    float acc[32] = {0};
    for (int64_t j = 0; j < cols; j++) {
        const float wv = d[j / 32] * (float)q[j];
        acc[j % 32] = fmaf(wv, x[j], acc[j % 32]);
    }
    return combine(acc);
}

#ifdef QLK_X86
__attribute__((target("avx2,fma")))
static float row_i8_avx2(const int8_t *q, const float *d, const float *x, int64_t cols) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t b = 0; b < cols / 32; b++) {
        const __m256 s = _mm256_set1_ps(d[b]);
        const int8_t *p = q + 32 * b;
        const float *xb = x + 32 * b;
        const __m256 w0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p))), s);
        const __m256 w1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8)))), s);
        const __m256 w2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 16)))), s);
        const __m256 w3 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 24)))), s);
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + 8), a1);
        a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xb + 16), a2);
        a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xb + 24), a3);
    }
    float acc[32];
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2);
    _mm256_storeu_ps(acc + 24, a3);
    return combine(acc);
}
#endif

void qlk_gemv_i8(const int8_t *q, const float *d, int64_t cols, const float *x, float *y, int64_t row_begin, int64_t row_end, int path) {
    const int64_t blocks = cols / 32;
    for (int64_t r = row_begin; r < row_end; r++) {
#ifdef QLK_X86
        if (qlk_usable_path(path) == 1) {
            y[r] = row_i8_avx2(q + r * cols, d + r * blocks, x, cols);
            continue;
        }
#endif
        y[r] = row_i8_scalar(q + r * cols, d + r * blocks, x, cols);
    }
}

// Decode attention over a cache (CPUBackend.decodeAttention): plain C with 8 partial sums, no FMA (the file's
// FP_CONTRACT OFF), vectorized by the compiler for the baseline target, so every machine computes the same bits.
void qlk_attn_scores(const float *q, const float *k, int64_t stride, int64_t d, int64_t n, float scale, float *scores) {
    for (int64_t j = 0; j < n; j++) {
        const float *row = k + j * stride;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= d; i += 8) {
            for (int l = 0; l < 8; l++) {
                const float p = q[i + l] * row[i + l];
                acc[l] = acc[l] + p;
            }
        }
        float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        for (; i < d; i++) {
            const float p = q[i] * row[i];
            s = s + p;
        }
        scores[j] = scale * s;
    }
}

void qlk_attn_values(const float *p, const float *v, int64_t stride, int64_t d, int64_t n, float inv, float *out) {
    for (int64_t i = 0; i < d; i++) out[i] = 0;
    for (int64_t j = 0; j < n; j++) {
        const float pj = p[j];
        const float *row = v + j * stride;
        for (int64_t i = 0; i < d; i++) {
            const float t = pj * row[i];
            out[i] = out[i] + t;
        }
    }
    for (int64_t i = 0; i < d; i++) out[i] = out[i] * inv;
}
