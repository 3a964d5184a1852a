// Fused 4-bit matrix-vector product (decoding): y[r] (+)= Σ_j dequant(W[r, j]) · x[j] for rows r of a
// bitsandbytes 4-bit weight W [rows, cols], reading the packed codes and block scales directly (the
// dequantized matrix is never written anywhere).
//
// Values: w = fl32(codebook[code] · scale[block]) exactly as qlk_dequant4 / FourBitQuantizer.dequantizeReference;
// a double-quantized scale is fl32(fl32(map[q] · absmax[b / nested_blocksize]) + offset) as NestedScales.scale.
//
// Accumulation order (the definition both paths implement): per row, 32 float32 lanes start at +0; element j of
// the row (local index, 0 ≤ j < cols) goes to lane ((j >> 4) & 1)·16 + (j & 1)·8 + ((j >> 1) & 7), elements
// taken in increasing j within a lane, each as lane = fma(w_j, x_j, lane) (one rounding). Then
// t[i] = a[i] + a[i + 16] (i < 16), u[i] = t[i] + t[i + 8] (i < 8), and the row sum is
// ((u0 + u4) + (u2 + u6)) + ((u1 + u5) + (u3 + u7)); with `accumulate` it is added to y[r] last.
// The AVX2 path keeps lanes 0-7 / 8-15 / 16-23 / 24-31 as four ymm accumulators (high / low nibbles of an even
// 16-code group, then of the odd group after it) against x de-interleaved into even / odd elements; the portable path runs the lanes one element at
// a time with fmaf. Both round identically, so they give bit-identical results. Threads split rows, never a
// row's sum, so results do not depend on the thread count either.
#include "CQLoRAKernels.h"

#include <math.h>
#include <stdlib.h>

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

static inline int lane_of(int64_t j) { return (int)(((j >> 4) & 1) * 16 + (j & 1) * 8 + ((j >> 1) & 7)); }

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
// codebook·scale of the code in bits 0-3 of each lane (vpermps reads bits 0-2, bit 3 picks the table): `bit3`
// holds that bit in its sign bit. Bits above bit 3 of `idx` are ignored.
__attribute__((target("avx2,fma")))
static inline __m256 lookup16(__m256i idx, __m256i bit3, __m256 low8, __m256 high8) {
    const __m256 a = _mm256_permutevar8x32_ps(low8, idx);
    const __m256 b = _mm256_permutevar8x32_ps(high8, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(bit3));
}

// combine() on vectors: u = (a[0..7] + a[16..23]) + (a[8..15] + a[24..31]) is the caller's part; this adds
// ((u0 + u4) + (u2 + u6)) + ((u1 + u5) + (u3 + u7)), the same operations in the same order.
__attribute__((target("avx2,fma")))
static inline float combine8(__m256 u) {
    const __m128 v = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));  // v_i = u_i + u_{i+4}
    const __m128 t = _mm_add_ps(v, _mm_movehl_ps(v, v));                                  // t_0 = v0 + v2, t_1 = v1 + v3
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));                              // t_0 + t_1
}

// The high-nibble (even element) and low-nibble (odd element) weights of 8 packed bytes.
#define QLK_HI(c) lookup16(_mm256_srli_epi32((c), 4), _mm256_slli_epi32((c), 24), low8, high8)
#define QLK_LO(c) lookup16((c), _mm256_slli_epi32((c), 28), low8, high8)

