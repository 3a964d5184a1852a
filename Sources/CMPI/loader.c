// dlopen + dlsym of Open MPI (include/CMPI.h).
#define _GNU_SOURCE
#include "CMPI.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef void *Handle;   // MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request in Open MPI

static struct {
    int (*Initialized)(int *);
    int (*Init_thread)(int *, char ***, int, int *);
    int (*Finalize)(void);
    int (*Abort)(Handle, int);
    int (*Comm_rank)(Handle, int *);
    int (*Comm_size)(Handle, int *);
    int (*Comm_set_errhandler)(Handle, Handle);
    int (*Get_library_version)(char *, int *);
    int (*Error_string)(int, char *, int *);
    int (*Isend)(const void *, int, Handle, int, int, Handle, Handle *);
    int (*Irecv)(void *, int, Handle, int, int, Handle, Handle *);
    int (*Ibcast)(void *, int, Handle, int, Handle, Handle *);
    int (*Iallreduce)(const void *, void *, int, Handle, Handle, Handle, Handle *);
    int (*Ibarrier)(Handle, Handle *);
    int (*Test)(Handle *, int *, void *);
    Handle world, byte, intType, opMax, inPlace, errorsReturn;
} mpi;

static int resolve(void *lib, const char *path, const char *name, void **slot, char *error, size_t size) {
    dlerror();
    *slot = dlsym(lib, name);
    if (*slot == NULL) {
        const char *detail = dlerror();
        snprintf(error, size, "%s has no %s (%s)", path, name, detail ? detail : "not found");
        return -1;
    }
    return 0;
}

#define RESOLVE(field, symbol) \
    if (resolve(lib, path, symbol, (void **)&mpi.field, error, errorSize) != 0) return -1

int qlora_mpi_load(const char *path, char *error, size_t errorSize) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (lib == NULL) {
        const char *detail = dlerror();
        snprintf(error, errorSize, "%s", detail ? detail : path);
        return -1;
    }
    // MPICH and its derivatives (Intel MPI, MVAPICH) use integer handles: their libmpi has no ompi_* objects.
    if (dlsym(lib, "ompi_mpi_comm_world") == NULL) {
        snprintf(error, errorSize, "%s is not Open MPI (no ompi_mpi_comm_world); qlora supports Open MPI's ABI only", path);
        return -1;
    }
    RESOLVE(Initialized, "MPI_Initialized");
    RESOLVE(Init_thread, "MPI_Init_thread");
    RESOLVE(Finalize, "MPI_Finalize");
    RESOLVE(Abort, "MPI_Abort");
    RESOLVE(Comm_rank, "MPI_Comm_rank");
    RESOLVE(Comm_size, "MPI_Comm_size");
    RESOLVE(Comm_set_errhandler, "MPI_Comm_set_errhandler");
    RESOLVE(Get_library_version, "MPI_Get_library_version");
    RESOLVE(Error_string, "MPI_Error_string");
    RESOLVE(Isend, "MPI_Isend");
    RESOLVE(Irecv, "MPI_Irecv");
    RESOLVE(Ibcast, "MPI_Ibcast");
    RESOLVE(Iallreduce, "MPI_Iallreduce");
    RESOLVE(Ibarrier, "MPI_Ibarrier");
    RESOLVE(Test, "MPI_Test");
    RESOLVE(world, "ompi_mpi_comm_world");
    RESOLVE(byte, "ompi_mpi_byte");
    RESOLVE(intType, "ompi_mpi_int");
    RESOLVE(opMax, "ompi_mpi_op_max");
    RESOLVE(errorsReturn, "ompi_mpi_errors_return");
    // MPI_IN_PLACE is ((void *) 1) in Open MPI's mpi.h.
    mpi.inPlace = (Handle)1;
    return 0;
}

int qlora_mpi_init(int *rank, int *size) {
    int initialized = 0, provided = 0, rc;
    if ((rc = mpi.Initialized(&initialized)) != 0) return rc;
    if (!initialized && (rc = mpi.Init_thread(NULL, NULL, 1 /* MPI_THREAD_FUNNELED */, &provided)) != 0) return rc;
    // Errors come back as codes (the caller names them) instead of aborting the job from inside a call.
    if ((rc = mpi.Comm_set_errhandler(mpi.world, mpi.errorsReturn)) != 0) return rc;
    if ((rc = mpi.Comm_rank(mpi.world, rank)) != 0) return rc;
    return mpi.Comm_size(mpi.world, size);
}

int qlora_mpi_library_version(char *out, int size) {
    char buffer[8192];   // MPI_MAX_LIBRARY_VERSION_STRING is 256 in Open MPI
    int length = 0;
    int rc = mpi.Get_library_version(buffer, &length);
    if (rc == 0) snprintf(out, (size_t)size, "%.*s", length, buffer);
    return rc;
}

int qlora_mpi_finalize(void) { return mpi.Finalize(); }
int qlora_mpi_abort(int code) { return mpi.Abort(mpi.world, code); }

void qlora_mpi_error_string(int code, char *out, int size) {
    char buffer[1024];   // MPI_MAX_ERROR_STRING is 256 in Open MPI
    int length = 0;
    if (mpi.Error_string == NULL || mpi.Error_string(code, buffer, &length) != 0) length = snprintf(buffer, sizeof buffer, "MPI error %d", code);
    snprintf(out, (size_t)size, "%.*s", length, buffer);
}

int qlora_mpi_isend(const void *buffer, int count, int destination, int tag, void **request) {
    return mpi.Isend(buffer, count, mpi.byte, destination, tag, mpi.world, request);
}

int qlora_mpi_irecv(void *buffer, int count, int source, int tag, void **request) {
    return mpi.Irecv(buffer, count, mpi.byte, source, tag, mpi.world, request);
}

int qlora_mpi_ibcast(void *buffer, int count, int root, void **request) {
    return mpi.Ibcast(buffer, count, mpi.byte, root, mpi.world, request);
}

int qlora_mpi_iallreduce_max_int(int *values, int count, void **request) {
    return mpi.Iallreduce(mpi.inPlace, values, count, mpi.intType, mpi.opMax, mpi.world, request);
}

int qlora_mpi_ibarrier(void **request) { return mpi.Ibarrier(mpi.world, request); }

int qlora_mpi_test(void **request, int *done) { return mpi.Test(request, done, NULL); }
