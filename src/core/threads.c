/* threads.c - nabla's one thread pool, and the version.
 *
 * nb_set_num_threads(n) sizes the pool; OpenBLAS is kept at one thread so the two pools never
 * fight: big GEMMs are split by rows or columns across the pool, each part a 1-thread BLAS
 * call (on 2 cores this beats OpenBLAS's own threads, which thrash on small matrices).
 * Workers spin briefly between jobs (a training step issues jobs every few microseconds),
 * then sleep on a condition variable. One caller at a time uses the pool; a second thread
 * asking meanwhile simply runs its job serially. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include "internal.h"

#ifdef NB_HAVE_OPENBLAS
void openblas_set_num_threads(int num_threads);
#endif

enum { MAX_THREADS = 64, SPIN_NS = 2000000 /* spin 2 ms after a job before sleeping */ };

typedef struct pool {
    pthread_mutex_t use;      /* held by the thread running a parallel job */
    pthread_mutex_t lock;     /* guards sleeping/waking */
    pthread_cond_t wake;
    pthread_t tid[MAX_THREADS];
    uint_fast64_t start_gen[MAX_THREADS]; /* the generation a worker was created at */
    int nworkers;             /* started workers (threads - 1) */
    atomic_uint_fast64_t gen; /* job generation: bumped to publish a job */
    atomic_int pending;       /* workers still running the current job */
    atomic_int sleepers;
    nb__range_fn fn;
    void *ctx;
    int64_t n;
    int parts;
} pool;

static pool P = {.use = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
                 .wake = PTHREAD_COND_INITIALIZER};
static _Atomic int num_threads = 1;
static atomic_flag blas_single = ATOMIC_FLAG_INIT;

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

static void run_part(int part) {
    int64_t b = P.n * part / P.parts, e = P.n * (part + 1) / P.parts;
    if (b < e) P.fn(P.ctx, b, e);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg; /* 1..nworkers; part 0 is the caller's */
    uint_fast64_t seen = P.start_gen[id];
    for (;;) {
        int64_t t0 = now_ns();
        unsigned spins = 0;
        while (atomic_load_explicit(&P.gen, memory_order_acquire) == seen) {
            relax(&spins);
            if ((spins & 255) == 0 && now_ns() - t0 > SPIN_NS) {
                pthread_mutex_lock(&P.lock);
                atomic_fetch_add(&P.sleepers, 1);
                while (atomic_load(&P.gen) == seen) pthread_cond_wait(&P.wake, &P.lock);
                atomic_fetch_sub(&P.sleepers, 1);
                pthread_mutex_unlock(&P.lock);
            }
        }
        seen = atomic_load(&P.gen);
        if (id < P.parts) run_part(id);
        atomic_fetch_sub_explicit(&P.pending, 1, memory_order_release);
    }
    return NULL;
}

/* Start workers up to threads - 1 (never stopped: they sleep when idle). */
static int ensure_workers(int threads) {
    while (P.nworkers < threads - 1 && P.nworkers < MAX_THREADS - 1) {
        P.start_gen[P.nworkers + 1] = atomic_load(&P.gen);
        if (pthread_create(&P.tid[P.nworkers], NULL, worker, (void *)(intptr_t)(P.nworkers + 1)))
            break;
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
    P.parts = parts;
    atomic_store(&P.pending, P.nworkers);
    atomic_fetch_add_explicit(&P.gen, 1, memory_order_release);
    if (atomic_load(&P.sleepers)) {
        pthread_mutex_lock(&P.lock);
        pthread_cond_broadcast(&P.wake);
        pthread_mutex_unlock(&P.lock);
    }
    run_part(0);
    unsigned spins = 0;
    while (atomic_load_explicit(&P.pending, memory_order_acquire) > 0) relax(&spins);
    pthread_mutex_unlock(&P.use);
}

void nb__blas_single_thread(void) {
#ifdef NB_HAVE_OPENBLAS
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
