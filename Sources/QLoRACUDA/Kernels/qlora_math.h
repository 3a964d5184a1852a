// The per-element math of the CUDA kernels, in one header compiled twice: by NVRTC into the kernels of this folder,
// and by the host C compiler into Sources/CQLoRAKernelMath, whose functions the CPU-only tests
// (Tests/QLoRACUDATests/KernelMathTests.swift) compare bit for bit with the CPU backend. Whatever must be exact on the
// GPU (4-bit dequantization, bf16 rounding, dropout masks, the AdamW update, RoPE) is written here once, with every
// float operation explicitly rounded (no fused multiply-add on either side: __fmul_rn & co. on the device,
// FP_CONTRACT OFF and one operation per statement on the host).
#ifndef QLORA_KERNEL_MATH_H
#define QLORA_KERNEL_MATH_H

#ifdef __CUDACC__
#define QL_FN static __device__ __forceinline__
typedef unsigned char ql_u8;
typedef unsigned short ql_u16;
typedef unsigned int ql_u32;
typedef unsigned long long ql_u64;
typedef long long ql_i64;
QL_FN float ql_mul(float a, float b) { return __fmul_rn(a, b); }
QL_FN float ql_add(float a, float b) { return __fadd_rn(a, b); }
QL_FN float ql_sub(float a, float b) { return __fsub_rn(a, b); }
QL_FN float ql_div(float a, float b) { return __fdiv_rn(a, b); }
QL_FN float ql_sqrt(float a) { return __fsqrt_rn(a); }
QL_FN float ql_abs(float a) { return fabsf(a); }
QL_FN ql_u32 ql_bits(float f) { return __float_as_uint(f); }
QL_FN float ql_float(ql_u32 u) { return __uint_as_float(u); }
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#else
#include <math.h>
#include <stdint.h>
#include <string.h>
#pragma STDC FP_CONTRACT OFF
#define QL_FN static inline
typedef uint8_t ql_u8;
typedef uint16_t ql_u16;
typedef uint32_t ql_u32;
typedef uint64_t ql_u64;
typedef int64_t ql_i64;
QL_FN float ql_mul(float a, float b) { float r = a * b; return r; }
QL_FN float ql_add(float a, float b) { float r = a + b; return r; }
QL_FN float ql_sub(float a, float b) { float r = a - b; return r; }
QL_FN float ql_div(float a, float b) { float r = a / b; return r; }
QL_FN float ql_sqrt(float a) { return sqrtf(a); }
QL_FN float ql_abs(float a) { return fabsf(a); }
QL_FN ql_u32 ql_bits(float f) { ql_u32 u; memcpy(&u, &f, 4); return u; }
QL_FN float ql_float(ql_u32 u) { float f; memcpy(&f, &u, 4); return f; }
#endif

// MARK: bfloat16 (raw 16-bit patterns; no header needed on either side)

/// bf16 bits of `f`, rounded to nearest even; a NaN stays a quiet NaN (as ggml, numpy and PyTorch).
QL_FN ql_u16 ql_bf16_from_float(float f) {
    ql_u32 u = ql_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (ql_u16)((u >> 16) | 64u);
    return (ql_u16)((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

QL_FN float ql_bf16_to_float(ql_u16 b) { return ql_float(((ql_u32)b) << 16); }

// MARK: 4-bit weights (bitsandbytes layout: two codes per byte, high nibble first)

/// The scale of block `b` of a double-quantized tensor: fl32(fl32(map[codes[b]] · absmax[b / nestedBlocksize]) + offset).
QL_FN float ql_nested_scale(const ql_u8 *codes, const float *absmax, const float *map, float offset, ql_i64 nestedBlocksize,
                            ql_i64 b) {
    return ql_add(ql_mul(map[codes[b]], absmax[b / nestedBlocksize]), offset);
}

/// Element `i` of a 4-bit tensor whose block holds scale `scale`: fl32(codebook[code(i)] · scale).
QL_FN float ql_dequant4(const ql_u8 *packed, const float *codebook, ql_i64 i, float scale) {
    ql_u8 byte = packed[i >> 1];
    ql_u8 code = (i & 1) ? (ql_u8)(byte & 15u) : (ql_u8)(byte >> 4);
    return ql_mul(codebook[code], scale);
}

// MARK: dropout (counter-based: any element, any order, replayed exactly in backward)

QL_FN ql_u32 ql_mix32(ql_u32 x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/// Whether element `index` of the stream keyed by `key` is kept: the top 24 bits of
/// mix(mix(index·0x9E3779B9 + k0) ^ k1) are ≥ threshold.
QL_FN int ql_dropout_keeps(ql_u64 index, ql_u64 key, ql_u32 threshold) {
    ql_u32 k0 = (ql_u32)key, k1 = (ql_u32)(key >> 32);
    ql_u32 h = ql_mix32(ql_mix32((ql_u32)index * 0x9E3779B9u + k0) ^ k1);
    return (h >> 8) >= threshold;
}

QL_FN float ql_dropout(float x, ql_u64 index, ql_u64 key, ql_u32 threshold, float scale) {
    return ql_dropout_keeps(index, key, threshold) ? ql_mul(x, scale) : 0.0f;
}

// MARK: AdamW (PyTorch's single-tensor arithmetic, the factors computed on the host in double and rounded once)

typedef struct {
    float decay;        // 1 − lr·wd (used when hasDecay)
    int hasDecay;
    float w1;           // 1 − β1, the lerp weight
    float b2;           // β2
    float w2;           // 1 − β2
    float stepSize;     // −lr / (1 − β1^t)
    float bc2Sqrt;      // sqrt(1 − β2^t)
    float epsilon;
} ql_adamw_step;

/// One element: p ← p·decay; m ← lerp(m, g, w1); v ← v·β2 + (1 − β2)·g·g; p ← p + stepSize·m / (sqrt(v)/bc2Sqrt + eps).
QL_FN void ql_adamw(float *p, float g, float *m, float *v, ql_adamw_step s) {
    float x = *p;
    if (s.hasDecay) x = ql_mul(x, s.decay);
    float mm = *m;
    // torch.lerp: weight < 0.5 → self + w·(end − self), else end − (end − self)·(1 − w)
    if (ql_abs(s.w1) < 0.5f) mm = ql_add(mm, ql_mul(s.w1, ql_sub(g, mm)));
    else mm = ql_sub(g, ql_mul(ql_sub(g, mm), ql_sub(1.0f, s.w1)));
    float vv = ql_add(ql_mul(*v, s.b2), ql_mul(ql_mul(s.w2, g), g));
    float denom = ql_add(ql_div(ql_sqrt(vv), s.bc2Sqrt), s.epsilon);
    x = ql_add(x, ql_div(ql_mul(s.stepSize, mm), denom));
    *m = mm;
    *v = vv;
    *p = x;
}

// MARK: RoPE (HF "rotate_half": pairs (i, i + d/2) of each head)

/// The rotated pair: (x0·cos − x1·sin, x1·cos + x0·sin); `inverse` rotates by −θ (the backward pass).
QL_FN void ql_rope_pair(float *x0, float *x1, float c, float s, int inverse) {
    float a = *x0, b = *x1;
    if (inverse) {
        *x0 = ql_add(ql_mul(a, c), ql_mul(b, s));
        *x1 = ql_sub(ql_mul(b, c), ql_mul(a, s));
    } else {
        *x0 = ql_sub(ql_mul(a, c), ql_mul(b, s));
        *x1 = ql_add(ql_mul(b, c), ql_mul(a, s));
    }
}

#endif
