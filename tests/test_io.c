/* test_io.c - checkpoints: exact resume, all-or-nothing loading of corrupt files, crash safety
 * (SIGKILL during saves), the CLI (--save/--resume/--stop-after, eval, ckpt inspect), and the
 * PyTorch interop golden.
 *
 * Optimizers and schedules come from the tables below: adding a row is all it takes to cover a
 * new one (everything goes through the generic state dicts). */
#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "common.h"

/* ---- the tables -------------------------------------------------------------------------- */
typedef struct optim_case {
    const char *name;
    nb_optim *(*make)(nb_tensor *const *params, int n);
} optim_case;

static nb_optim *make_sgd_momentum(nb_tensor *const *p, int n) {
    nb_sgd_opts o = nb_sgd_defaults();
    o.lr = 0.05;
    o.momentum = 0.9;
    o.weight_decay = 1e-4;
    return nb_sgd(p, n, &o);
}

static nb_optim *make_adam(nb_tensor *const *p, int n) {
    nb_adam_opts o = nb_adam_defaults();
    o.lr = 3e-3;
    return nb_adam(p, n, &o);
}

static const optim_case optims[] = {
    {"SGD+momentum", make_sgd_momentum},
    {"Adam", make_adam},
};

typedef struct sched_case {
    const char *name;
    /* steps: batches per epoch; epochs: the whole run (OneCycleLR-style schedules need both) */
    nb_sched *(*make)(nb_optim *o, int64_t steps, int64_t epochs);
    bool per_batch; /* stepped after every batch rather than every epoch */
} sched_case;

static nb_sched *make_step_lr(nb_optim *o, int64_t steps, int64_t epochs) {
    (void)steps;
    (void)epochs;
    return nb_step_lr(o, 1, 0.5);
}

static const sched_case scheds[] = {
    {"none", NULL, false},
    {"StepLR", make_step_lr, false},
};

#define NOPT ((int)(sizeof optims / sizeof optims[0]))
#define NSCHED ((int)(sizeof scheds / sizeof scheds[0]))

/* ---- a small training run ---------------------------------------------------------------- */
enum { N = 200, ROWS = 6, COLS = 7, CLASSES = 10, BATCH = 16, EPOCHS = 3 };

typedef struct run {
    nb_tensor *images, *labels;
    nb_module *model;
    nb_optim *opt;
    nb_sched *sched;
    const sched_case *sc;
    nb_loader *ld;
    nb_rng rng;
    nb_arena *ar;
    nb_tensor *params[16];
    int np;
    int64_t epoch, step;
} run;

static void make_data(nb_tensor **images, nb_tensor **labels, int n, uint64_t seed) {
    nb_rng r;
    nb_rng_seed(&r, seed);
    *images = nb_empty(NULL, NB_UINT8, 3, (int64_t[]){n, ROWS, COLS});
    *labels = nb_empty(NULL, NB_UINT8, 1, (int64_t[]){n});
    for (int64_t i = 0; i < (*images)->numel; i++) nb_u8(*images)[i] = (uint8_t)nb_rng_below(&r, 256);
    for (int i = 0; i < n; i++) nb_u8(*labels)[i] = (uint8_t)nb_rng_below(&r, CLASSES);
}

/* model seed and loader seed differ between the original and the resumed run, so only a
 * complete load can make them agree */
static void run_init(run *r, int oi, int si, uint64_t seed) {
    memset(r, 0, sizeof *r);
    make_data(&r->images, &r->labels, N, 99);
    nb_rng_seed(&r->rng, seed);
    r->model = nb_sequential(4, (nb_module *[]){nb_linear_new(ROWS * COLS, 24, true, &r->rng), nb_relu_new(),
                                                 nb_dropout_new(0.25f, &r->rng),
                                                 nb_linear_new(24, CLASSES, true, &r->rng)});
    ck_assert_ptr_nonnull(r->model);
    r->np = nb_module_parameters(r->model, r->params, 16);
    r->opt = optims[oi].make(r->params, r->np);
    ck_assert_ptr_nonnull(r->opt);
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = BATCH;
    lo.seed = seed + 1;
    lo.flatten = true;
    r->ld = nb_loader_new(r->images, r->labels, &lo);
    r->sc = &scheds[si];
    if (r->sc->make) {
        r->sched = r->sc->make(r->opt, nb_loader_num_batches(r->ld), EPOCHS);
        ck_assert_msg(r->sched != NULL, "%s: %s", r->sc->name, nb_last_error());
    }
    r->ar = nb_arena_new(0);
}

