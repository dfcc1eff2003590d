/* test_memory.c - a steady-state training step makes no heap allocation, and nabla frees all
 * it allocates, through its allocator hooks.
 *
 * Allocations are counted twice: by nb_set_allocator hooks (everything nabla allocates) and by
 * replacing malloc/calloc/realloc/free/memalign in this program (everything anyone in the
 * process allocates: nabla, zlib, OpenBLAS, libc). The second count is left out in sanitizer
 * builds (ASan and TSan own malloc). Check's own assertions allocate, so none runs
 * inside a counted window: counts are taken first, checked after. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "common.h"

typedef struct counts {
    long allocs, frees;
} counts;

/* ---- nabla's hooks ------------------------------------------------------------------------ */
static counts hooked;

static void *hook_malloc(size_t n) {
    hooked.allocs++;
    return malloc(n);
}
static void *hook_realloc(void *p, size_t n) {
    hooked.allocs++;
    if (p) hooked.frees++;
    return realloc(p, n);
}
static void hook_free(void *p) {
    if (p) hooked.frees++;
    free(p);
}

/* ---- the process's malloc ----------------------------------------------------------------- */
static counts libc;
static bool libc_counting;

#ifndef NB_TEST_SANITIZED
#define NB_TEST_LIBC 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *malloc(size_t n) {
    if (libc_counting) libc.allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
    if (libc_counting) libc.allocs++;
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
    if (libc_counting) libc.allocs++;
    if (libc_counting && p) libc.frees++;
    return __libc_realloc(p, n);
}
void free(void *p) {
    if (libc_counting && p) libc.frees++;
    __libc_free(p);
}
void *memalign(size_t align, size_t n) {
    if (libc_counting) libc.allocs++;
    return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    void *p = memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif

static counts snap_hooked, snap_libc;

static void window_begin(void) {
    snap_hooked = hooked;
    snap_libc = libc;
    libc_counting = true;
}

/* Counts since window_begin: hooked (nabla) and libc (everybody). */
static void window_end(counts *nabla, counts *all) {
    libc_counting = false;
    nabla->allocs = hooked.allocs - snap_hooked.allocs;
    nabla->frees = hooked.frees - snap_hooked.frees;
    all->allocs = libc.allocs - snap_libc.allocs;
    all->frees = libc.frees - snap_libc.frees;
}

/* ---- the training step -------------------------------------------------------------------- */

typedef struct trainer {
    nb_mnist data;
    nb_module *model;
    nb_tensor *params[16];
    int np;
    nb_optim *opt;
    nb_sched *sched;
    nb_loader *ld;
    nb_arena *ar;
    nb_batch_split *split; /* when set, the step runs through it */
    bool set_to_none, clip;
    double last_loss;
    int failed; /* a step that went wrong (checked after the window) */
    int epochs_ended;
} trainer;

/* Everything a training run needs; no ck_assert here (passing checks allocate): problems go
 * to t->failed. */
static void trainer_init(trainer *t, const int64_t *hidden, int nh, bool adam, int64_t batch) {
    memset(t, 0, sizeof *t);
    if (nb_mnist_load(fixture("tiny"), "train", &t->data)) {
        t->failed++;
        return;
    }
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *mods[16];
    int n = 0;
    int64_t prev = 784;
    for (int i = 0; i < nh; i++) {
        mods[n++] = nb_linear_new(prev, hidden[i], true, &rng);
        mods[n++] = nb_relu_new();
        prev = hidden[i];
    }
    mods[n++] = nb_linear_new(prev, 10, true, &rng);
    t->model = nb_sequential(n, mods);
    t->np = nb_module_parameters(t->model, t->params, 16);
    if (adam) {
        nb_adam_opts o = nb_adam_defaults();
        o.lr = 1e-3;
        t->opt = nb_adam(t->params, t->np, &o);
    } else {
        nb_sgd_opts o = nb_sgd_defaults();
        o.lr = 0.1;
        o.momentum = 0.9;
        t->opt = nb_sgd(t->params, t->np, &o);
    }
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = batch;
    lo.flatten = true;
    t->ld = nb_loader_new(t->data.images, t->data.labels, &lo);
    t->ar = nb_arena_new(0);
    if (!t->model || !t->opt || !t->ld || !t->ar) t->failed++;
    t->set_to_none = true;
}

static nb_tensor *ce_sum(nb_arena *ar, nb_tensor *out, nb_tensor *y, void *user) {
    (void)user;
    nb_cross_entropy_opts co = nb_cross_entropy_defaults();
    co.reduction = NB_REDUCTION_SUM;
    return nb_cross_entropy(ar, out, y, &co);
}

/* One step of the PyTorch loop; at the end of an epoch, the scheduler steps and the next
 * epoch's first batch is taken. */
static void step(trainer *t) {
    nb_tensor *x, *y;
    nb_arena_reset(t->ar);
    int got = nb_loader_next(t->ld, t->ar, &x, &y);
    if (got == 0) {
        t->epochs_ended++;
        if (t->sched && nb_sched_step(t->sched)) t->failed++;
        got = nb_loader_next(t->ld, t->ar, &x, &y);
    }
    if (got != 1) {
        t->failed++;
        return;
    }
    nb_optim_zero_grad(t->opt, t->set_to_none);
    if (t->split) {
        double norm, mean;
        if (nb_batch_split_step(t->split, t->ar, x, y, ce_sum, NULL, &mean) ||
            (t->clip && nb_clip_grad_norm(t->params, t->np, 1.0, 2.0, false, &norm)) || nb_optim_step(t->opt))
            t->failed++;
        else
            t->last_loss = mean;
        return;
    }
    nb_tensor *logits = nb_forward(t->model, t->ar, x);
    nb_tensor *loss = nb_cross_entropy(t->ar, logits, y, NULL);
    double norm;
    if (!loss || nb_backward(loss) ||
        (t->clip && nb_clip_grad_norm(t->params, t->np, 1.0, 2.0, false, &norm)) || nb_optim_step(t->opt)) {
        t->failed++;
        return;
    }
    t->last_loss = nb_item(loss);
}

/* Evaluation as nabla train does it: no graph, forward and argmax. */
static void eval_step(trainer *t) {
    nb_tensor *x, *y;
    nb_arena_reset(t->ar);
    bool prev = nb_set_grad_enabled(false);
    nb_module_train(t->model, false);
    if (nb_loader_next(t->ld, t->ar, &x, &y) != 1) nb_loader_next(t->ld, t->ar, &x, &y);
    nb_tensor *logits = nb_forward(t->model, t->ar, x);
    nb_cross_entropy_opts co = nb_cross_entropy_defaults();
    co.reduction = NB_REDUCTION_SUM;
    if (!nb_cross_entropy(t->ar, logits, y, &co) || !nb_argmax(t->ar, logits, 1, false)) t->failed++;
    nb_module_train(t->model, true);
    nb_set_grad_enabled(prev);
}

static void trainer_free(trainer *t) {
    nb_batch_split_free(t->split);
    nb_arena_free(t->ar);
    nb_loader_free(t->ld);
    nb_sched_free(t->sched);
    nb_optim_free(t->opt);
    nb_module_free(t->model);
    nb_mnist_free(&t->data);
}

/* Warm up for 2 epochs, then count the allocations of `steps` more steps (crossing epoch ends
 * and the partial last batch: 100 samples in batches of 16 = 6 full + 1 of 4). */
static void assert_steps_allocate_nothing(trainer *t, const char *what, int steps) {
    ck_assert_msg(t->failed == 0, "%s: setup failed: %s", what, nb_last_error());
    for (int i = 0; i < 14; i++) step(t);
    ck_assert_int_eq(t->failed, 0);
    double loss0 = t->last_loss;
    counts nabla, all;
    int ended = t->epochs_ended;
    window_begin();
    for (int i = 0; i < steps; i++) step(t);
    window_end(&nabla, &all);
    ck_assert_msg(t->failed == 0, "%s: a step failed: %s", what, nb_last_error());
    ck_assert_int_ge(t->epochs_ended - ended, 2);
    ck_assert_msg(nabla.allocs == 0 && nabla.frees == 0,
                  "%s: %d steps made %ld allocations and %ld frees through nabla's hooks", what, steps,
                  nabla.allocs, nabla.frees);
#ifdef NB_TEST_LIBC
    ck_assert_msg(all.allocs == 0 && all.frees == 0,
                  "%s: %d steps made %ld malloc-family calls and %ld frees in the process", what, steps,
                  all.allocs, all.frees);
#else
    (void)all;
#endif
    ck_assert_msg(t->last_loss < loss0, "%s: the loss did not go down (%g -> %g)", what, loss0, t->last_loss);
}

START_TEST(test_sgd_step_allocates_nothing) {
    trainer t;
    trainer_init(&t, (int64_t[]){128}, 1, false, 16);
    assert_steps_allocate_nothing(&t, "784-128-10 SGD momentum", 30);
    trainer_free(&t);
}
END_TEST

START_TEST(test_adam_step_allocates_nothing) {
    trainer t;
    trainer_init(&t, (int64_t[]){256, 128}, 2, true, 16);
    assert_steps_allocate_nothing(&t, "784-256-128-10 Adam", 30);
    trainer_free(&t);
}
END_TEST

START_TEST(test_variants_allocate_nothing) {
    /* zero_grad(set_to_none=false), gradient clipping, StepLR at every epoch end, batch 1,
     * 2 threads */
    trainer t;
    trainer_init(&t, (int64_t[]){32}, 1, false, 16);
    t.set_to_none = false;
    t.clip = true;
    t.sched = nb_step_lr(t.opt, 1, 0.9);
    ck_assert_ptr_nonnull(t.sched);
    assert_steps_allocate_nothing(&t, "set_to_none=false + clip + StepLR", 30);
    trainer_free(&t);

    trainer_init(&t, (int64_t[]){128}, 1, false, 1);
    assert_steps_allocate_nothing(&t, "batch 1", 250);
    trainer_free(&t);

    /* nabla's own thread pool: 2 threads, big enough a batch for GEMMs to be split */
    ck_assert_int_eq(nb_set_num_threads(2), NB_OK);
    trainer_init(&t, (int64_t[]){256, 128}, 2, true, 50);
    assert_steps_allocate_nothing(&t, "2 threads", 30);
    trainer_free(&t);
    /* a split step (nb_batch_split: two parts, one per thread), under bfloat16 autocast */
    trainer_init(&t, (int64_t[]){128}, 1, true, 32);
    t.split = nb_batch_split_new(t.model, 2);
    ck_assert_ptr_nonnull(t.split);
    nb_arena_set_autocast(t.ar, NB_BF16);
    assert_steps_allocate_nothing(&t, "split step, bf16, 2 threads", 30);
    trainer_free(&t);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
}
END_TEST

START_TEST(test_eval_allocates_nothing) {
    trainer t;
    trainer_init(&t, (int64_t[]){128}, 1, false, 16);
    for (int i = 0; i < 10; i++) eval_step(&t);
    counts nabla, all;
    window_begin();
    for (int i = 0; i < 10; i++) eval_step(&t);
    window_end(&nabla, &all);
    ck_assert_int_eq(t.failed, 0);
    ck_assert_msg(nabla.allocs == 0, "evaluation: %ld allocations through nabla's hooks", nabla.allocs);
#ifdef NB_TEST_LIBC
    ck_assert_msg(all.allocs == 0, "evaluation: %ld malloc-family calls", all.allocs);
#endif
    trainer_free(&t);
}
END_TEST

START_TEST(test_everything_through_hooks_and_freed) {
    /* From loading the data to freeing the last object: every block nabla allocates is
     * freed, and every malloc-family call of the process came through nabla's hooks. */
    counts nabla, all;
    window_begin();
    trainer t;
    trainer_init(&t, (int64_t[]){64, 32}, 2, true, 16);
    t.sched = nb_step_lr(t.opt, 2, 0.5);
    for (int i = 0; i < 20; i++) step(&t);
    eval_step(&t);
    bool sched_ok = t.sched != NULL;
    trainer_free(&t);
    window_end(&nabla, &all);
    ck_assert_msg(t.failed == 0 && sched_ok, "%s", nb_last_error());
    ck_assert_int_gt(nabla.allocs, 0);
    ck_assert_msg(nabla.allocs == nabla.frees, "nabla allocated %ld blocks and freed %ld", nabla.allocs,
                  nabla.frees);
#ifdef NB_TEST_LIBC
    ck_assert_msg(all.allocs == nabla.allocs, "%ld malloc-family calls, only %ld of them through nabla's hooks",
                  all.allocs, nabla.allocs);
    ck_assert_int_eq(all.frees, nabla.frees);
#else
    (void)all;
#endif
}
END_TEST

START_TEST(test_recycled_arena_garbage_is_never_read) {
    /* Arena memory is reused step after step, so a new gradient buffer holds whatever an
     * earlier step left there (nb__grad's beta 0: write, never read). Leave NaN and infinity
     * everywhere, then check one step's gradients against a step on a clean arena. */
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *xx = nb_uniform(NULL, 2, (int64_t[]){8, 20}, 0, 1, &rng);
    nb_tensor *y = nb_from_array(NULL, NB_INT32, 1, (int64_t[]){8}, (int32_t[]){0, 1, 2, 3, 4, 0, 1, 2});
    nb_module *m = nb_sequential(3, (nb_module *[]){nb_linear_new(20, 16, true, &rng), nb_relu_new(),
                                                    nb_linear_new(16, 5, true, &rng)});
    ck_assert(xx && y && m);
    nb_tensor *params[4];
    int np = nb_module_parameters(m, params, 4);
    static float clean[4][400];
    for (int pass = 0; pass < 2; pass++) {
        nb_arena *ar = nb_arena_new(1 << 16);
        if (pass == 1) {
            const float poison[2] = {NAN, INFINITY};
            for (int k = 0; k < 2; k++) { /* fill (nearly) all of it, then give it back */
                ck_assert_ptr_nonnull(nb_full(ar, 1, (int64_t[]){(1 << 14) - 256}, poison[k]));
                nb_arena_reset(ar);
            }
        }
        nb_module_zero_grad(m, true);
        nb_tensor *loss = nb_cross_entropy(ar, nb_forward(m, ar, xx), y, NULL);
        ck_assert_int_eq(nb_backward(loss), NB_OK);
        for (int i = 0; i < np; i++) {
            ck_assert_ptr_nonnull(params[i]->grad);
            if (pass == 0) memcpy(clean[i], params[i]->grad->data, sizeof(float) * (size_t)params[i]->numel);
            else
                for (int64_t j = 0; j < params[i]->numel; j++)
                    ck_assert_msg(nb_f32(params[i]->grad)[j] == clean[i][j], "param %d [%lld]: %g on a "
                                  "recycled arena, %g on a clean one", i, (long long)j,
                                  nb_f32(params[i]->grad)[j], clean[i][j]);
        }
        nb_arena_free(ar);
    }
    nb_module_free(m);
    nb_tensor_free(xx);
    nb_tensor_free(y);
}
END_TEST

START_TEST(test_checkpoint_zlib_through_hooks) {
    /* zlib's buffers go through the hooks too: reading a gzip'd checkpoint makes no more
     * allocations outside nabla's hooks than reading the same file gunzip'd (the JSON parser's
     * are the only ones, the same for both) */
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_linear_new(30, 20, true, &rng);
    char path[4096];
    snprintf(path, sizeof path, "%s/hooks.ckpt", temp_dir());
    ck_assert_int_eq(nb_weights_save(path, m, NULL, 0), NB_OK);
    FILE *f = fopen(path, "rb");
    static unsigned char gz[1 << 16], plain[1 << 16];
    size_t ngz = fread(gz, 1, sizeof gz, f);
    fclose(f);
    z_stream z = {0};
    ck_assert_int_eq(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
    z.next_in = gz, z.avail_in = (uInt)ngz, z.next_out = plain, z.avail_out = sizeof plain;
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    size_t nplain = sizeof plain - z.avail_out;
    inflateEnd(&z);
    counts nabla[2], all[2];
    for (int k = 0; k < 2; k++) {
        window_begin();
        nb_ckpt *c = k ? nb_ckpt_parse(plain, nplain) : nb_ckpt_parse(gz, ngz);
        int n = nb_ckpt_num_tensors(c);
        nb_ckpt_close(c);
        window_end(&nabla[k], &all[k]);
        ck_assert_int_eq(n, 2);
        ck_assert_int_eq(nabla[k].allocs, nabla[k].frees);
    }
    ck_assert_int_gt(nabla[0].allocs, nabla[1].allocs); /* zlib's, through the hooks */
#ifdef NB_TEST_LIBC
    ck_assert_msg(all[0].allocs - nabla[0].allocs == all[1].allocs - nabla[1].allocs,
                  "gzip'd: %ld allocations outside the hooks, plain: %ld",
                  all[0].allocs - nabla[0].allocs, all[1].allocs - nabla[1].allocs);
#endif
    nb_module_free(m);
}
END_TEST

/* The process-wide counts (malloc and friends replaced above) that the tests here check
 * besides nabla's hooks: they count. In a sanitizer build the sanitizer owns malloc, so those
 * parts of the tests are left out: said here, once. */
START_TEST(test_process_mallocs_counted) {
#ifdef NB_TEST_LIBC
    counts nabla, all;
    window_begin();
    void *volatile p = malloc(24);
    p = realloc(p, 48);
    free(p);
    window_end(&nabla, &all);
    ck_assert_int_eq(all.allocs, 2);
    ck_assert_int_eq(all.frees, 2);
    ck_assert_int_eq(nabla.allocs, 0);
#else
    NB_SKIP("a sanitizer owns malloc: the tests of this suite counted nabla's hooks, not the "
            "process's malloc-family calls");
#endif
}
END_TEST

START_TEST(test_set_allocator_rules) {
    /* main() installed the hooks before anything was allocated; once nabla has allocated,
     * they cannot change any more */
    long before = hooked.allocs;
    nb_tensor *z = nb_zeros(NULL, 1, (int64_t[]){4});
    ck_assert_int_gt(hooked.allocs, before);
    nb_clear_error();
    ck_assert_int_eq(nb_set_allocator(NULL, NULL, NULL), NB_ESTATE);
    ck_assert_msg(strstr(nb_last_error(), "already allocated"), "%s", nb_last_error());
    before = hooked.frees;
    nb_tensor_free(z);
    ck_assert_int_gt(hooked.frees, before); /* the hooks are still the ones in use */
}
END_TEST

#ifdef NB_HAVE_OPENBLAS
int openblas_get_num_threads(void);
#endif

START_TEST(test_threads_reach_openblas) {
    /* nb_set_num_threads (nabla train --threads N) sizes nabla's pool and keeps OpenBLAS at one
     * thread: nabla splits GEMMs itself, so the two pools never compete */
    ck_assert_int_eq(nb_set_num_threads(2), NB_OK);
    ck_assert_int_eq(nb_get_num_threads(), 2);
#ifdef NB_HAVE_OPENBLAS
    ck_assert_int_eq(openblas_get_num_threads(), 1);
#endif
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    ck_assert_int_eq(nb_get_num_threads(), 1);
#ifdef NB_HAVE_OPENBLAS
    ck_assert_int_eq(openblas_get_num_threads(), 1);
#endif
    nb_clear_error();
    ck_assert_int_eq(nb_set_num_threads(0), NB_EINVAL);
    ck_assert_int_eq(nb_get_num_threads(), 1);
    const char *backend = nb_blas_backend(), *tail = strchr(backend, '+');
    ck_assert_str_eq(tail ? tail + 1 : backend,
#ifdef NB_HAVE_OPENBLAS
                     "openblas"
#else
                     "builtin"
#endif
    );
}
END_TEST

int main(void) {
    /* before any other nabla call: partial sets are refused, then the counting hooks go in */
    if (nb_set_allocator(hook_malloc, NULL, hook_free) != NB_EINVAL) return 1;
    if (nb_set_allocator(hook_malloc, hook_realloc, hook_free) != NB_OK) return 1;
    /* one thread, as nabla train runs by default: OpenBLAS's threaded driver mallocs a job
     * table on every GEMM call, so steps with --threads > 1 are not allocation-free */
    if (nb_set_num_threads(1) != NB_OK) return 1;
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("memory");
    tcase_add_test(tc, test_sgd_step_allocates_nothing);
    tcase_add_test(tc, test_adam_step_allocates_nothing);
    tcase_add_test(tc, test_variants_allocate_nothing);
    tcase_add_test(tc, test_eval_allocates_nothing);
    tcase_add_test(tc, test_everything_through_hooks_and_freed);
    tcase_add_test(tc, test_recycled_arena_garbage_is_never_read);
    tcase_add_test(tc, test_checkpoint_zlib_through_hooks);
    tcase_add_test(tc, test_process_mallocs_counted);
    tcase_add_test(tc, test_set_allocator_rules);
    tcase_add_test(tc, test_threads_reach_openblas);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
