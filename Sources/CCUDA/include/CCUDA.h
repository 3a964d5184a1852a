// The CUDA entry points qlora uses, declared here and reached through dlopen (loader.c): nothing from CUDA is needed to
// build qlora, and a machine without a driver simply has no CUDA backend. Three libraries:
//   - the driver API (libcuda.so.1, installed with the NVIDIA driver; the container toolkit injects it),
//   - NVRTC (libnvrtc.so.13 / .12, from the `nvidia-cuda-nvrtc` wheel or a CUDA toolkit) to compile our kernels for
//     the GPU that is there,
//   - cuBLASLt (libcublasLt.so.13 / .12, from the `nvidia-cublas` wheel or a toolkit) for the GEMMs.
// Only the types, constants and functions qlora calls are declared, with the ABI of the CUDA 12/13 headers; the
// `_v2` driver symbols are named explicitly (the unversioned names are the legacy 32-bit ones).
#ifndef QLORA_CCUDA_H
#define QLORA_CCUDA_H

#include <stddef.h>
#include <stdint.h>

// MARK: Driver API

typedef int qlora_CUresult;             // CUresult; 0 = CUDA_SUCCESS
typedef int qlora_CUdevice;
typedef struct qlora_CUctx_st *qlora_CUcontext;
typedef struct qlora_CUmod_st *qlora_CUmodule;
typedef struct qlora_CUfunc_st *qlora_CUfunction;
typedef struct qlora_CUstream_st *qlora_CUstream;
typedef struct qlora_CUevent_st *qlora_CUevent;
typedef unsigned long long qlora_CUdeviceptr;

// CUdevice_attribute values used.
enum {
    QLORA_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    QLORA_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    QLORA_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    QLORA_CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
};

typedef struct {
    qlora_CUresult (*cuInit)(unsigned int flags);
    qlora_CUresult (*cuDriverGetVersion)(int *version);
    qlora_CUresult (*cuDeviceGetCount)(int *count);
    qlora_CUresult (*cuDeviceGet)(qlora_CUdevice *device, int ordinal);
    qlora_CUresult (*cuDeviceGetName)(char *name, int length, qlora_CUdevice device);
    qlora_CUresult (*cuDeviceTotalMem)(size_t *bytes, qlora_CUdevice device);                              // _v2
    qlora_CUresult (*cuDeviceGetAttribute)(int *value, int attribute, qlora_CUdevice device);
    qlora_CUresult (*cuDevicePrimaryCtxRetain)(qlora_CUcontext *context, qlora_CUdevice device);
    qlora_CUresult (*cuCtxSetCurrent)(qlora_CUcontext context);
    qlora_CUresult (*cuCtxSynchronize)(void);
    qlora_CUresult (*cuMemGetInfo)(size_t *free, size_t *total);                                           // _v2
    qlora_CUresult (*cuMemAlloc)(qlora_CUdeviceptr *pointer, size_t bytes);                                // _v2
    qlora_CUresult (*cuMemFree)(qlora_CUdeviceptr pointer);                                                // _v2
    qlora_CUresult (*cuMemAllocHost)(void **pointer, size_t bytes);                                        // _v2
    qlora_CUresult (*cuMemFreeHost)(void *pointer);
    qlora_CUresult (*cuMemcpyHtoDAsync)(qlora_CUdeviceptr dst, const void *src, size_t bytes, qlora_CUstream stream);  // _v2
    qlora_CUresult (*cuMemcpyDtoHAsync)(void *dst, qlora_CUdeviceptr src, size_t bytes, qlora_CUstream stream);        // _v2
    qlora_CUresult (*cuMemcpyDtoDAsync)(qlora_CUdeviceptr dst, qlora_CUdeviceptr src, size_t bytes, qlora_CUstream stream);  // _v2
    qlora_CUresult (*cuMemsetD8Async)(qlora_CUdeviceptr dst, unsigned char value, size_t count, qlora_CUstream stream);
    qlora_CUresult (*cuModuleLoadData)(qlora_CUmodule *module, const void *image);
    qlora_CUresult (*cuModuleGetFunction)(qlora_CUfunction *function, qlora_CUmodule module, const char *name);
    qlora_CUresult (*cuFuncSetAttribute)(qlora_CUfunction function, int attribute, int value);
    qlora_CUresult (*cuLaunchKernel)(qlora_CUfunction f, unsigned int gridX, unsigned int gridY, unsigned int gridZ,
                                     unsigned int blockX, unsigned int blockY, unsigned int blockZ, unsigned int sharedBytes,
                                     qlora_CUstream stream, void **params, void **extra);
    qlora_CUresult (*cuStreamCreate)(qlora_CUstream *stream, unsigned int flags);
    qlora_CUresult (*cuStreamSynchronize)(qlora_CUstream stream);
    qlora_CUresult (*cuStreamWaitEvent)(qlora_CUstream stream, qlora_CUevent event, unsigned int flags);
    qlora_CUresult (*cuEventCreate)(qlora_CUevent *event, unsigned int flags);     // flags 2: CU_EVENT_DISABLE_TIMING
    qlora_CUresult (*cuEventRecord)(qlora_CUevent event, qlora_CUstream stream);
    qlora_CUresult (*cuEventDestroy)(qlora_CUevent event);                         // _v2
    qlora_CUresult (*cuGetErrorName)(qlora_CUresult error, const char **name);
    qlora_CUresult (*cuGetErrorString)(qlora_CUresult error, const char **text);
} qlora_cuda_driver;

