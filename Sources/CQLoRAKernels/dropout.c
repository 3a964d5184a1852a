// Counter-based dropout masks: element i of a stream keyed by (k0, k1) is kept when the top 24 bits of
// h(i) = mix(mix(i·0x9E3779B9 + k0) ^ k1) are ≥ threshold, with mix the "lowbias32" integer finalizer
// (x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16). Every element is independent of
// the others, so a mask can be made in any order, in parallel chunks (start = the chunk's first index), and
// replayed exactly in backward. The AVX2 and portable paths compute identical bits.
#include "CQLoRAKernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define QLK_X86 1
#endif

static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void dropout_scalar(const float *src, float *dst, int64_t n, uint64_t start, uint32_t k0, uint32_t k1,
                           uint32_t threshold, float scale) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t h = mix32(mix32((uint32_t)(start + (uint64_t)i) * 0x9E3779B9U + k0) ^ k1);
        dst[i] = (h >> 8) >= threshold ? src[i] * scale : 0.0f;
    }
}

#ifdef QLK_X86
__attribute__((target("avx2,fma")))
static inline __m256i mix32x8(__m256i x) {
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x7feb352dU));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bU));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    return x;
}

__attribute__((target("avx2,fma")))
static void dropout_avx2(const float *src, float *dst, int64_t n, uint64_t start, uint32_t k0, uint32_t k1,
                         uint32_t threshold, float scale) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i golden = _mm256_set1_epi32((int)0x9E3779B9U), key0 = _mm256_set1_epi32((int)k0), key1 = _mm256_set1_epi32((int)k1);
    // (h >> 8) ≥ threshold as a signed compare: both sides are < 2^24, so (h >> 8) > threshold - 1.
    const __m256i limit = _mm256_set1_epi32((int)threshold - 1);
    const __m256 s = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(start + (uint64_t)i)), lane);
        __m256i h = mix32x8(_mm256_xor_si256(mix32x8(_mm256_add_epi32(_mm256_mullo_epi32(idx, golden), key0)), key1));
        __m256i keep = _mm256_cmpgt_epi32(_mm256_srli_epi32(h, 8), limit);
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(src + i), s);
        _mm256_storeu_ps(dst + i, _mm256_and_ps(v, _mm256_castsi256_ps(keep)));
    }
    dropout_scalar(src + i, dst + i, n - i, start + (uint64_t)i, k0, k1, threshold, scale);
}
#endif

void qlk_dropout(const float *src, float *dst, int64_t n, uint64_t start, uint64_t key, uint32_t threshold, float scale, int path) {
    const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
#ifdef QLK_X86
    if (qlk_usable_path(path) == 1) {
        dropout_avx2(src, dst, n, start, k0, k1, threshold, scale);
        return;
    }
#endif
    dropout_scalar(src, dst, n, start, k0, k1, threshold, scale);
}
