// SIMD kernels with run-time CPU dispatch: the binary runs on any x86-64 (and elsewhere) and takes the
// AVX2+FMA path per function (target attributes + cpuid) when the CPU has it, portable C otherwise.
// (No AVX-512 path: the build machine has none, and an untested path is not shipped.)
#ifndef QLORA_CQLORAKERNELS_H
#define QLORA_CQLORAKERNELS_H

#include <stdint.h>
#include "CQLoRAKernelsTraining.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Dequantizes flat elements [start, start + count) of a bitsandbytes 4-bit tensor:
///   out[i] = codebook[code(start + i)] * scales[(start + i) / blocksize - start / blocksize]
/// where code(j) is the high nibble of packed[j / 2] for even j and the low nibble for odd j.
/// `codebook` has 16 floats; `scales` holds one float per block touched, starting with the block of `start`.
/// Every path computes the same float32 products (bit-identical results).
void qlk_dequant4(const uint8_t *packed, const float *codebook, const float *scales, int64_t blocksize,
                  int64_t start, int64_t count, float *out);

/// Which path qlk_dequant4 uses on this CPU: 1 = AVX2, 0 = portable C.
int qlk_dequant4_path(void);

/// Forces a path (for tests and benchmarks); a path this CPU lacks is ignored. -1 restores automatic choice.
void qlk_force_path(int path);

#ifdef __cplusplus
}
#endif
#endif