// MARK: NVRTC

typedef int qlora_nvrtcResult;          // 0 = NVRTC_SUCCESS
typedef struct qlora_nvrtcProgram_st *qlora_nvrtcProgram;

typedef struct {
    qlora_nvrtcResult (*nvrtcVersion)(int *major, int *minor);
    const char *(*nvrtcGetErrorString)(qlora_nvrtcResult result);
    qlora_nvrtcResult (*nvrtcCreateProgram)(qlora_nvrtcProgram *program, const char *source, const char *name, int headerCount,
                                            const char *const *headers, const char *const *includeNames);
    qlora_nvrtcResult (*nvrtcCompileProgram)(qlora_nvrtcProgram program, int optionCount, const char *const *options);
    qlora_nvrtcResult (*nvrtcGetProgramLogSize)(qlora_nvrtcProgram program, size_t *size);
    qlora_nvrtcResult (*nvrtcGetProgramLog)(qlora_nvrtcProgram program, char *log);
    qlora_nvrtcResult (*nvrtcGetPTXSize)(qlora_nvrtcProgram program, size_t *size);
    qlora_nvrtcResult (*nvrtcGetPTX)(qlora_nvrtcProgram program, char *ptx);
    qlora_nvrtcResult (*nvrtcGetCUBINSize)(qlora_nvrtcProgram program, size_t *size);
    qlora_nvrtcResult (*nvrtcGetCUBIN)(qlora_nvrtcProgram program, char *cubin);
    qlora_nvrtcResult (*nvrtcDestroyProgram)(qlora_nvrtcProgram *program);
} qlora_nvrtc;

// MARK: cuBLASLt

typedef int qlora_cublasStatus;         // 0 = CUBLAS_STATUS_SUCCESS
typedef struct qlora_cublasLtContext *qlora_cublasLtHandle;
typedef struct qlora_cublasLtMatmulDescOpaque *qlora_cublasLtMatmulDesc;
typedef struct qlora_cublasLtMatrixLayoutOpaque *qlora_cublasLtMatrixLayout;
typedef struct qlora_cublasLtMatmulPreferenceOpaque *qlora_cublasLtMatmulPreference;

typedef struct { uint64_t data[8]; } qlora_cublasLtMatmulAlgo;

typedef struct {
    qlora_cublasLtMatmulAlgo algo;
    size_t workspaceSize;
    qlora_cublasStatus state;
    float wavesCount;
    int reserved[4];
} qlora_cublasLtMatmulHeuristicResult;

