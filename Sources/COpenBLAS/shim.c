// Loads OpenBLAS at first use with a core type chosen from cpuid; see include/COpenBLAS.h for why.
#define _GNU_SOURCE
#include "COpenBLAS.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define QLORA_X86 1
#endif

// MARK: CPU identification

static qlora_cpu_info cpu_info;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

#ifdef QLORA_X86
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ __volatile__(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));  // xgetbv(0)
    return ((uint64_t)edx << 32) | eax;
}
#endif

static void identify(void) {
    memset(&cpu_info, 0, sizeof cpu_info);
#ifdef QLORA_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned maxLeaf = a;
    memcpy(cpu_info.vendor + 0, &b, 4);
    memcpy(cpu_info.vendor + 4, &d, 4);
    memcpy(cpu_info.vendor + 8, &c, 4);

    unsigned ecx1 = 0, edx1 = 0;
    if (maxLeaf >= 1) {
        __get_cpuid(1, &a, &b, &ecx1, &edx1);
        unsigned base = (a >> 8) & 0xF, model = (a >> 4) & 0xF;
        cpu_info.stepping = a & 0xF;
        cpu_info.family = base == 0xF ? base + ((a >> 20) & 0xFF) : base;
        cpu_info.model = (base == 0x6 || base == 0xF) ? (((a >> 16) & 0xF) << 4) + model : model;
    }
    unsigned ebx7 = 0, ecx7 = 0, edx7 = 0, eax71 = 0;
    if (maxLeaf >= 7) {
        unsigned maxSub7;
        __cpuid_count(7, 0, maxSub7, ebx7, ecx7, edx7);
        if (maxSub7 >= 1) __cpuid_count(7, 1, eax71, b, c, d);
    }
    uint64_t xcr0 = (ecx1 & (1u << 27)) ? read_xcr0() : 0;  // OSXSAVE: the OS manages XCR0
    int osYMM = (xcr0 & 0x6) == 0x6;                          // SSE + AVX state
    int osZMM = osYMM && (xcr0 & 0xE0) == 0xE0;               // opmask + ZMM_Hi256 + Hi16_ZMM
    int osTile = (xcr0 & 0x60000) == 0x60000;                 // XTILECFG + XTILEDATA

    uint64_t f = 0;
#define SET(cond, bit) \
    if (cond) f |= (uint64_t)(bit)
    SET(edx1 & (1u << 26), QLoRACPUFeatureSSE2);
    SET(ecx1 & (1u << 0), QLoRACPUFeatureSSE3);
    SET(ecx1 & (1u << 9), QLoRACPUFeatureSSSE3);
    SET(ecx1 & (1u << 19), QLoRACPUFeatureSSE41);
    SET(ecx1 & (1u << 20), QLoRACPUFeatureSSE42);
    if (osYMM && (ecx1 & (1u << 28))) {
        f |= QLoRACPUFeatureAVX;
        SET(ecx1 & (1u << 29), QLoRACPUFeatureF16C);
        SET(ecx1 & (1u << 12), QLoRACPUFeatureFMA);
        SET(ebx7 & (1u << 5), QLoRACPUFeatureAVX2);
        SET(eax71 & (1u << 4), QLoRACPUFeatureAVXVNNI);
    }
    if (ebx7 & (1u << 16)) {
        if (osZMM && (f & QLoRACPUFeatureAVX)) {
            f |= QLoRACPUFeatureAVX512F;
            SET(ebx7 & (1u << 28), QLoRACPUFeatureAVX512CD);
            SET(ebx7 & (1u << 30), QLoRACPUFeatureAVX512BW);
            SET(ebx7 & (1u << 17), QLoRACPUFeatureAVX512DQ);
            SET(ebx7 & (1u << 31), QLoRACPUFeatureAVX512VL);
            SET(ecx7 & (1u << 11), QLoRACPUFeatureAVX512VNNI);
            SET(eax71 & (1u << 5), QLoRACPUFeatureAVX512BF16);
            SET(edx7 & (1u << 23), QLoRACPUFeatureAVX512FP16);
        } else {
            f |= QLoRACPUFeatureAVX512DisabledByOS;
        }
    }
    if (osTile && (edx7 & (1u << 24))) {
        f |= QLoRACPUFeatureAMXTile;
        SET(edx7 & (1u << 22), QLoRACPUFeatureAMXBF16);
        SET(edx7 & (1u << 25), QLoRACPUFeatureAMXINT8);
    }
#undef SET
    cpu_info.features = f;

    __get_cpuid(0x80000000, &a, &b, &c, &d);
    if (a >= 0x80000004) {
        unsigned *brand = (unsigned *)cpu_info.brand;
        for (unsigned leaf = 0; leaf < 3; leaf++)
            __get_cpuid(0x80000002 + leaf, &brand[4 * leaf], &brand[4 * leaf + 1], &brand[4 * leaf + 2],
                        &brand[4 * leaf + 3]);
        cpu_info.brand[48] = 0;
        char *start = cpu_info.brand;
        while (*start == ' ') start++;
        memmove(cpu_info.brand, start, strlen(start) + 1);
        for (size_t n = strlen(cpu_info.brand); n > 0 && cpu_info.brand[n - 1] == ' '; n--) cpu_info.brand[n - 1] = 0;
    }
#endif
}