static void run_free(run *r) {
    nb_arena_free(r->ar);
    nb_loader_free(r->ld);
    nb_sched_free(r->sched);
    nb_optim_free(r->opt);
    nb_module_free(r->model);
    nb_tensor_free(r->images);
    nb_tensor_free(r->labels);
}

/* Train until `epochs` epochs are complete, or stop after `max_batches` batches (-1: no limit). */
static void run_train(run *r, int64_t epochs, int64_t max_batches) {
    while (r->epoch < epochs) {
        nb_tensor *x, *y;
        nb_arena_reset(r->ar);
        if (max_batches-- == 0) return;
        int got = nb_loader_next(r->ld, r->ar, &x, &y);
        ck_assert_int_ge(got, 0);
        if (got == 0) { /* end of epoch */
            r->epoch++;
            if (r->sched && !r->sc->per_batch) ck_assert_int_eq(nb_sched_step(r->sched), NB_OK);
            continue;
        }
        nb_tensor *loss = nb_cross_entropy(r->ar, nb_forward(r->model, r->ar, x), y, NULL);
        ck_assert_ptr_nonnull(loss);
        nb_optim_zero_grad(r->opt, true);
        ck_assert_int_eq(nb_backward(loss), NB_OK);
        ck_assert_int_eq(nb_optim_step(r->opt), NB_OK);
        if (r->sched && r->sc->per_batch) ck_assert_int_eq(nb_sched_step(r->sched), NB_OK);
        r->step++;
    }
}

static nb_train_state run_state(run *r) {
    return (nb_train_state){.model = r->model, .optim = r->opt, .sched = r->sched, .rng = &r->rng,
                            .loader = r->ld, .epoch = r->epoch, .step = r->step};
}

/* ---- snapshots: everything a load may change --------------------------------------------- */
typedef struct snap {
    unsigned char *model;
    size_t model_bytes;
    nb_optim_dict *osd;
    nb_sched_dict *ssd;
    nb_rng rng;
    nb_loader_state ls;
} snap;

static snap take(run *r) {
    snap s = {0};
    const nb_named_tensor *st;
    int n = nb_module_state(r->model, &st);
    for (int i = 0; i < n; i++) s.model_bytes += (size_t)st[i].tensor->numel * nb_dtype_size(st[i].tensor->dtype);
    s.model = malloc(s.model_bytes);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t b = (size_t)st[i].tensor->numel * nb_dtype_size(st[i].tensor->dtype);
        memcpy(s.model + at, st[i].tensor->data, b);
        at += b;
    }
    s.osd = nb_optim_state_dict(r->opt);
    s.ssd = r->sched ? nb_sched_state_dict(r->sched) : NULL;
    s.rng = r->rng;
    s.ls = nb_loader_get_state(r->ld);
    return s;
}

static void snap_free(snap *s) {
    free(s->model);
    nb_optim_dict_free(s->osd);
    nb_sched_dict_free(s->ssd);
}

/* Values equal bit for bit (kinds may differ between INT and NUMBER only if equal_kinds false). */
static bool value_eq(const nb_value *a, const nb_value *b, char *why, size_t n) {
    if (strcmp(a->name, b->name)) return snprintf(why, n, "names %s/%s", a->name, b->name), false;
    if (a->kind != b->kind) return snprintf(why, n, "%s: kinds %d/%d", a->name, a->kind, b->kind), false;
    switch (a->kind) {
    case NB_VALUE_NUMBER:
    case NB_VALUE_INT:
    case NB_VALUE_BOOL:
        if (memcmp(&a->num, &b->num, sizeof a->num))
            return snprintf(why, n, "%s: %.17g vs %.17g", a->name, a->num, b->num), false;
        return true;
    case NB_VALUE_LIST:
        if (a->len != b->len || memcmp(nb_value_elems(a), nb_value_elems(b), sizeof(double) * (size_t)a->len))
            return snprintf(why, n, "%s: lists differ", a->name), false;
        return true;
    case NB_VALUE_STRING:
        if (strcmp(a->str, b->str)) return snprintf(why, n, "%s: strings differ", a->name), false;
        return true;
    case NB_VALUE_TENSOR:
        if (!a->tensor || !b->tensor) return a->tensor == b->tensor;
        if (!nb_same_shape(a->tensor, b->tensor) || a->tensor->dtype != b->tensor->dtype ||
            memcmp(a->tensor->data, b->tensor->data, nb_dtype_size(a->tensor->dtype) * (size_t)a->tensor->numel))
            return snprintf(why, n, "tensor %s differs", a->name), false;
        return true;
    default:
        return true;
    }
}

