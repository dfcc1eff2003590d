/* threads.c - nabla's one thread pool, and the version.
 *
 * nb_set_num_threads(n) sizes the pool; OpenBLAS is kept at one thread so the two pools never
 * fight: big GEMMs are split by rows or columns across the pool, each part a 1-thread kernel
 * call (on 2 cores this beats OpenBLAS's own threads, which thrash on small matrices).
 * Workers spin briefly between jobs (a training step issues jobs every few microseconds),
 * then sleep on a condition variable. One caller at a time uses the pool; a second thread
 * asking meanwhile simply runs its job serially.
 *
 * The parts of a job are claimed, not assigned: thread i (the caller is 0) takes part i first,
 * then any part still unclaimed, until none is left. So the same slice of the same data stays
 * with the same core from one job to the next (the optimizers split a weight the way the
 * GEMMs split its rows), while a worker that the OS has not scheduled (a busy machine) never
 * holds the caller up: the caller runs that part itself, and waits only for parts that a
 * worker has started. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include "internal.h"

#ifdef NB_HAVE_OPENBLAS
void openblas_set_num_threads(int num_threads);
#endif

enum {
    MAX_THREADS = 64,
    MAX_PARTS = 32,     /* a job runs in at most this many parts */
    SPIN_NS = 2000000   /* spin 2 ms after a job before sleeping */
};

/* The ticket names the current job and which of its parts are taken: generation << 40 |
 * parts << 32 | a bit per claimed part. Claiming a part is one compare-and-swap that sets its
 * bit, which fails if the job changed meanwhile; a job cannot end while a part of it is
 * claimed and not done, so whoever claimed a part may read the job's fields. */
#define TICKET(gen, parts) ((uint_fast64_t)(gen) << 40 | (uint_fast64_t)(parts) << 32)
#define TICKET_GEN(t) ((t) >> 40)
#define TICKET_PARTS(t) ((int)((t) >> 32 & 0xff))
#define TICKET_FREE(t) (~(t) & ((UINT64_C(1) << TICKET_PARTS(t)) - 1)) /* unclaimed parts */

typedef struct pool {
    pthread_mutex_t use;  /* held by the thread running a parallel job */
    pthread_mutex_t lock; /* guards sleeping/waking */
    pthread_cond_t wake;
    pthread_t tid[MAX_THREADS];
    int nworkers;                /* started workers (threads - 1) */
    atomic_uint_fast64_t ticket; /* see TICKET */
    atomic_int done;             /* parts of the current job finished */
    atomic_int sleepers;
    nb__range_fn fn; /* the job, written before its ticket is published */
    void *ctx;
    int64_t n;
} pool;

static pool P = {.use = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
                 .wake = PTHREAD_COND_INITIALIZER};
static _Atomic int num_threads = 1;

/* Busy-wait politely: a pause hint for a while, then give the core away. On an oversubscribed
 * machine the thread we wait for may need our core to run at all. */
static void relax(unsigned *spins) {
    if (++*spins < 2048) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield();
    }
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claim and run parts of job gen until none is left or another job has replaced it: first
 * part `home` (thread i runs part i of every job when it can, so that the same slice of the
 * same data stays in the same core's cache from one job to the next), then any other. */
static void run_parts(uint_fast64_t gen, int home) {
    uint_fast64_t t = atomic_load_explicit(&P.ticket, memory_order_acquire);
    while (TICKET_GEN(t) == gen && TICKET_FREE(t)) {
        uint_fast64_t free = TICKET_FREE(t);
        int part = free >> home & 1 ? home : __builtin_ctzll(free);
        if (!atomic_compare_exchange_weak_explicit(&P.ticket, &t, t | UINT64_C(1) << part,
                                                   memory_order_acquire, memory_order_acquire))
            continue; /* t now holds the current ticket */
        int64_t parts = TICKET_PARTS(t);
        int64_t b = P.n * part / parts, e = P.n * (part + 1) / parts;
        if (b < e) P.fn(P.ctx, b, e);
        atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
        t = atomic_load_explicit(&P.ticket, memory_order_acquire);
    }
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg; /* 1..nworkers: its home part (the caller's is 0) */
    uint_fast64_t seen = TICKET_GEN(atomic_load(&P.ticket)); /* earlier jobs: the caller's */
    for (;;) {
        int64_t t0 = now_ns();
        unsigned spins = 0;
        while (TICKET_GEN(atomic_load_explicit(&P.ticket, memory_order_acquire)) == seen) {
            relax(&spins);
            if ((spins & 255) == 0 && now_ns() - t0 > SPIN_NS) {
                pthread_mutex_lock(&P.lock);
                atomic_fetch_add(&P.sleepers, 1);
                while (TICKET_GEN(atomic_load(&P.ticket)) == seen) pthread_cond_wait(&P.wake, &P.lock);
                atomic_fetch_sub(&P.sleepers, 1);
                pthread_mutex_unlock(&P.lock);
            }
        }
        seen = TICKET_GEN(atomic_load_explicit(&P.ticket, memory_order_acquire));
        run_parts(seen, id);
    }
    return NULL;
}

/* Start workers up to threads - 1 (never stopped: they sleep when idle). */
static int ensure_workers(int threads) {
    while (P.nworkers < threads - 1 && P.nworkers < MAX_THREADS - 1) {
        if (pthread_create(&P.tid[P.nworkers], NULL, worker, (void *)(intptr_t)(P.nworkers + 1))) break;
        P.nworkers++;
    }
    return P.nworkers + 1;
}

void nb__parallel_for(int64_t n, int64_t grain, nb__range_fn fn, void *ctx) {
    int threads = num_threads;
    int64_t parts = grain > 0 ? n / grain : threads;
    if (parts > threads) parts = threads;
    if (parts > MAX_PARTS) parts = MAX_PARTS;
    if (parts <= 1 || pthread_mutex_trylock(&P.use) != 0) {
        fn(ctx, 0, n);
        return;
    }
    int64_t avail = ensure_workers(threads);
    if (parts > avail) parts = avail;
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    uint_fast64_t gen = TICKET_GEN(atomic_load_explicit(&P.ticket, memory_order_relaxed)) + 1;
    atomic_store(&P.ticket, TICKET(gen, parts)); /* publish (seq_cst: then read sleepers) */
    if (atomic_load(&P.sleepers)) {
        pthread_mutex_lock(&P.lock);
        pthread_cond_broadcast(&P.wake);
        pthread_mutex_unlock(&P.lock);
    }
    run_parts(gen, 0);
    unsigned spins = 0;
    while (atomic_load_explicit(&P.done, memory_order_acquire) < parts) relax(&spins);
    pthread_mutex_unlock(&P.use);
}

void nb__blas_single_thread(void) {
#ifdef NB_HAVE_OPENBLAS
    static atomic_flag blas_single = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&blas_single)) openblas_set_num_threads(1);
#endif
}

int nb_set_num_threads(int n) {
    if (n < 1 || n > MAX_THREADS)
        return nb__error(NB_EINVAL, "set_num_threads: %d is outside 1..%d", n, MAX_THREADS);
    num_threads = n;
    nb__blas_single_thread();
    return NB_OK;
}

int nb_get_num_threads(void) { return num_threads; }
int nb__num_threads(void) { return num_threads; }


const char *nb_version(void) { return NB_VERSION_STRING; }
