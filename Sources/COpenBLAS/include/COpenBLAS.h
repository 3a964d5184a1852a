// The few OpenBLAS entry points qlora uses, reached through a small loader (shim.c) instead of -lopenblas.
//
// Why a loader: OpenBLAS built with DYNAMIC_ARCH (Debian's libopenblas0-pthread) picks its kernels in its
// library constructor, from cpuid or from the OPENBLAS_CORETYPE environment variable read at that moment.
// Linked with -lopenblas, that constructor runs before main; and 0.3.21 does not know newer CPUs (Emerald or
// Granite Rapids, Zen 5, ...) and silently falls back to its Prescott (SSE3) kernels, about 4x slower. So the
// library is dlopen'ed at first use instead, and just before that the loader chooses the core type from cpuid
// (qlora_openblas_choose_coretype) unless the caller configured otherwise or the user set OPENBLAS_CORETYPE.
//
// The declarations below keep the cblas names qlora's Swift code calls; they are static inline (not exported
// symbols), so they cannot interpose on the real library's cblas_* symbols.
#ifndef QLORA_COPENBLAS_H
#define QLORA_COPENBLAS_H

#include <stdint.h>

enum QLoRACBLASOrder { QLoRACBLASRowMajor = 101, QLoRACBLASColMajor = 102 };
enum QLoRACBLASTranspose { QLoRACBLASNoTrans = 111, QLoRACBLASTrans = 112 };

// MARK: CPU identification (cpuid + xgetbv on x86-64; all zero elsewhere)

/// Feature bits of qlora_cpu_info.features. A SIMD feature is set only when the CPU has it (cpuid) and the
/// OS saves the registers it needs (XCR0 via xgetbv: YMM state for AVX/AVX2/FMA/F16C, opmask + ZMM state for
/// AVX-512, tile state for AMX), as OpenBLAS's own support_avx*() checks do.
enum QLoRACPUFeature {
    QLoRACPUFeatureSSE2 = 1 << 0,
    QLoRACPUFeatureSSE3 = 1 << 1,
    QLoRACPUFeatureSSSE3 = 1 << 2,
    QLoRACPUFeatureSSE41 = 1 << 3,
    QLoRACPUFeatureSSE42 = 1 << 4,
    QLoRACPUFeatureAVX = 1 << 5,
    QLoRACPUFeatureF16C = 1 << 6,
    QLoRACPUFeatureFMA = 1 << 7,
    QLoRACPUFeatureAVX2 = 1 << 8,
    QLoRACPUFeatureAVX512F = 1 << 9,
    QLoRACPUFeatureAVX512CD = 1 << 10,
    QLoRACPUFeatureAVX512BW = 1 << 11,
    QLoRACPUFeatureAVX512DQ = 1 << 12,
    QLoRACPUFeatureAVX512VL = 1 << 13,
    QLoRACPUFeatureAVX512VNNI = 1 << 14,
    QLoRACPUFeatureAVX512BF16 = 1 << 15,
    QLoRACPUFeatureAVX512FP16 = 1 << 16,
    QLoRACPUFeatureAMXTile = 1 << 17,
    QLoRACPUFeatureAMXBF16 = 1 << 18,
    QLoRACPUFeatureAMXINT8 = 1 << 19,
    QLoRACPUFeatureAVXVNNI = 1 << 20,
    /// The CPU reports AVX-512F but the OS does not enable the ZMM/opmask state (so no AVX-512 bit is set).
    QLoRACPUFeatureAVX512DisabledByOS = 1 << 30,
};

typedef struct {
    char vendor[13];       ///< "GenuineIntel", "AuthenticAMD", ...; empty off x86-64
    char brand[49];        ///< the processor brand string (cpuid 0x80000002-4), trimmed
    unsigned family;       ///< display family (base + extended when base is 0xF)
    unsigned model;        ///< display model (extended model prepended for families 6 and 0xF)
    unsigned stepping;
    uint64_t features;     ///< QLoRACPUFeature bits
} qlora_cpu_info;

/// This CPU, identified once (thread-safe).
const qlora_cpu_info *qlora_cpu_identify(void);

