// Open MPI, loaded at run time (loader.c): qlora links nothing from MPI, so the same binary runs single-process
// where no MPI is installed and data-parallel under mpirun/srun where Open MPI is.
//
// Only Open MPI's ABI is declared: its handles (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request) are pointers, and
// the predefined ones are the addresses of exported objects (MPI_COMM_WORLD is &ompi_mpi_comm_world), which
// dlsym returns. MPICH's handles are integers, so an MPICH libmpi is refused by name. MPI_STATUS_IGNORE is NULL in
// Open MPI. Every transfer is non-blocking and polled (qlora_mpi_test), so the caller can give up on a timeout or
// a stop request instead of hanging in a collective whose peer died.
#ifndef QLORA_CMPI_H
#define QLORA_CMPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Opens `path` (RTLD_GLOBAL: Open MPI's components are plugins that resolve libmpi's symbols) and resolves the
/// entry points and predefined handles. 0 on success, else -1 with the reason in `error`.
int qlora_mpi_load(const char *path, char *error, size_t errorSize);

/// MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is already initialized; rank and size of MPI_COMM_WORLD.
int qlora_mpi_init(int *rank, int *size);
/// MPI_Get_library_version into `out`.
int qlora_mpi_library_version(char *out, int size);
int qlora_mpi_finalize(void);
int qlora_mpi_abort(int code);
/// MPI_Error_string.
void qlora_mpi_error_string(int code, char *out, int size);

/// Non-blocking byte transfers on MPI_COMM_WORLD (count < 2^31; the caller splits larger ones). `*request` is an
/// opaque MPI_Request.
int qlora_mpi_isend(const void *buffer, int count, int destination, int tag, void **request);
int qlora_mpi_irecv(void *buffer, int count, int source, int tag, void **request);
int qlora_mpi_ibcast(void *buffer, int count, int root, void **request);
/// In-place MPI_Iallreduce of `count` ints with MPI_MAX (integers: exact, and independent of the order).
int qlora_mpi_iallreduce_max_int(int *values, int count, void **request);
int qlora_mpi_ibarrier(void **request);
/// MPI_Test: `*done` is 1 when the request completed (and was freed).
int qlora_mpi_test(void **request, int *done);

#ifdef __cplusplus
}
#endif

#endif
