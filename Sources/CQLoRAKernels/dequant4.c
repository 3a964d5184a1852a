#include "CQLoRAKernels.h"

#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QLK_X86 1
#endif

// Portable path: one element at a time.
static void dequant_scalar(const uint8_t *packed, const float *codebook, float scale, int64_t j, int64_t end,
                           float *out) {
    for (; j < end; j++) {
        uint8_t byte = packed[j >> 1];
        uint8_t c = (j & 1) ? (byte & 0x0F) : (byte >> 4);
        *out++ = codebook[c] * scale;
    }
}

#ifdef QLK_X86
// 16 elements (8 bytes) per step; the 16-entry lookup is two 8-entry vpermps blended on bit 3.
__attribute__((target("avx2,fma")))
static inline __m256 lookup16_avx2(__m256i idx, __m256 low8, __m256 high8) {
    __m256 a = _mm256_permutevar8x32_ps(low8, idx);
    __m256 b = _mm256_permutevar8x32_ps(high8, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

__attribute__((target("avx2,fma")))
static void dequant_avx2(const uint8_t *p, const float *codebook, float scale, int64_t groups, float *out) {
    const __m256 low8 = _mm256_loadu_ps(codebook), high8 = _mm256_loadu_ps(codebook + 8);
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i fifteen = _mm256_set1_epi32(15);
    for (int64_t g = 0; g < groups; g++) {
        __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8 * g)));
        __m256 hi = lookup16_avx2(_mm256_srli_epi32(w, 4), low8, high8);
        __m256 lo = lookup16_avx2(_mm256_and_si256(w, fifteen), low8, high8);
        __m256 a = _mm256_unpacklo_ps(hi, lo);  // h0 l0 h1 l1 | h4 l4 h5 l5
        __m256 b = _mm256_unpackhi_ps(hi, lo);  // h2 l2 h3 l3 | h6 l6 h7 l7
        _mm256_storeu_ps(out + 16 * g, _mm256_mul_ps(_mm256_permute2f128_ps(a, b, 0x20), s));
        _mm256_storeu_ps(out + 16 * g + 8, _mm256_mul_ps(_mm256_permute2f128_ps(a, b, 0x31), s));
    }
}
#endif

static int detected_path = -1;

static int detect(void) {
#ifdef QLK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

int qlk_detected_path(void) {
    if (detected_path < 0) detected_path = detect();
    return detected_path;
}

int qlk_usable_path(int path) {
    const int detected = qlk_detected_path();
    return path >= 0 && path < detected ? path : detected;
}

void qlk_dequant4(const uint8_t *packed, const float *codebook, const float *scales, int64_t blocksize,
                  int64_t start, int64_t count, float *out, int path_choice) {
    const int path = qlk_usable_path(path_choice);
    const int64_t end = start + count;
    const int64_t firstBlock = start / blocksize;
    int64_t j = start;
    while (j < end) {
        const int64_t block = j / blocksize;
        const float scale = scales[block - firstBlock];
        const int64_t segEnd = (block + 1) * blocksize < end ? (block + 1) * blocksize : end;
        // Align to an even element so whole bytes remain.
        if (j & 1) {
            dequant_scalar(packed, codebook, scale, j, j + 1, out);
            out++;
            j++;
        }
#ifdef QLK_X86
        if (path == 1) {
            int64_t groups = (segEnd - j) / 16;
            dequant_avx2(packed + j / 2, codebook, scale, groups, out);
            out += 16 * groups;
            j += 16 * groups;
        }
#endif
        if (j < segEnd) {
            dequant_scalar(packed, codebook, scale, j, segEnd, out);
            out += segEnd - j;
            j = segEnd;
        }
    }
}
