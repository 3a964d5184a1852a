// 4-bit weights (NF4/FP4, plain or double-quantized scales, bitsandbytes layout) on the GPU: dequantize to fp32 or bf16
// for the GEMMs (bit-exact with the CPU backend: the math is qlora_math.h's), and the decode GEMV that reads the codes
// in place. Compiled with --fmad=false (an exact family). Launch shapes are chosen by CUDABackend's dispatch code.
#include "qlora_math.h"

// The scale of block b: plain (scales != 0) or double-quantized.
static __device__ __forceinline__ float block_scale(const float *scales, const ql_u8 *nestedCodes, const float *nestedAbsmax,
                                                    const float *nestedMap, float nestedOffset, ql_i64 nestedBlocksize, ql_i64 b) {
    return scales ? scales[b] : ql_nested_scale(nestedCodes, nestedAbsmax, nestedMap, nestedOffset, nestedBlocksize, b);
}

/// out[i] = dequant(i) for i in [0, count): one thread per element, grid-stride.
extern "C" __global__ void ql_dequant4_f32(const ql_u8 *packed, const float *codebook, const float *scales,
                                           const ql_u8 *nestedCodes, const float *nestedAbsmax, const float *nestedMap,
                                           float nestedOffset, ql_i64 nestedBlocksize, ql_i64 blocksize, ql_i64 count, float *out) {
    __shared__ float book[16];
    if (threadIdx.x < 16) book[threadIdx.x] = codebook[threadIdx.x];
    __syncthreads();
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x) {
        float s = block_scale(scales, nestedCodes, nestedAbsmax, nestedMap, nestedOffset, nestedBlocksize, i / blocksize);
        out[i] = ql_dequant4(packed, book, i, s);
    }
}

/// The same, written as bf16 (the GEMM input of bf16 compute): bf16(dequant(i)), rounded to nearest even.
extern "C" __global__ void ql_dequant4_bf16(const ql_u8 *packed, const float *codebook, const float *scales,
                                            const ql_u8 *nestedCodes, const float *nestedAbsmax, const float *nestedMap,
                                            float nestedOffset, ql_i64 nestedBlocksize, ql_i64 blocksize, ql_i64 count, ql_u16 *out) {
    __shared__ float book[16];
    if (threadIdx.x < 16) book[threadIdx.x] = codebook[threadIdx.x];
    __syncthreads();
    for (ql_i64 i = (ql_i64)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (ql_i64)gridDim.x * blockDim.x) {
        float s = block_scale(scales, nestedCodes, nestedAbsmax, nestedMap, nestedOffset, nestedBlocksize, i / blocksize);
        out[i] = ql_bf16_from_float(ql_dequant4(packed, book, i, s));
    }
}

/// Decoding: y[r] (+)= Σ_j dequant(r, j) · x[j] for rows [0, rows): one warp per row, each lane summing the columns
/// j ≡ lane (mod 32) in order, then a fixed butterfly over the lanes, so the result does not depend on the launch.
extern "C" __global__ void ql_gemv4_f32(const ql_u8 *packed, const float *codebook, const float *scales,
                                        const ql_u8 *nestedCodes, const float *nestedAbsmax, const float *nestedMap,
                                        float nestedOffset, ql_i64 nestedBlocksize, ql_i64 blocksize, ql_i64 rows, ql_i64 cols,
                                        const float *x, float *y, int accumulate) {
    __shared__ float book[16];
    if (threadIdx.x < 16) book[threadIdx.x] = codebook[threadIdx.x];
    __syncthreads();
    const int lane = threadIdx.x & 31;
    const ql_i64 warps = (ql_i64)gridDim.x * (blockDim.x >> 5);
    for (ql_i64 r = (ql_i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
        float sum = 0.0f;
        const ql_i64 base = r * cols;
        for (ql_i64 j = lane; j < cols; j += 32) {
            const ql_i64 i = base + j;
            float s = block_scale(scales, nestedCodes, nestedAbsmax, nestedMap, nestedOffset, nestedBlocksize, i / blocksize);
            sum = ql_add(sum, ql_mul(ql_dequant4(packed, book, i, s), x[j]));
        }
        for (int offset = 16; offset > 0; offset >>= 1) sum = ql_add(sum, __shfl_xor_sync(0xffffffffu, sum, offset));
        if (lane == 0) y[r] = accumulate ? ql_add(y[r], sum) : sum;
    }
}
