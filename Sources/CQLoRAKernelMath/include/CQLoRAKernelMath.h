// The CUDA kernels' per-element math (Sources/QLoRACUDA/Kernels/qlora_math.h) compiled by the host C compiler, over
// whole arrays, so CPU-only tests (Tests/QLoRACUDATests/KernelMathTests.swift) prove it bit-identical to the CPU
// backend: what these functions compute is what the GPU computes element by element.
#ifndef QLORA_CQLORAKERNELMATH_H
#define QLORA_CQLORAKERNELMATH_H

#include <stdint.h>

/// The AdamW factors as the kernels take them (qlora_math.h's ql_adamw_step).
typedef struct {
    float decay;
    int hasDecay;
    float w1, b2, w2, stepSize, bc2Sqrt, epsilon;
} qlm_adamw_step;

/// out[i] = dequant(i) for i < count; `scales` (one per block) or, when NULL, the double-quantized form.
void qlm_dequant4(const uint8_t *packed, const float *codebook, const float *scales, const uint8_t *nestedCodes,
                  const float *nestedAbsmax, const float *nestedMap, float nestedOffset, int64_t nestedBlocksize,
                  int64_t blocksize, int64_t count, float *out);

/// bf16 bits of each value (round to nearest even) and back.
void qlm_bf16_from_float(const float *x, uint16_t *out, int64_t count);
void qlm_bf16_to_float(const uint16_t *x, float *out, int64_t count);

/// dst[i] = keeps(start + i) ? src[i]·scale : 0.
void qlm_dropout(const float *src, float *dst, int64_t count, uint64_t start, uint64_t key, uint32_t threshold, float scale);

/// One AdamW update of every element.
void qlm_adamw(float *p, const float *g, float *m, float *v, int64_t count, qlm_adamw_step step);

/// RoPE in place on x [rows, heads, headDim] with cos/sin [rows, headDim/2]; inverse = the backward rotation.
void qlm_rope(float *x, const float *cosTable, const float *sinTable, int64_t rows, int64_t heads, int64_t headDim, int inverse);

#endif