static bool values_eq(const nb_value *a, int na, const nb_value *b, int nb, char *why, size_t n) {
    if (na != nb) return snprintf(why, n, "%d vs %d values", na, nb), false;
    for (int i = 0; i < na; i++)
        if (!value_eq(&a[i], &b[i], why, n)) return false;
    return true;
}

/* Compare two snapshots; returns NULL if identical, else a description. */
static const char *snap_diff(const snap *a, const snap *b) {
    static char why[256];
    if (a->model_bytes != b->model_bytes || memcmp(a->model, b->model, a->model_bytes)) return "model tensors differ";
    const nb_optim_dict *x = a->osd, *y = b->osd;
    if (x->ngroups != y->ngroups || x->nstates != y->nstates) return "optimizer state sizes differ";
    for (int g = 0; g < x->ngroups; g++)
        if (!values_eq(x->groups[g].values, x->groups[g].nvalues, y->groups[g].values, y->groups[g].nvalues, why, sizeof why))
            return why;
    for (int s = 0; s < x->nstates; s++)
        if (x->states[s].index != y->states[s].index ||
            !values_eq(x->states[s].values, x->states[s].nvalues, y->states[s].values, y->states[s].nvalues, why, sizeof why))
            return why;
    if (!a->ssd != !b->ssd) return "scheduler presence differs";
    if (a->ssd && !values_eq(a->ssd->values, a->ssd->nvalues, b->ssd->values, b->ssd->nvalues, why, sizeof why)) return why;
    if (a->rng.state != b->rng.state || a->rng.inc != b->rng.inc) return "rng differs";
    if (a->ls.epoch != b->ls.epoch || a->ls.batch != b->ls.batch || a->ls.rng.state != b->ls.rng.state)
        return "loader state differs";
    return NULL;
}

static char *path_in(const char *dir, const char *name) {
    static char bufs[4][4096];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* ---- exact resume ------------------------------------------------------------------------- */
/* Uninterrupted: EPOCHS epochs. Interrupted: stop at (stop_epoch, stop_batch), save, build
 * everything anew with other seeds, load, finish. Everything must agree bit for bit. */
static void check_resume(int oi, int si, int64_t stop_epoch, int64_t stop_batch) {
    const char *dir = temp_dir();
    char *file = path_in(dir, "run.ckpt");
    run a, b, c;
    run_init(&a, oi, si, 7);
    run_train(&a, EPOCHS, -1);

    run_init(&b, oi, si, 7);
    run_train(&b, stop_epoch, -1);
    if (stop_batch) run_train(&b, EPOCHS, stop_batch);
    nb_train_state st = run_state(&b);
    ck_assert_msg(nb_checkpoint_save(file, &st) == NB_OK, "save: %s", nb_last_error());
    run_free(&b);

    run_init(&c, oi, si, 12345);
    nb_train_state ct = run_state(&c);
    ct.epoch = ct.step = -1;
    ck_assert_msg(nb_checkpoint_load(file, &ct) == NB_OK, "%s/%s load: %s", optims[oi].name,
                  scheds[si].name, nb_last_error());
    c.epoch = ct.epoch;
    c.step = ct.step;
    ck_assert_int_eq(c.epoch, stop_epoch);
    run_train(&c, EPOCHS, -1);
    ck_assert_int_eq(c.step, a.step);

    snap sa = take(&a), sc = take(&c);
    const char *d = snap_diff(&sa, &sc);
    ck_assert_msg(d == NULL, "%s + %s, resumed at epoch %lld batch %lld: %s", optims[oi].name,
                  scheds[si].name, (long long)stop_epoch, (long long)stop_batch, d);
    snap_free(&sa);
    snap_free(&sc);
    run_free(&a);
    run_free(&c);
    unlink(file);
    rmdir(dir);
}

START_TEST(test_resume_epoch_boundary) {
    int oi = _i / NSCHED, si = _i % NSCHED;
    check_resume(oi, si, 1, 0);
}
END_TEST

START_TEST(test_resume_mid_epoch) {
    int oi = _i / NSCHED, si = _i % NSCHED;
    check_resume(oi, si, 1, 5);
}
END_TEST

/* Save, load into fresh objects, save again: the two files are identical bytes (the format is
 * deterministic, and load restores everything save wrote). */
START_TEST(test_roundtrip_bytes) {
    int oi = _i / NSCHED, si = _i % NSCHED;
    const char *dir = temp_dir();
    run a, b;
    run_init(&a, oi, si, 3);
    run_train(&a, 1, -1);
    run_train(&a, 2, 3);
    nb_meta meta[] = {{"note", "hello"}, {"cli.model", "[\"--hidden\", \"24\"]"}};
    nb_train_state st = run_state(&a);
    st.meta = meta;
    st.nmeta = 2;
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "a.ckpt"), &st), NB_OK);
    run_init(&b, oi, si, 4);
    nb_train_state bt = run_state(&b);
    ck_assert_msg(nb_checkpoint_load(path_in(dir, "a.ckpt"), &bt) == NB_OK, "%s", nb_last_error());
    b.epoch = bt.epoch;
    b.step = bt.step;
    bt = run_state(&b);
    bt.meta = meta;
    bt.nmeta = 2;
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "b.ckpt"), &bt), NB_OK);
    FILE *fa = fopen(path_in(dir, "a.ckpt"), "rb"), *fb = fopen(path_in(dir, "b.ckpt"), "rb");
    int ca, cb;
    long at = 0;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        at++;
    } while (ca == cb && ca != EOF);
    ck_assert_msg(ca == cb, "%s + %s: files differ at byte %ld", optims[oi].name, scheds[si].name, at);
    fclose(fa);
    fclose(fb);
    /* user metadata and the reader API */
    nb_ckpt *c = nb_ckpt_open(path_in(dir, "a.ckpt"));
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(nb_ckpt_meta(c, "user.note"), "hello");
    ck_assert_str_eq(nb_ckpt_meta(c, "format"), "nabla-checkpoint");
    ck_assert_str_eq(nb_ckpt_meta(c, "content"), "checkpoint");
    nb_ckpt_tensor t;
    ck_assert_int_eq(nb_ckpt_find(c, "0.weight", &t), NB_OK);
    ck_assert_str_eq(t.dtype, "F32");
    ck_assert_int_eq(t.ndim, 2);
    ck_assert_int_eq(t.shape[0], 24);
    ck_assert_int_eq(t.shape[1], ROWS * COLS);
    ck_assert_int_eq(memcmp(t.data, nb_module_find(a.model, "0.weight")->data, t.nbytes), 0);
    nb_ckpt_close(c);
    run_free(&a);
    run_free(&b);
    unlink(path_in(dir, "a.ckpt"));
    unlink(path_in(dir, "b.ckpt"));
    rmdir(dir);
}
END_TEST

