// Host loops over the CUDA kernels' per-element math: the same header, the same statements, no fused multiply-add
// (qlora_math.h sets FP_CONTRACT OFF; the target is compiled without -ffast-math).
#include "CQLoRAKernelMath.h"
#include "../QLoRACUDA/Kernels/qlora_math.h"

_Static_assert(sizeof(qlm_adamw_step) == sizeof(ql_adamw_step), "qlm_adamw_step mirrors ql_adamw_step");

void qlm_dequant4(const uint8_t *packed, const float *codebook, const float *scales, const uint8_t *nestedCodes,
                  const float *nestedAbsmax, const float *nestedMap, float nestedOffset, int64_t nestedBlocksize,
                  int64_t blocksize, int64_t count, float *out) {
    for (int64_t i = 0; i < count; i++) {
        const int64_t b = i / blocksize;
        const float s = scales ? scales[b] : ql_nested_scale(nestedCodes, nestedAbsmax, nestedMap, nestedOffset, nestedBlocksize, b);
        out[i] = ql_dequant4(packed, codebook, i, s);
    }
}

void qlm_bf16_from_float(const float *x, uint16_t *out, int64_t count) {
    for (int64_t i = 0; i < count; i++) out[i] = ql_bf16_from_float(x[i]);
}

void qlm_bf16_to_float(const uint16_t *x, float *out, int64_t count) {
    for (int64_t i = 0; i < count; i++) out[i] = ql_bf16_to_float(x[i]);
}

void qlm_dropout(const float *src, float *dst, int64_t count, uint64_t start, uint64_t key, uint32_t threshold, float scale) {
    for (int64_t i = 0; i < count; i++) dst[i] = ql_dropout(src[i], start + (uint64_t)i, key, threshold, scale);
}

void qlm_adamw(float *p, const float *g, float *m, float *v, int64_t count, qlm_adamw_step step) {
    ql_adamw_step s = {step.decay, step.hasDecay, step.w1, step.b2, step.w2, step.stepSize, step.bc2Sqrt, step.epsilon};
    for (int64_t i = 0; i < count; i++) ql_adamw(p + i, g[i], m + i, v + i, s);
}

void qlm_rope(float *x, const float *cosTable, const float *sinTable, int64_t rows, int64_t heads, int64_t headDim, int inverse) {
    const int64_t half = headDim / 2;
    for (int64_t t = 0; t < rows; t++)
        for (int64_t h = 0; h < heads; h++) {
            float *base = x + (t * heads + h) * headDim;
            for (int64_t i = 0; i < half; i++)
                ql_rope_pair(base + i, base + i + half, cosTable[t * half + i], sinTable[t * half + i], inverse);
        }
}