const qlora_cpu_info *qlora_cpu_identify(void) {
    pthread_once(&cpu_once, identify);
    return &cpu_info;
}

const char *qlora_openblas_choose_coretype(uint64_t features, const char *vendor, unsigned family, unsigned model) {
    (void)family;
    (void)model;
    const uint64_t avx2 = QLoRACPUFeatureAVX | QLoRACPUFeatureAVX2 | QLoRACPUFeatureFMA;
    const uint64_t avx512 = avx2 | QLoRACPUFeatureAVX512F | QLoRACPUFeatureAVX512CD | QLoRACPUFeatureAVX512BW |
                            QLoRACPUFeatureAVX512DQ | QLoRACPUFeatureAVX512VL;
    if ((features & avx512) == avx512) return (features & QLoRACPUFeatureAVX512BF16) ? "Cooperlake" : "SkylakeX";
    if ((features & avx2) == avx2) {
        int amd = vendor && (strcmp(vendor, "AuthenticAMD") == 0 || strcmp(vendor, "HygonGenuine") == 0);
        return amd ? "Zen" : "Haswell";
    }
    return NULL;
}

// MARK: Loading OpenBLAS

static const char *const library_names[] = {
#ifdef __APPLE__
    "libopenblas.0.dylib", "libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
    "/usr/local/opt/openblas/lib/libopenblas.dylib",
#else
    "libopenblas.so.0",  // Debian/Ubuntu libopenblas0-pthread (or -openmp/-serial), via update-alternatives
    "libopenblas.so",    // a development install or a self-built OpenBLAS on the library path
#endif
};

static qlora_openblas_api api;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static int config_policy = QLoRAOpenBLASCoreTypeAutomatic;
static char config_name[64];
static int load_started;
static char library_text[PATH_MAX + 64];
static char error_text[2048];
static char requested_text[64];

int qlora_openblas_configure(int policy, const char *name) {
    pthread_mutex_lock(&config_lock);
    int applies = !load_started;
    if (applies) {
        config_policy = policy;
        snprintf(config_name, sizeof config_name, "%s", name ? name : "");
    }
    pthread_mutex_unlock(&config_lock);
    return applies;
}

static void append_error(const char *format, const char *a, const char *b) {
    size_t used = strlen(error_text);
    snprintf(error_text + used, sizeof error_text - used, format, a, b);
}

static void trim_error(void) {
    size_t n = strlen(error_text);
    if (n >= 2 && error_text[n - 2] == ';') error_text[n - 2] = 0;
}

