// The worker pool of CQLoRAKernelsPool.h. One region at a time: `generation` counts regions; a worker that sees it
// change takes parts from `next` until they run out, then counts itself done. Between regions workers spin
// (checking `generation`) for about SPIN_ROUNDS pauses before sleeping on `wake`, so back-to-back regions (one
// decode step) never pay a futex wake-up, while an idle pool costs no CPU.
#include "CQLoRAKernelsPool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

enum { SPIN_ROUNDS = 1 << 15 };

struct qlk_pool {
    int threads;
    pthread_t *workers;
    int started;

    pthread_mutex_t lock;       // guards sleepers and wake
    pthread_cond_t wake;
    int sleepers;

    atomic_flag busy;           // a region is running
    atomic_uint_fast64_t generation;
    atomic_int stop;

    qlk_pool_task task;         // the current region (written before generation is bumped)
    void *context;
    int64_t parts;
    atomic_int_fast64_t next;   // the next part to take
    atomic_int pending;         // workers still inside the current region
};

static void take_parts(qlk_pool *pool) {
    for (;;) {
        int64_t p = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (p >= pool->parts) return;
        pool->task(pool->context, p);
    }
}

static void *worker_main(void *arg) {
    qlk_pool *pool = arg;
    // Regions counted from 0: a worker that starts after the first region began still joins it (it counts in
    // `pending`), so it must not take the current count as already seen.
    uint64_t seen = 0;
    for (;;) {
        uint64_t now = seen;
        for (int spin = 0; spin < SPIN_ROUNDS; spin++) {
            now = atomic_load_explicit(&pool->generation, memory_order_acquire);
            if (now != seen || atomic_load_explicit(&pool->stop, memory_order_relaxed)) break;
            CPU_RELAX();
        }
        if (now == seen && !atomic_load_explicit(&pool->stop, memory_order_relaxed)) {
            pthread_mutex_lock(&pool->lock);
            pool->sleepers++;
            while ((now = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
                   !atomic_load_explicit(&pool->stop, memory_order_relaxed))
                pthread_cond_wait(&pool->wake, &pool->lock);
            pool->sleepers--;
            pthread_mutex_unlock(&pool->lock);
        }
        if (atomic_load_explicit(&pool->stop, memory_order_relaxed)) return NULL;
        seen = now;
        take_parts(pool);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

qlk_pool *qlk_pool_create(int threads) {
    if (threads < 1) threads = 1;
    qlk_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    atomic_flag_clear(&pool->busy);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->next, 0);
    atomic_init(&pool->pending, 0);
    if (threads > 1) {
        pool->workers = calloc((size_t)(threads - 1), sizeof(pthread_t));
        if (!pool->workers) { qlk_pool_destroy(pool); return NULL; }
        for (int i = 0; i < threads - 1; i++) {
            if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0) {
                qlk_pool_destroy(pool);
                return NULL;
            }
            pool->started++;
        }
    }
    return pool;
}

void qlk_pool_destroy(qlk_pool *pool) {
    if (!pool) return;
    atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
    pthread_mutex_lock(&pool->lock);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->started; i++) pthread_join(pool->workers[i], NULL);
    free(pool->workers);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

int qlk_pool_threads(const qlk_pool *pool) { return pool ? pool->threads : 1; }

void qlk_pool_run(qlk_pool *pool, qlk_pool_task task, void *context, int64_t parts) {
    if (parts <= 0) return;
    if (!pool || pool->started == 0 || parts == 1 || atomic_flag_test_and_set_explicit(&pool->busy, memory_order_acquire)) {
        for (int64_t p = 0; p < parts; p++) task(context, p);
        return;
    }
    pool->task = task;
    pool->context = context;
    pool->parts = parts;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, pool->started, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_mutex_lock(&pool->lock);
    if (pool->sleepers > 0) pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    take_parts(pool);
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0) CPU_RELAX();
    atomic_flag_clear_explicit(&pool->busy, memory_order_release);
}
