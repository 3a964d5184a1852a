// A fixed set of worker threads for short parallel regions (decoding's GEMVs: ~200 per token, tens of
// microseconds each), where waking a general-purpose thread pool costs as much as the work. Workers spin a short
// while after each region, then sleep on a condition variable; the caller runs part of the work itself.
#ifndef QLORA_CQLORAKERNELS_POOL_H
#define QLORA_CQLORAKERNELS_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qlk_pool qlk_pool;

/// `part` runs once for each of 0 ..< parts, on any thread; `context` is the caller's.
typedef void (*qlk_pool_task)(void *context, int64_t part);

/// A pool running regions on `threads` threads in all (the caller plus threads - 1 workers); NULL when a thread
/// cannot be started (the caller then runs regions inline).
qlk_pool *qlk_pool_create(int threads);

/// Stops and joins the workers. No region may be running.
void qlk_pool_destroy(qlk_pool *pool);

/// Runs task(context, p) for every p in 0 ..< parts and returns when all have finished. Parts are taken in order by
/// whichever thread is free, so a task must write only its own part's output. A region started while another is
/// running on the same pool (from another thread, or nested inside a task) runs inline on the calling thread.
void qlk_pool_run(qlk_pool *pool, qlk_pool_task task, void *context, int64_t parts);

/// The number of threads a region runs on (the caller included).
int qlk_pool_threads(const qlk_pool *pool);

#ifdef __cplusplus
}
#endif

#endif
