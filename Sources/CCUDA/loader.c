// dlopen + dlsym of the CUDA libraries declared in include/CCUDA.h.
#define _GNU_SOURCE
#include "CCUDA.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// dlopen's own message names the file.
static int fail_open(char *error, size_t size, const char *path) {
    const char *detail = dlerror();
    snprintf(error, size, "%s", detail ? detail : path);
    return -1;
}

static int fail(char *error, size_t size, const char *what, const char *detail) {
    snprintf(error, size, "%s: %s", what, detail ? detail : "unknown error");
    return -1;
}

// Resolves `name` into `*slot`; on failure writes the error and returns -1.
static int resolve(void *library, const char *path, const char *name, void **slot, char *error, size_t size) {
    dlerror();
    *slot = dlsym(library, name);
    if (*slot == NULL) {
        char what[512];
        snprintf(what, sizeof what, "%s has no %s", path, name);
        return fail(error, size, what, dlerror());
    }
    return 0;
}

#define RESOLVE(lib, path, table, field, symbol) \
    if (resolve(lib, path, symbol, (void **)&(table)->field, error, errorSize) != 0) return -1

int qlora_cuda_open_driver(const char *path, qlora_cuda_driver *d, char *error, size_t errorSize) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) return fail_open(error, errorSize, path);
    RESOLVE(lib, path, d, cuInit, "cuInit");
    RESOLVE(lib, path, d, cuDriverGetVersion, "cuDriverGetVersion");
    RESOLVE(lib, path, d, cuDeviceGetCount, "cuDeviceGetCount");
    RESOLVE(lib, path, d, cuDeviceGet, "cuDeviceGet");
    RESOLVE(lib, path, d, cuDeviceGetName, "cuDeviceGetName");
    RESOLVE(lib, path, d, cuDeviceTotalMem, "cuDeviceTotalMem_v2");
    RESOLVE(lib, path, d, cuDeviceGetAttribute, "cuDeviceGetAttribute");
    RESOLVE(lib, path, d, cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    RESOLVE(lib, path, d, cuCtxSetCurrent, "cuCtxSetCurrent");
    RESOLVE(lib, path, d, cuCtxSynchronize, "cuCtxSynchronize");
    RESOLVE(lib, path, d, cuMemGetInfo, "cuMemGetInfo_v2");
    RESOLVE(lib, path, d, cuMemAlloc, "cuMemAlloc_v2");
    RESOLVE(lib, path, d, cuMemFree, "cuMemFree_v2");
    RESOLVE(lib, path, d, cuMemAllocHost, "cuMemAllocHost_v2");
    RESOLVE(lib, path, d, cuMemFreeHost, "cuMemFreeHost");
    RESOLVE(lib, path, d, cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    RESOLVE(lib, path, d, cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    RESOLVE(lib, path, d, cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    RESOLVE(lib, path, d, cuMemsetD8Async, "cuMemsetD8Async");
    RESOLVE(lib, path, d, cuModuleLoadData, "cuModuleLoadData");
    RESOLVE(lib, path, d, cuModuleGetFunction, "cuModuleGetFunction");
    RESOLVE(lib, path, d, cuFuncSetAttribute, "cuFuncSetAttribute");
    RESOLVE(lib, path, d, cuLaunchKernel, "cuLaunchKernel");
    RESOLVE(lib, path, d, cuStreamCreate, "cuStreamCreate");
    RESOLVE(lib, path, d, cuStreamSynchronize, "cuStreamSynchronize");
    RESOLVE(lib, path, d, cuStreamWaitEvent, "cuStreamWaitEvent");
    RESOLVE(lib, path, d, cuEventCreate, "cuEventCreate");
    RESOLVE(lib, path, d, cuEventRecord, "cuEventRecord");
    RESOLVE(lib, path, d, cuEventDestroy, "cuEventDestroy_v2");
    RESOLVE(lib, path, d, cuGetErrorName, "cuGetErrorName");
    RESOLVE(lib, path, d, cuGetErrorString, "cuGetErrorString");
    return 0;
}

int qlora_cuda_open_nvrtc(const char *path, const char *builtins, qlora_nvrtc *n, char *error, size_t errorSize) {
    if (builtins != NULL && dlopen(builtins, RTLD_NOW | RTLD_GLOBAL) == NULL) return fail_open(error, errorSize, builtins);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) return fail_open(error, errorSize, path);
    RESOLVE(lib, path, n, nvrtcVersion, "nvrtcVersion");
    RESOLVE(lib, path, n, nvrtcGetErrorString, "nvrtcGetErrorString");
    RESOLVE(lib, path, n, nvrtcCreateProgram, "nvrtcCreateProgram");
    RESOLVE(lib, path, n, nvrtcCompileProgram, "nvrtcCompileProgram");
    RESOLVE(lib, path, n, nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize");
    RESOLVE(lib, path, n, nvrtcGetProgramLog, "nvrtcGetProgramLog");
    RESOLVE(lib, path, n, nvrtcGetPTXSize, "nvrtcGetPTXSize");
    RESOLVE(lib, path, n, nvrtcGetPTX, "nvrtcGetPTX");
    RESOLVE(lib, path, n, nvrtcGetCUBINSize, "nvrtcGetCUBINSize");
    RESOLVE(lib, path, n, nvrtcGetCUBIN, "nvrtcGetCUBIN");
    RESOLVE(lib, path, n, nvrtcDestroyProgram, "nvrtcDestroyProgram");
    return 0;
}

int qlora_cuda_open_cublaslt(const char *path, qlora_cublaslt *t, char *error, size_t errorSize) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) return fail_open(error, errorSize, path);
    RESOLVE(lib, path, t, cublasLtCreate, "cublasLtCreate");
    RESOLVE(lib, path, t, cublasLtDestroy, "cublasLtDestroy");
    RESOLVE(lib, path, t, cublasLtGetVersion, "cublasLtGetVersion");
    RESOLVE(lib, path, t, cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate");
    RESOLVE(lib, path, t, cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy");
    RESOLVE(lib, path, t, cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
    RESOLVE(lib, path, t, cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
    RESOLVE(lib, path, t, cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
    RESOLVE(lib, path, t, cublasLtMatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute");
    RESOLVE(lib, path, t, cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate");
    RESOLVE(lib, path, t, cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy");
    RESOLVE(lib, path, t, cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
    RESOLVE(lib, path, t, cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
    RESOLVE(lib, path, t, cublasLtMatmul, "cublasLtMatmul");
    return 0;
}
