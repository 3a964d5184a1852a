// SIMD kernels with run-time CPU dispatch: the binary runs on any x86-64 (and elsewhere) and takes the
// AVX2+FMA path per function (target attributes + cpuid) when the CPU has it, portable C otherwise.
// (No AVX-512 path: the build machine has none, and an untested path is not shipped.)
#ifndef QLORA_CQLORAKERNELS_H
#define QLORA_CQLORAKERNELS_H

#include <stdint.h>
#include "CQLoRAKernelsTraining.h"
#include "CQLoRAKernelsPool.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Dequantizes flat elements [start, start + count) of a bitsandbytes 4-bit tensor:
///   out[i] = codebook[code(start + i)] * scales[(start + i) / blocksize - start / blocksize]
/// where code(j) is the high nibble of packed[j / 2] for even j and the low nibble for odd j.
/// `codebook` has 16 floats; `scales` holds one float per block touched, starting with the block of `start`.
/// Every path computes the same float32 products (bit-identical results).
///
/// Every kernel that has several paths takes `path` last: 1 = AVX2, 0 = portable C, -1 = the best this CPU has; a
/// path the CPU lacks falls back to the best it has. The caller (the CPU backend's `kernels` option) chooses; there
/// is no process-wide switch.
void qlk_dequant4(const uint8_t *packed, const float *codebook, const float *scales, int64_t blocksize,
                  int64_t start, int64_t count, float *out, int path);

/// The best path this CPU supports: 1 = AVX2 (with FMA), 0 = portable C.
int qlk_detected_path(void);

/// The path a kernel runs for a requested `path` (see above).
int qlk_usable_path(int path);

/// A 2-D bitsandbytes 4-bit weight [rows, cols] as qlk_gemv4 reads it (flat row-major codes, two per byte, the
/// high nibble first). Scales: `scales` (one float per block) when non-NULL, else double-quantized:
/// scale(b) = fl32(fl32(nested_map[nested_codes[b]] * nested_absmax[b / nested_blocksize]) + nested_offset).
typedef struct qlk_fourbit {
    const uint8_t *packed;
    const float *codebook;
    const float *scales;
    const uint8_t *nested_codes;
    const float *nested_absmax;
    const float *nested_map;
    float nested_offset;
    int64_t nested_blocksize;
    int64_t blocksize;
    int64_t rows;
    int64_t cols;
} qlk_fourbit;

/// Rows [row_begin, row_end) of y = dequant(W) · x (added to y with `accumulate`), reading codes and scales
/// directly (gemv4.c documents the fixed accumulation order). The AVX2 and portable paths (the `path`
/// argument) give bit-identical results; each y[r] depends on row r only, so any split of the rows
/// between threads gives the same bits.
void qlk_gemv4(const qlk_fourbit *w, const float *x, float *y, int64_t row_begin, int64_t row_end, int accumulate, int path);

/// Rows [row_begin, row_end) of y = W · x for W [rows, cols] stored as blocks of 32: w[r][j] = d[r·cols/32 + j/32] ·
/// q[r·cols + j] (cols a multiple of 32). Meant for exact copies (every d·q equal to the fp32 weight it replaces,
/// e.g. a Q8_0-derived embedding), read at ~1.1 bytes per weight. Paths bit-identical, fixed order (gemv4.c).
void qlk_gemv_i8(const int8_t *q, const float *d, int64_t cols, const float *x, float *y, int64_t row_begin, int64_t row_end, int path);

/// Decoding attention, one head: scores[j] = scale · Σ_i q[i]·k[j·stride + i] for j < n (8 partial sums over i).
void qlk_attn_scores(const float *q, const float *k, int64_t stride, int64_t d, int64_t n, float scale, float *scores);

/// out[i] = (Σ_j p[j]·v[j·stride + i], in j order) · inv for i < d.
void qlk_attn_values(const float *p, const float *v, int64_t stride, int64_t d, int64_t n, float inv, float *out);

#ifdef __cplusplus
}
#endif
#endif