/* Weights-only files: save, load into another model, and load weights from a full checkpoint;
 * a full load from a weights file names what is missing. */
START_TEST(test_weights) {
    const char *dir = temp_dir();
    run a, b;
    run_init(&a, 0, 1, 3);
    run_train(&a, 1, -1);
    run_init(&b, 0, 1, 4);
    ck_assert_int_eq(nb_weights_save(path_in(dir, "w.nbw"), a.model, NULL, 0), NB_OK);
    ck_assert_int_eq(nb_weights_load(path_in(dir, "w.nbw"), b.model), NB_OK);
    ck_assert_int_eq(memcmp(a.model->slab, b.model->slab, sizeof(float) * (size_t)a.model->slab_numel), 0);
    nb_train_state st = run_state(&b);
    snap before = take(&b);
    ck_assert_int_ne(nb_checkpoint_load(path_in(dir, "w.nbw"), &st), NB_OK);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the file has no optimizer state (metadata \"optimizer\" is missing)");
    snap after = take(&b);
    ck_assert_ptr_null(snap_diff(&before, &after));
    snap_free(&before);
    snap_free(&after);
    /* weights from a full checkpoint */
    run_train(&a, 2, -1);
    st = run_state(&a);
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "full.ckpt"), &st), NB_OK);
    ck_assert_int_eq(nb_weights_load(path_in(dir, "full.ckpt"), b.model), NB_OK);
    ck_assert_int_eq(memcmp(a.model->slab, b.model->slab, sizeof(float) * (size_t)a.model->slab_numel), 0);
    /* errors */
    ck_assert_int_eq(nb_weights_load(path_in(dir, "nope"), b.model), NB_EIO);
    ck_assert_msg(strstr(nb_last_error(), "cannot open") != NULL, "%s", nb_last_error());
    run_free(&a);
    run_free(&b);
    unlink(path_in(dir, "w.nbw"));
    unlink(path_in(dir, "full.ckpt"));
    rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_resume_epoch_boundary, 0, NOPT * NSCHED);
    tcase_add_loop_test(tc, test_resume_mid_epoch, 0, NOPT * NSCHED);
    tcase_add_loop_test(tc, test_roundtrip_bytes, 0, NOPT * NSCHED);
    tcase_add_test(tc, test_weights);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