static void load(void) {
    pthread_mutex_lock(&config_lock);
    load_started = 1;
    int policy = config_policy;
    pthread_mutex_unlock(&config_lock);

    api.library = library_text;
    api.error = error_text;

    // The core type for OpenBLAS's constructor. OpenBLAS 0.3.21 accepts it only through OPENBLAS_CORETYPE,
    // read by that constructor during dlopen, so this is the one place qlora writes the environment: set
    // just before dlopen and removed right after, only when the user has not set it (a user's value is
    // never touched), so child processes and later getenv calls see the user's environment unchanged.
    // glibc serializes setenv/unsetenv and never frees environment strings, so a getenv racing on another
    // thread sees the variable or not, nothing worse.
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *chosen = NULL;
    if (user) {
        snprintf(requested_text, sizeof requested_text, "%s", user);
        api.requested = requested_text;
        api.source = QLoRAOpenBLASCoreTypeFromUserEnv;
    } else if (policy == QLoRAOpenBLASCoreTypeNamed && config_name[0]) {
        chosen = config_name;
        api.source = QLoRAOpenBLASCoreTypeFromCaller;
    } else if (policy == QLoRAOpenBLASCoreTypeAutomatic) {
        const qlora_cpu_info *cpu = qlora_cpu_identify();
        chosen = qlora_openblas_choose_coretype(cpu->features, cpu->vendor, cpu->family, cpu->model);
        api.source = chosen ? QLoRAOpenBLASCoreTypeFromCPUID : QLoRAOpenBLASCoreTypeFromOpenBLAS;
    } else {
        api.source = QLoRAOpenBLASCoreTypeFromOpenBLAS;
    }
    if (chosen) {
        snprintf(requested_text, sizeof requested_text, "%s", chosen);
        api.requested = requested_text;
    }

    void *handle = NULL;
    const char *loadedName = NULL;
    for (size_t i = 0; i < sizeof library_names / sizeof *library_names && !handle; i++) {
        // Already in the process (linked or loaded by someone else): its constructor has run, whatever we set.
        handle = dlopen(library_names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        if (handle) {
            api.source = user ? QLoRAOpenBLASCoreTypeFromUserEnv : QLoRAOpenBLASCoreTypeFromPreloaded;
            loadedName = library_names[i];
        }
    }
    for (size_t i = 0; i < sizeof library_names / sizeof *library_names && !handle; i++) {
        if (chosen) setenv("OPENBLAS_CORETYPE", chosen, 1);
        handle = dlopen(library_names[i], RTLD_NOW | RTLD_LOCAL);
        if (chosen) unsetenv("OPENBLAS_CORETYPE");
        if (handle) {
            loadedName = library_names[i];
        } else {
            const char *why = dlerror();  // names the file already
            append_error("%s%s; ", why ? why : library_names[i], why ? "" : ": not found");
        }
    }
    if (!handle) {
        trim_error();
        size_t used = 0;
        for (size_t i = 0; i < sizeof library_names / sizeof *library_names; i++)
            used += snprintf(library_text + used, sizeof library_text - used, "%s%s", i ? ", " : "", library_names[i]);
        return;
    }

#define RESOLVE(field, symbol)                                          \
    do {                                                                \
        *(void **)&api.field = dlsym(handle, symbol);                   \
        if (!api.field) append_error("%s%s; ", "missing symbol ", symbol); \
    } while (0)
    RESOLVE(sgemm, "cblas_sgemm");
    RESOLVE(sgemv, "cblas_sgemv");
    RESOLVE(set_num_threads, "openblas_set_num_threads");
    RESOLVE(get_num_threads, "openblas_get_num_threads");
    RESOLVE(get_corename, "openblas_get_corename");
    RESOLVE(get_config, "openblas_get_config");
#undef RESOLVE

    Dl_info where;
    char resolved[PATH_MAX];
    if (api.sgemm && dladdr(*(void **)&api.sgemm, &where) && where.dli_fname && realpath(where.dli_fname, resolved))
        snprintf(library_text, sizeof library_text, "%s", resolved);
    else
        snprintf(library_text, sizeof library_text, "%s", loadedName);
    api.loaded = error_text[0] == 0;
    trim_error();
}

const qlora_openblas_api *qlora_openblas_load(void) {
    pthread_once(&load_once, load);
    return &api;
}

const qlora_openblas_api *qlora_openblas(void) {
    pthread_once(&load_once, load);
    if (__builtin_expect(!api.loaded, 0)) {
        fprintf(stderr,
                "qlora: cannot use OpenBLAS (tried %s): %s\n"
                "qlora: install it (Debian/Ubuntu: apt-get install libopenblas0-pthread)\n",
                api.library, api.error);
        abort();
    }
    return &api;
}