/// The OpenBLAS core type (a name OPENBLAS_CORETYPE accepts) for a CPU with these features, or NULL when
/// OpenBLAS's own detection is as good (CPUs without AVX2+FMA). Pure: features and vendor only; family and
/// model are accepted for future rules and ignored today.
///   AVX-512 F+CD+BW+DQ+VL with AVX512_BF16 -> "Cooperlake" (the SkylakeX sgemm kernels plus native bf16 sbgemm;
///                                            what 0.3.21 itself picks on the Sapphire Rapids / Zen 4 it knows)
///   AVX-512 F+CD+BW+DQ+VL                  -> "SkylakeX"
///   AVX2+FMA, AMD or Hygon                 -> "Zen" (the Haswell sgemm kernels with Zen blocking, 0.3.21's choice for Zen 1-3)
///   AVX2+FMA, any other vendor             -> "Haswell"
const char *qlora_openblas_choose_coretype(uint64_t features, const char *vendor, unsigned family, unsigned model);

// MARK: Loading OpenBLAS

/// How the loader sets OpenBLAS's core type (a caller's option; the default is automatic).
enum QLoRAOpenBLASCoreTypePolicy {
    /// Choose from cpuid (qlora_openblas_choose_coretype) unless OPENBLAS_CORETYPE is set.
    QLoRAOpenBLASCoreTypeAutomatic = 0,
    /// Leave it to OpenBLAS's constructor (its own cpuid tables, or OPENBLAS_CORETYPE when set).
    QLoRAOpenBLASCoreTypeLibraryDefault = 1,
    /// Use the given name unless OPENBLAS_CORETYPE is set.
    QLoRAOpenBLASCoreTypeNamed = 2,
};

/// Who decided the core type in use.
enum QLoRAOpenBLASCoreTypeSource {
    QLoRAOpenBLASCoreTypeFromCPUID = 0,       ///< qlora chose it from cpuid (automatic policy)
    QLoRAOpenBLASCoreTypeFromUserEnv = 1,     ///< the user's OPENBLAS_CORETYPE, left untouched
    QLoRAOpenBLASCoreTypeFromOpenBLAS = 2,    ///< OpenBLAS's own detection (policy, or no rule for this CPU)
    QLoRAOpenBLASCoreTypeFromCaller = 3,      ///< the name a caller passed (named policy)
    QLoRAOpenBLASCoreTypeFromPreloaded = 4,   ///< OpenBLAS was already in the process: its constructor had run
};

/// Sets the policy for the load that has not happened yet. Returns 1 when it will apply, 0 when OpenBLAS is
/// already loaded (the call then changes nothing). `name` is copied; it is used only with the named policy.
int qlora_openblas_configure(int policy, const char *name);

typedef struct {
    int loaded;                  ///< 1 when every entry point below resolved
    const char *library;         ///< the file loaded (symlinks resolved), or the names tried when nothing loaded
    const char *error;           ///< why loading failed (dlerror of each name tried), "" when loaded
    const char *requested;       ///< the core type set for the constructor (or the user's value); NULL when none
    int source;                  ///< QLoRAOpenBLASCoreTypeSource
    void (*sgemm)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
    void (*sgemv)(int, int, int, int, float, const float *, int, const float *, int, float, float *, int);
    void (*set_num_threads)(int);
    int (*get_num_threads)(void);
    char *(*get_corename)(void);
    char *(*get_config)(void);
} qlora_openblas_api;

/// Loads OpenBLAS once (thread-safe) and returns what happened; never aborts (check `loaded`).
const qlora_openblas_api *qlora_openblas_load(void);

/// The loaded library's entry points; on first use it loads, and when that fails it prints what was tried
/// and aborts (a GEMM cannot proceed without its library).
const qlora_openblas_api *qlora_openblas(void);

// MARK: The cblas calls qlora makes

static inline void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a,
                               int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    qlora_openblas()->sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static inline void cblas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                               const float *x, int incx, float beta, float *y, int incy) {
    qlora_openblas()->sgemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy);
}

static inline void openblas_set_num_threads(int threads) { qlora_openblas()->set_num_threads(threads); }
static inline int openblas_get_num_threads(void) { return qlora_openblas()->get_num_threads(); }

#endif