// One row whose first element is a multiple of 32 (so 16-element groups start on a byte and never straddle a
// block: block sizes are multiples of 32). xe/xo: x's even/odd elements of the first 16·(cols/16) columns.
__attribute__((target("avx2,fma")))
static float row_avx2(const qlk_fourbit *w, int64_t r, const float *x, const float *xe, const float *xo, const float *sc,
                      int64_t b0) {
    const int64_t k = w->cols, f0 = r * k, bs = w->blocksize, groups = k / 16;
    const uint8_t *p = w->packed + f0 / 2;
    const __m256 bookLow = _mm256_loadu_ps(w->codebook), bookHigh = _mm256_loadu_ps(w->codebook + 8);
    __m256 h0 = _mm256_setzero_ps(), l0 = h0, h1 = h0, l1 = h0;
    int64_t g = 0, b = f0 / bs, limit = ((b + 1) * bs - f0) / 16;  // limit: first group of the next block
    for (; g < groups; b++, limit += bs / 16) {
        const int64_t end = limit < groups ? limit : groups;
        const __m256 s = _mm256_set1_ps(sc[b - b0]);
        const __m256 low8 = _mm256_mul_ps(bookLow, s), high8 = _mm256_mul_ps(bookHigh, s);
        for (; g + 1 < end; g += 2) {  // g is even here: groups g (lanes 0-15) and g+1 (lanes 16-31)
            const __m256i c0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * g)));
            const __m256i c1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * g + 8)));
            h0 = _mm256_fmadd_ps(QLK_HI(c0), _mm256_loadu_ps(xe + 8 * g), h0);
            l0 = _mm256_fmadd_ps(QLK_LO(c0), _mm256_loadu_ps(xo + 8 * g), l0);
            h1 = _mm256_fmadd_ps(QLK_HI(c1), _mm256_loadu_ps(xe + 8 * g + 8), h1);
            l1 = _mm256_fmadd_ps(QLK_LO(c1), _mm256_loadu_ps(xo + 8 * g + 8), l1);
        }
        if (g < end) {  // a last single group (cols % 32 == 16): even g, lanes 0-15
            const __m256i c0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * g)));
            h0 = _mm256_fmadd_ps(QLK_HI(c0), _mm256_loadu_ps(xe + 8 * g), h0);
            l0 = _mm256_fmadd_ps(QLK_LO(c0), _mm256_loadu_ps(xo + 8 * g), l0);
            g++;
        }
    }
    if (16 * groups < k) {  // the tail, one element at a time
        float acc[32];
        _mm256_storeu_ps(acc, h0);
        _mm256_storeu_ps(acc + 8, l0);
        _mm256_storeu_ps(acc + 16, h1);
        _mm256_storeu_ps(acc + 24, l1);
        row_scalar(w, r, x, 16 * groups, sc, b0, acc);
        h0 = _mm256_loadu_ps(acc);
        l0 = _mm256_loadu_ps(acc + 8);
        h1 = _mm256_loadu_ps(acc + 16);
        l1 = _mm256_loadu_ps(acc + 24);
    }
    return combine8(_mm256_add_ps(_mm256_add_ps(h0, h1), _mm256_add_ps(l0, l1)));
}
#undef QLK_HI
#undef QLK_LO
#endif

void qlk_gemv4(const qlk_fourbit *w, const float *x, float *y, int64_t row_begin, int64_t row_end, int accumulate) {
    const int64_t k = w->cols, bs = w->blocksize;
    if (row_end <= row_begin || k <= 0) return;
    const int64_t b0 = row_begin * k / bs, blocks = (row_end * k + bs - 1) / bs - b0;
    float scaleBuffer[2048];
    float *sc = blocks <= 2048 ? scaleBuffer : (float *)malloc((size_t)blocks * sizeof(float));
    expand_scales(w, b0, blocks, sc);
#ifdef QLK_X86
    if (qlk_dequant4_path() == 1 && bs % 32 == 0 && k >= 32) {
        const int64_t half = 8 * (k / 16);
        float xBuffer[2 * 2048];
        float *xe = half <= 2048 ? xBuffer : (float *)malloc(2 * (size_t)half * sizeof(float));
        float *xo = xe + half;
        for (int64_t i = 0; i < half; i++) {
            xe[i] = x[2 * i];
            xo[i] = x[2 * i + 1];
        }
        for (int64_t r = row_begin; r < row_end; r++) {
            float s;
            if ((r * k) % 32 == 0) {
                s = row_avx2(w, r, x, xe, xo, sc, b0);
            } else {
                float acc[32] = {0};
                row_scalar(w, r, x, 0, sc, b0, acc);
                s = combine(acc);
            }
            y[r] = accumulate ? y[r] + s : s;
        }
        if (xe != xBuffer) free(xe);
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

void qlk_gemv_i8(const int8_t *q, const float *d, int64_t cols, const float *x, float *y, int64_t row_begin, int64_t row_end) {
    const int64_t blocks = cols / 32;
    for (int64_t r = row_begin; r < row_end; r++) {
#ifdef QLK_X86
        if (qlk_dequant4_path() == 1) {
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