enum {
    QLORA_CUDA_R_32F = 0,
    QLORA_CUDA_R_16BF = 14,
    QLORA_CUBLAS_COMPUTE_32F = 68,           // fp32 accumulation, no TF32 down-conversion
    QLORA_CUBLAS_OP_N = 0,
    QLORA_CUBLAS_OP_T = 1,
    QLORA_CUBLASLT_MATMUL_DESC_TRANSA = 3,
    QLORA_CUBLASLT_MATMUL_DESC_TRANSB = 4,
    QLORA_CUBLASLT_MATRIX_LAYOUT_ORDER = 1,
    QLORA_CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,            // int32_t
    QLORA_CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,   // int64_t, in elements
    QLORA_CUBLASLT_ORDER_COL = 0,
    QLORA_CUBLASLT_ORDER_ROW = 1,
    QLORA_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
};

typedef struct {
    qlora_cublasStatus (*cublasLtCreate)(qlora_cublasLtHandle *handle);
    qlora_cublasStatus (*cublasLtDestroy)(qlora_cublasLtHandle handle);
    size_t (*cublasLtGetVersion)(void);
    qlora_cublasStatus (*cublasLtMatmulDescCreate)(qlora_cublasLtMatmulDesc *desc, int computeType, int scaleType);
    qlora_cublasStatus (*cublasLtMatmulDescDestroy)(qlora_cublasLtMatmulDesc desc);
    qlora_cublasStatus (*cublasLtMatmulDescSetAttribute)(qlora_cublasLtMatmulDesc desc, int attribute, const void *value, size_t size);
    qlora_cublasStatus (*cublasLtMatrixLayoutCreate)(qlora_cublasLtMatrixLayout *layout, int type, uint64_t rows, uint64_t cols,
                                                     int64_t ld);
    qlora_cublasStatus (*cublasLtMatrixLayoutDestroy)(qlora_cublasLtMatrixLayout layout);
    qlora_cublasStatus (*cublasLtMatrixLayoutSetAttribute)(qlora_cublasLtMatrixLayout layout, int attribute, const void *value,
                                                           size_t size);
    qlora_cublasStatus (*cublasLtMatmulPreferenceCreate)(qlora_cublasLtMatmulPreference *preference);
    qlora_cublasStatus (*cublasLtMatmulPreferenceDestroy)(qlora_cublasLtMatmulPreference preference);
    qlora_cublasStatus (*cublasLtMatmulPreferenceSetAttribute)(qlora_cublasLtMatmulPreference preference, int attribute,
                                                               const void *value, size_t size);
    qlora_cublasStatus (*cublasLtMatmulAlgoGetHeuristic)(qlora_cublasLtHandle handle, qlora_cublasLtMatmulDesc desc,
                                                         qlora_cublasLtMatrixLayout a, qlora_cublasLtMatrixLayout b,
                                                         qlora_cublasLtMatrixLayout c, qlora_cublasLtMatrixLayout d,
                                                         qlora_cublasLtMatmulPreference preference, int requested,
                                                         qlora_cublasLtMatmulHeuristicResult *results, int *returned);
    qlora_cublasStatus (*cublasLtMatmul)(qlora_cublasLtHandle handle, qlora_cublasLtMatmulDesc desc, const void *alpha,
                                         const void *a, qlora_cublasLtMatrixLayout aDesc, const void *b,
                                         qlora_cublasLtMatrixLayout bDesc, const void *beta, const void *c,
                                         qlora_cublasLtMatrixLayout cDesc, void *d, qlora_cublasLtMatrixLayout dDesc,
                                         const qlora_cublasLtMatmulAlgo *algo, void *workspace, size_t workspaceBytes,
                                         qlora_CUstream stream);
} qlora_cublaslt;

// MARK: Loading

/// Opens the driver library at `path` (e.g. "libcuda.so.1") and resolves every entry point. Returns 0, or -1 with
/// a message in `error` (dlerror, or the missing symbol).
int qlora_cuda_open_driver(const char *path, qlora_cuda_driver *driver, char *error, size_t errorSize);

/// Opens NVRTC at `path`, after `builtins` (its libnvrtc-builtins, which libnvrtc opens by bare name, so it must be
/// loaded first with RTLD_GLOBAL when it is not on the loader's path; NULL to skip).
int qlora_cuda_open_nvrtc(const char *path, const char *builtins, qlora_nvrtc *nvrtc, char *error, size_t errorSize);

/// Opens cuBLASLt at `path`.
int qlora_cuda_open_cublaslt(const char *path, qlora_cublaslt *lt, char *error, size_t errorSize);

#endif
