/* threads.c - nabla's one thread pool, and the version.
 *
 * nb_set_num_threads(n) sizes the pool; OpenBLAS is kept at one thread so the two pools never
 * fight: big GEMMs are split by rows or columns across the pool, each part a 1-thread BLAS
 * call (on 2 cores this beats OpenBLAS's own threads, which thrash on small matrices).
 * Workers spin briefly between jobs (a training step issues jobs every few microseconds),
 * then sleep on a condition variable. One caller at a time uses the pool; a second thread
 * asking meanwhile simply runs its job serially.
 *
 * The parts of a job are claimed, not assigned: the caller and the workers each take the next
 * unclaimed part until none is left. A worker that the OS has not scheduled yet (a busy
 * machine) never holds the caller up, which then runs that part itself; the caller waits only
 * for parts that a worker has started. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include "internal.h"

#ifdef NB_HAVE_OPENBLAS
void openblas_set_num_threads(int num_threads);
#endif

enum { MAX_THREADS = 64, SPIN_NS = 2000000 /* spin 2 ms after a job before sleeping */ };

/* The ticket names the current job and its next unclaimed part: generation << 16 | parts << 8
 * | next part. Claiming a part is one compare-and-swap of next, which fails if the job changed
 * meanwhile; a job cannot end while a part of it is claimed and not done, so whoever claimed a
 * part may read the job's fields. */
#define TICKET(gen, parts) ((uint_fast64_t)(gen) << 16 | (uint_fast64_t)(parts) << 8)
#define TICKET_GEN(t) ((t) >> 16)
#define TICKET_PARTS(t) ((int)((t) >> 8 & 0xff))
#define TICKET_NEXT(t) ((int)((t) & 0xff))

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

/* Claim and run parts of job gen until none is left or another job has replaced it. */
static void run_parts(uint_fast64_t gen) {
    uint_fast64_t t = atomic_load_explicit(&P.ticket, memory_order_acquire);
    while (TICKET_GEN(t) == gen && TICKET_NEXT(t) < TICKET_PARTS(t)) {
        if (!atomic_compare_exchange_weak_explicit(&P.ticket, &t, t + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue; /* t now holds the current ticket */
        int64_t part = TICKET_NEXT(t), parts = TICKET_PARTS(t);
        int64_t b = P.n * part / parts, e = P.n * (part + 1) / parts;
        if (b < e) P.fn(P.ctx, b, e);
        atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
        t = atomic_load_explicit(&P.ticket, memory_order_acquire);
    }
}

static void *worker(void *arg) {
    (void)arg; /* a job published before the worker looks is left to the caller */
    uint_fast64_t seen = TICKET_GEN(atomic_load(&P.ticket));
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
        run_parts(seen);
    }
    return NULL;
}

/* Start workers up to threads - 1 (never stopped: they sleep when idle). */
static int ensure_workers(int threads) {
    while (P.nworkers < threads - 1 && P.nworkers < MAX_THREADS - 1) {
        if (pthread_create(&P.tid[P.nworkers], NULL, worker, NULL)) break;
        P.nworkers++;
    }
    return P.nworkers + 1;
}

void nb__parallel_for(int64_t n, int64_t grain, nb__range_fn fn, void *ctx) {
    int threads = num_threads;
    int parts = grain > 0 ? (int)(n / grain) : threads;
    if (parts > threads) parts = threads;
    if (parts <= 1 || pthread_mutex_trylock(&P.use) != 0) {
        fn(ctx, 0, n);
        return;
    }
    int avail = ensure_workers(threads);
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
    run_parts(gen);
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

const char *nb_blas_backend(void) {
#ifdef NB_HAVE_OPENBLAS
    return "openblas";
#else
    return "builtin";
#endif
}

const char *nb_version(void) { return NB_VERSION_STRING; }
