// A deliberately broken kernel: KernelCompileTests checks that compiling it fails with NVRTC's log (the undeclared
// identifier, with this file's name and line), not a bare error code.
#include "qlora_math.h"

extern "C" __global__ void ql_broken(float *x, ql_i64 count) {
    for (ql_i64 i = threadIdx.x; i < count; i += blockDim.x) x[i] = not_declared_anywhere * x[i];
}
