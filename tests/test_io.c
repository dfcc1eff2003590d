/* test_io.c - checkpoints: exact resume, all-or-nothing loading of corrupt files, crash safety
 * (SIGKILL during saves), the CLI (--save/--resume/--stop-after, eval, ckpt inspect), the
 * PyTorch interop golden, and weight averaging (SWA with SWALR, EMA) in all of these.
 *
 * Optimizers, schedules and averaging come from the tables below: adding a row is all it takes
 * to cover a new one (everything goes through the generic state dicts). */
#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include "common.h"
#include "../src/io/io_internal.h"

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
    bool metric;    /* stepped with a metric (ReduceLROnPlateau) */
} sched_case;

static nb_sched *make_step_lr(nb_optim *o, int64_t steps, int64_t epochs) {
    (void)steps;
    (void)epochs;
    return nb_step_lr(o, 1, 0.5);
}

static nb_sched *make_onecycle(nb_optim *o, int64_t steps, int64_t epochs) {
    nb_onecycle_opts so = nb_onecycle_defaults();
    so.max_lr = 0.02;
    so.epochs = epochs;
    so.steps_per_epoch = steps;
    return nb_onecycle_lr(o, &so);
}

static nb_sched *make_cyclic(nb_optim *o, int64_t steps, int64_t epochs) {
    (void)epochs;
    nb_cyclic_opts so = nb_cyclic_defaults();
    so.base_lr = 1e-3;
    so.max_lr = 0.02;
    so.step_size_up = (double)steps / 2;
    so.mode = "triangular2";
    return nb_cyclic_lr(o, &so);
}

static nb_sched *make_warm_restarts(nb_optim *o, int64_t steps, int64_t epochs) {
    (void)steps;
    (void)epochs;
    return nb_cosine_annealing_warm_restarts(o, 1, 2, 1e-4);
}

static nb_sched *make_plateau(nb_optim *o, int64_t steps, int64_t epochs) {
    (void)steps;
    (void)epochs;
    nb_plateau_opts so = nb_plateau_defaults();
    so.patience = 0;
    so.factor = 0.5;
    return nb_reduce_lr_on_plateau(o, &so);
}

static const sched_case scheds[] = {
    {"none", NULL, false, false},
    {"StepLR", make_step_lr, false, false},
    {"OneCycleLR", make_onecycle, true, false},
    {"CyclicLR", make_cyclic, true, false},
    {"CosineAnnealingWarmRestarts", make_warm_restarts, false, false},
    {"ReduceLROnPlateau", make_plateau, false, true},
};

#define NOPT ((int)(sizeof optims / sizeof optims[0]))
#define NSCHED ((int)(sizeof scheds / sizeof scheds[0]))

/* Weight averaging as torch.optim.swa_utils recipes run it (and nabla train --swa-start/--ema):
 * SWA folds the weights in at the end of every epoch from swa_start on, where SWALR takes over
 * from the schedule; EMA updates after every optimizer step. */
typedef struct avg_case {
    const char *name;
    nb_avg_kind kind;
    double decay;
    int64_t swa_start; /* SWA: first epoch whose end is averaged */
    bool swalr;
} avg_case;

enum { AVG_NONE, AVG_SWA, AVG_EMA, NAVG };
static const avg_case avgs[NAVG] = {
    {"no averaging", NB_AVG_SWA, 0, 0, false},
    {"SWA+SWALR", NB_AVG_SWA, 0, 2, true},
    {"EMA", NB_AVG_EMA, 0.9, 0, false},
};

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
    const avg_case *ac;
    nb_averaged *avg; /* NULL without averaging */
    nb_sched *swalr;  /* NULL without SWALR */
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
static void run_init_avg(run *r, int oi, int si, int ai, uint64_t seed) {
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
    r->ac = &avgs[ai];
    if (ai != AVG_NONE) {
        nb_averaged_opts ao = nb_averaged_defaults();
        ao.kind = r->ac->kind;
        if (ao.kind == NB_AVG_EMA) ao.decay = r->ac->decay;
        r->avg = nb_averaged_new(r->params, r->np, &ao);
        ck_assert_ptr_nonnull(r->avg);
    }
    if (r->ac->swalr) {
        nb_swalr_opts wo = nb_swalr_defaults();
        wo.swa_lr = 0.004;
        wo.anneal_epochs = 2;
        r->swalr = nb_swalr(r->opt, &wo);
        ck_assert_msg(r->swalr != NULL, "SWALR: %s", nb_last_error());
    }
    r->ar = nb_arena_new(0);
}

static void run_init(run *r, int oi, int si, uint64_t seed) { run_init_avg(r, oi, si, AVG_NONE, seed); }

static void run_free(run *r) {
    nb_averaged_free(r->avg);
    nb_sched_free(r->swalr);
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
        bool swa_phase = r->ac->swa_start && r->epoch >= r->ac->swa_start; /* epochs done */
        if (got == 0) { /* end of epoch */
            r->epoch++;
            if (r->avg && r->ac->swa_start && r->epoch >= r->ac->swa_start)
                ck_assert_int_eq(nb_averaged_update(r->avg, r->params, r->np), NB_OK);
            if (r->swalr && r->ac->swa_start && r->epoch >= r->ac->swa_start) ck_assert_int_eq(nb_sched_step(r->swalr), NB_OK);
            else if (r->sched && r->sc->metric) ck_assert_int_eq(nb_sched_step_metric(r->sched, 1.0), NB_OK);
            else if (r->sched && !r->sc->per_batch) ck_assert_int_eq(nb_sched_step(r->sched), NB_OK);
            continue;
        }
        nb_tensor *loss = nb_cross_entropy(r->ar, nb_forward(r->model, r->ar, x), y, NULL);
        ck_assert_ptr_nonnull(loss);
        nb_optim_zero_grad(r->opt, true);
        ck_assert_int_eq(nb_backward(loss), NB_OK);
        ck_assert_int_eq(nb_optim_step(r->opt), NB_OK);
        if (r->avg && r->ac->kind == NB_AVG_EMA) ck_assert_int_eq(nb_averaged_update(r->avg, r->params, r->np), NB_OK);
        if (r->sched && r->sc->per_batch && !(r->swalr && swa_phase)) ck_assert_int_eq(nb_sched_step(r->sched), NB_OK);
        r->step++;
    }
}

static nb_train_state run_state(run *r) {
    return (nb_train_state){.model = r->model, .optim = r->opt, .sched = r->sched, .rng = &r->rng,
                            .loader = r->ld, .epoch = r->epoch, .step = r->step, .averaged = r->avg,
                            .swa_sched = r->swalr};
}

/* ---- snapshots: everything a load may change --------------------------------------------- */
typedef struct snap {
    unsigned char *model;
    size_t model_bytes;
    nb_optim_dict *osd;
    nb_sched_dict *ssd, *wsd;
    nb_averaged_dict *asd;
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
    s.wsd = r->swalr ? nb_sched_state_dict(r->swalr) : NULL;
    s.asd = r->avg ? nb_averaged_state_dict(r->avg) : NULL;
    s.rng = r->rng;
    s.ls = nb_loader_get_state(r->ld);
    return s;
}

static void snap_free(snap *s) {
    free(s->model);
    nb_optim_dict_free(s->osd);
    nb_sched_dict_free(s->ssd);
    nb_sched_dict_free(s->wsd);
    nb_averaged_dict_free(s->asd);
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
    if (!a->wsd != !b->wsd) return "swa_scheduler presence differs";
    if (a->wsd && !values_eq(a->wsd->values, a->wsd->nvalues, b->wsd->values, b->wsd->nvalues, why, sizeof why)) return why;
    if (!a->asd != !b->asd) return "averaged copy presence differs";
    if (a->asd) {
        if (a->asd->n_averaged != b->asd->n_averaged || a->asd->n != b->asd->n) return "n_averaged differs";
        for (int i = 0; i < a->asd->n; i++)
            if (memcmp(a->asd->tensors[i]->data, b->asd->tensors[i]->data, sizeof(float) * (size_t)a->asd->tensors[i]->numel))
                return "averaged tensors differ";
    }
    if (memcmp(&a->rng, &b->rng, sizeof a->rng)) return "rng differs";
    if (a->ls.epoch != b->ls.epoch || a->ls.batch != b->ls.batch || memcmp(&a->ls.rng, &b->ls.rng, sizeof a->ls.rng))
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

/* Remove a temp_dir() folder and the files in it. */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') unlink(path_in(dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

/* ---- exact resume ------------------------------------------------------------------------- */
/* Uninterrupted: EPOCHS epochs. Interrupted: stop at (stop_epoch, stop_batch), save, build
 * everything anew with other seeds, load, finish. Everything must agree bit for bit. */
static void check_resume_avg(int oi, int si, int ai, int64_t stop_epoch, int64_t stop_batch) {
    const char *dir = temp_dir();
    char *file = path_in(dir, "run.ckpt");
    run a, b, c;
    run_init_avg(&a, oi, si, ai, 7);
    run_train(&a, EPOCHS, -1);

    run_init_avg(&b, oi, si, ai, 7);
    run_train(&b, stop_epoch, -1);
    if (stop_batch) run_train(&b, EPOCHS, stop_batch);
    nb_train_state st = run_state(&b);
    ck_assert_msg(nb_checkpoint_save(file, &st) == NB_OK, "save: %s", nb_last_error());
    run_free(&b);

    run_init_avg(&c, oi, si, ai, 12345);
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
    ck_assert_msg(d == NULL, "%s + %s + %s, resumed at epoch %lld batch %lld: %s", optims[oi].name,
                  scheds[si].name, avgs[ai].name, (long long)stop_epoch, (long long)stop_batch, d);
    if (ai != AVG_NONE) ck_assert_int_gt(nb_averaged_count(c.avg), 1);
    snap_free(&sa);
    snap_free(&sc);
    run_free(&a);
    run_free(&c);
    unlink(file);
    rmdir(dir);
}

static void check_resume(int oi, int si, int64_t stop_epoch, int64_t stop_batch) {
    check_resume_avg(oi, si, AVG_NONE, stop_epoch, stop_batch);
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

/* SWA (with SWALR taking over from the schedule) and EMA: stopped before the SWA phase, at its
 * first epoch end, and inside it; SGD+momentum with StepLR, Adam with OneCycleLR. */
START_TEST(test_resume_averaged) {
    static const int64_t stops[][2] = {{1, 0}, {2, 0}, {2, 5}};
    int oi = _i / 6 % NOPT, ai = 1 + _i / 3 % 2, k = _i % 3;
    check_resume_avg(oi, oi == 0 ? 1 : 2, ai, stops[k][0], stops[k][1]);
}
END_TEST

/* Save, load into fresh objects, save again: the two files are identical bytes (the format is
 * deterministic, and load restores everything save wrote). */
START_TEST(test_roundtrip_bytes) {
    int oi = _i / NSCHED % NOPT, si = _i % NSCHED, ai = _i / (NOPT * NSCHED);
    const char *dir = temp_dir();
    run a, b;
    run_init_avg(&a, oi, si, ai, 3);
    run_train(&a, 1, -1);
    run_train(&a, 2, 3);
    nb_meta meta[] = {{"note", "hello"}, {"cli.model", "[\"--hidden\", \"24\"]"}};
    nb_train_state st = run_state(&a);
    st.meta = meta;
    st.nmeta = 2;
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "a.ckpt"), &st), NB_OK);
    run_init_avg(&b, oi, si, ai, 4);
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
    /* the averaged copy: "swa.<name>" tensors and the "averaged" metadata */
    ck_assert_int_eq(nb_ckpt_find(c, "swa.0.weight", &t), ai == AVG_NONE ? NB_EINVAL : NB_OK);
    if (ai != AVG_NONE) {
        ck_assert_int_eq(memcmp(t.data, nb_averaged_tensor(a.avg, 0)->data, t.nbytes), 0);
        const char *am = nb_ckpt_meta(c, "averaged");
        ck_assert_ptr_nonnull(am);
        ck_assert_msg(strstr(am, ai == AVG_SWA ? "\"kind\":\"SWA\"" : "\"kind\":\"EMA\",\"decay\":0.9"), "%s", am);
        ck_assert_msg(strstr(am, "\"names\":[\"0.weight\",\"0.bias\",\"3.weight\",\"3.bias\"]"), "%s", am);
    } else {
        ck_assert_ptr_null(nb_ckpt_meta(c, "averaged"));
    }
    ck_assert_int_eq(nb_ckpt_meta(c, "swa_scheduler") != NULL, ai == AVG_SWA);
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
    nb_train_state stored = {.model = a.model, .level = -1}, bad = {.model = a.model, .level = 10};
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "stored.ckpt"), &stored), NB_OK);
    ck_assert_int_eq(nb_weights_load(path_in(dir, "stored.ckpt"), b.model), NB_OK);
    ck_assert_int_eq(memcmp(a.model->internal.slab, b.model->internal.slab, sizeof(float) * (size_t)a.model->internal.slab_numel), 0);
    unlink(path_in(dir, "stored.ckpt"));
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "bad.ckpt"), &bad), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: gzip level 10 is outside -1..9");
    ck_assert_int_eq(nb_weights_save(path_in(dir, "w.nbw"), a.model, NULL, 0), NB_OK);
    ck_assert_int_eq(nb_weights_load(path_in(dir, "w.nbw"), b.model), NB_OK);
    ck_assert_int_eq(memcmp(a.model->internal.slab, b.model->internal.slab, sizeof(float) * (size_t)a.model->internal.slab_numel), 0);
    nb_train_state st = run_state(&b);
    snap before = take(&b);
    ck_assert_int_ne(nb_checkpoint_load(path_in(dir, "w.nbw"), &st), NB_OK);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the file holds weights only (content \"weights\"), not an optimizer's state");
    snap after = take(&b);
    ck_assert_ptr_null(snap_diff(&before, &after));
    snap_free(&before);
    snap_free(&after);
    /* weights from a full checkpoint */
    run_train(&a, 2, -1);
    st = run_state(&a);
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "full.ckpt"), &st), NB_OK);
    ck_assert_int_eq(nb_weights_load(path_in(dir, "full.ckpt"), b.model), NB_OK);
    ck_assert_int_eq(memcmp(a.model->internal.slab, b.model->internal.slab, sizeof(float) * (size_t)a.model->internal.slab_numel), 0);
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

/* ---- corrupt files: every one rejected with a clear message, nothing changed ------------ */
static unsigned char *read_bytes(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void write_bytes(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

static void write_gz(const char *path, const void *b, size_t len) {
    gzFile f = gzopen(path, "wb1");
    ck_assert_ptr_nonnull(f);
    if (len) ck_assert_int_eq(gzwrite(f, b, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

static unsigned char *gunzip_file(const char *path, size_t *len) {
    gzFile f = gzopen(path, "rb");
    size_t cap = 1 << 20;
    unsigned char *b = malloc(cap);
    *len = 0;
    int r;
    while ((r = gzread(f, b + *len, (unsigned)(cap - *len))) > 0) {
        *len += (size_t)r;
        if (*len == cap) b = realloc(b, cap *= 2);
    }
    ck_assert_int_eq(r, 0);
    gzclose(f);
    return b;
}

/* The container of a valid checkpoint, to edit: header JSON + the original data. */
typedef struct container {
    unsigned char *raw;
    size_t len, data_at;
    cJSON *root;
} container;

static container open_container(const char *path) {
    container c;
    c.raw = gunzip_file(path, &c.len);
    uint64_t n;
    memcpy(&n, c.raw, 8);
    c.data_at = 8 + (size_t)n;
    c.root = cJSON_ParseWithLength((const char *)c.raw + 8, (size_t)n);
    ck_assert_ptr_nonnull(c.root);
    return c;
}

static uint64_t off(const cJSON *t, int k) {
    return (uint64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(t, "data_offsets"), k)->valuedouble;
}

static void set_off(cJSON *t, uint64_t b, uint64_t e) {
    cJSON_ReplaceItemInObject(t, "data_offsets", cJSON_CreateIntArray((int[]){(int)b, (int)e}, 2));
}

/* Write header + data (relayout: give the tensors fresh contiguous offsets, taking each one's
 * bytes from where its current offsets point in the original data) as a gzip'd file. */
static void write_container(const char *path, const container *c, cJSON *root, bool relayout) {
    size_t dlen = c->len - c->data_at;
    unsigned char *data = malloc(dlen * 2 + 16);
    size_t at = 0;
    if (relayout) {
        cJSON *t;
        cJSON_ArrayForEach(t, root) {
            if (!strcmp(t->string, "__metadata__")) continue;
            uint64_t b = off(t, 0), e = off(t, 1);
            memcpy(data + at, c->raw + c->data_at + b, e - b);
            set_off(t, at, at + (e - b));
            at += e - b;
        }
    } else {
        memcpy(data, c->raw + c->data_at, dlen);
        at = dlen;
    }
    char *h = cJSON_PrintUnformatted(root);
    size_t hl = strlen(h);
    unsigned char *out = malloc(8 + hl + at);
    uint64_t n = hl;
    memcpy(out, &n, 8);
    memcpy(out + 8, h, hl);
    memcpy(out + 8 + hl, data, at);
    write_gz(path, out, 8 + hl + at);
    free(out);
    free(h);
    free(data);
}

/* Edit a JSON document stored as text in __metadata__[key]. */
static cJSON *meta_doc(cJSON *root, const char *key) {
    return cJSON_Parse(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "__metadata__"), key)->valuestring);
}

static void meta_set_doc(cJSON *root, const char *key, cJSON *doc) {
    char *txt = cJSON_PrintUnformatted(doc);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "__metadata__"), key, cJSON_CreateString(txt));
    free(txt);
    cJSON_Delete(doc);
}

static void meta_set(cJSON *root, const char *key, cJSON *item) {
    cJSON *m = cJSON_GetObjectItem(root, "__metadata__");
    if (cJSON_GetObjectItem(m, key)) cJSON_ReplaceItemInObject(m, key, item);
    else cJSON_AddItemToObject(m, key, item);
}

/* Load path into r, expecting failure with a message containing want and no change at all. */
static void expect_reject(run *r, const char *path, const char *want, const char *what) {
    snap before = take(r);
    nb_train_state st = run_state(r);
    nb_clear_error();
    int rc = nb_checkpoint_load(path, &st);
    ck_assert_msg(rc < 0, "%s: accepted", what);
    ck_assert_msg(strncmp(nb_last_error(), "checkpoint: ", 12) == 0, "%s: message '%s'", what, nb_last_error());
    ck_assert_msg(!want || strstr(nb_last_error(), want), "%s: message '%s' lacks '%s'", what, nb_last_error(), want);
    snap after = take(r);
    const char *d = snap_diff(&before, &after);
    ck_assert_msg(d == NULL, "%s: rejected but changed: %s", what, d);
    snap_free(&before);
    snap_free(&after);
}

/* The live run differs from the file (it trained on after the save), so a partial load shows. */
/* With averaging the file is saved once there is an average (SWA: after epoch 2). */
static const char *corrupt_setup_avg(run *r, int oi, int ai) {
    const char *dir = temp_dir();
    int64_t e = ai == AVG_SWA ? 2 : 1;
    run_init_avg(r, oi, 1, ai, 5);
    run_train(r, e, -1);
    nb_train_state st = run_state(r);
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "good.ckpt"), &st), NB_OK);
    run_train(r, e + 1, 3);
    return dir;
}


static void corrupt_teardown(run *r, const char *dir) {
    /* the good file still loads, and changes the state */
    snap before = take(r);
    nb_train_state st = run_state(r);
    ck_assert_msg(nb_checkpoint_load(path_in(dir, "good.ckpt"), &st) == NB_OK, "%s", nb_last_error());
    snap after = take(r);
    ck_assert_ptr_nonnull(snap_diff(&before, &after));
    snap_free(&before);
    snap_free(&after);
    run_free(r);
    remove_dir(dir);
}

START_TEST(test_truncated) {
    run r;
    const char *dir = corrupt_setup_avg(&r, _i % NOPT, _i / NOPT);
    size_t len;
    unsigned char *b = read_bytes(path_in(dir, "good.ckpt"), &len);
    for (int k = 0; k < 64; k++) {
        size_t at = k < 16 ? (size_t)k : (size_t)((double)len * (k - 15) / 49.0) - 1; /* 0..15, then spread to len-1 */
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", at, len);
        write_bytes(path_in(dir, "bad.ckpt"), b, at);
        expect_reject(&r, path_in(dir, "bad.ckpt"), NULL, what);
    }
    free(b);
    corrupt_teardown(&r, dir);
}
END_TEST

START_TEST(test_flipped) {
    run r;
    const char *dir = corrupt_setup_avg(&r, _i % NOPT, _i / NOPT);
    size_t len;
    unsigned char *b = read_bytes(path_in(dir, "good.ckpt"), &len);
    nb_rng g;
    nb_rng_seed(&g, 2024);
    for (int k = 0; k < 64; k++) {
        /* every byte of the gzip header (10 bytes + header CRC), then random places, the trailer */
        size_t at = k < 12 ? (size_t)k : k >= 60 ? len - (size_t)(64 - k) : nb_rng_below(&g, (uint32_t)len);
        unsigned char x = (unsigned char)(1 + nb_rng_below(&g, 255));
        b[at] ^= x;
        char what[64];
        snprintf(what, sizeof what, "byte %zu of %zu xor 0x%02x", at, len, x);
        write_bytes(path_in(dir, "bad.ckpt"), b, len);
        expect_reject(&r, path_in(dir, "bad.ckpt"), NULL, what);
        b[at] ^= x;
    }
    free(b);
    corrupt_teardown(&r, dir);
}
END_TEST

/* Header and metadata edits, each with the words its message must contain. */
enum { EDITS = 43 };

static const char *edit_case(int k, cJSON *root, bool *relayout) {
    cJSON *w = cJSON_GetObjectItem(root, "0.weight"), *doc;
    uint64_t b = off(w, 0), e = off(w, 1);
    *relayout = false;
    switch (k) {
    case 0: set_off(w, b, e + 4); return "data_offsets";
    case 1: set_off(cJSON_GetObjectItem(root, "0.bias"), e - 4, e - 4 + 96); return "overlaps";
    case 2: set_off(w, e, b); return "data_offsets";
    case 3: { /* tiles correctly, but the data is not there: the header is matched against the
               * model before any data is read (test_bombs.c reads past a promise) */
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "dtype", "U8");
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray((int[]){400}, 1));
        cJSON_AddItemToObject(root, "extra", t);
        cJSON *last = NULL, *it;
        uint64_t end = 0;
        cJSON_ArrayForEach(it, root) if (strcmp(it->string, "__metadata__") && it != t && off(it, 1) > end) end = off(it, 1), last = it;
        (void)last;
        cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateIntArray((int[]){(int)end, (int)end + 400}, 2));
        return "tensor \"extra\" is not in the model";
    }
    case 4: cJSON_ReplaceItemInObject(w, "dtype", cJSON_CreateString("I32")); return "tensor \"0.weight\" has dtype I32, model expects F32";
    case 5: cJSON_ReplaceItemInObject(w, "dtype", cJSON_CreateString("X9")); return "unknown dtype X9";
    case 6: cJSON_ReplaceItemInObject(w, "dtype", cJSON_CreateString("F16")); return "need";
    case 7: cJSON_ReplaceItemInObject(w, "shape", cJSON_CreateIntArray((int[]){ROWS * COLS, 24}, 2));
        return "tensor \"0.weight\" has shape [42,24], model expects [24,42]";
    case 8: cJSON_ReplaceItemInObject(w, "shape", cJSON_CreateNumber(5)); return "shape that is not a list";
    case 9: cJSON_ReplaceItemInObject(w, "shape", cJSON_CreateIntArray((int[]){-1, 42}, 2)); return "bad dimension";
    case 10: *relayout = true;
        cJSON_AddItemToObject(root, "9.weight", cJSON_Duplicate(cJSON_GetObjectItem(root, "3.bias"), 1));
        return "tensor \"9.weight\" is not in the model";
    case 11: *relayout = true; cJSON_DeleteItemFromObject(root, "0.bias");
        return "model tensor \"0.bias\" is missing from the checkpoint";
    case 12: *relayout = true;
        cJSON_AddItemToObject(root, "0.bias", cJSON_Duplicate(cJSON_GetObjectItem(root, "0.bias"), 1));
        return "two tensors are named \"0.bias\"";
    case 13: doc = meta_doc(root, "optimizer");
        cJSON_ReplaceItemInObject(doc, "type", cJSON_CreateString(strcmp(cJSON_GetObjectItem(doc, "type")->valuestring, "SGD") ? "SGD" : "Adam"));
        meta_set_doc(root, "optimizer", doc);
        return "but the checkpoint holds";
    case 14: doc = meta_doc(root, "scheduler");
        cJSON_ReplaceItemInObject(doc, "type", cJSON_CreateString("OneCycleLR"));
        meta_set_doc(root, "scheduler", doc);
        return "scheduler is StepLR, but the checkpoint holds OneCycleLR state";
    case 15: { /* an optimizer state tensor of the wrong shape */
        cJSON *it;
        cJSON_ArrayForEach(it, root) if (strstr(it->string, "optimizer.state.0.") && cJSON_GetArraySize(cJSON_GetObjectItem(it, "shape")) == 2) {
            cJSON_ReplaceItemInObject(it, "shape", cJSON_CreateIntArray((int[]){ROWS * COLS, 24}, 2));
            return "of parameter 0 has shape [42, 24]";
        }
        ck_abort_msg("no 2-d optimizer state");
        return NULL;
    }
    case 16: *relayout = true;
        cJSON_AddItemToObject(root, "optimizer.state.9.x", cJSON_Duplicate(cJSON_GetObjectItem(root, "3.bias"), 1));
        return "tensor \"optimizer.state.9.x\" belongs to no optimizer state entry";
    case 17: { /* an optimizer state tensor missing */
        cJSON *it;
        *relayout = true;
        cJSON_ArrayForEach(it, root) if (strstr(it->string, "optimizer.state.1.") && cJSON_GetArraySize(cJSON_GetObjectItem(it, "shape")) == 1) {
            cJSON_DeleteItemFromObject(root, it->string);
            return "which is not in the file";
        }
        ck_abort_msg("no 1-d optimizer state");
        return NULL;
    }
    case 18: meta_set(root, "format_version", cJSON_CreateString("2")); return "format version 2, newer than the 1 this nabla";
    case 19: meta_set(root, "format", cJSON_CreateString("other")); return "format \"other\" is not nabla-checkpoint";
    case 20: meta_set(root, "format_version", cJSON_CreateNumber(1)); return "__metadata__ entry \"format_version\" is not a string";
    case 21: doc = meta_doc(root, "optimizer");
        cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "param_groups"), cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "param_groups"), 0), 1));
        meta_set_doc(root, "optimizer", doc);
        return "has 2 param groups, the live optimizer has 1";
    case 22: doc = meta_doc(root, "optimizer");
        cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "param_groups"), 0), "lr", cJSON_CreateNumber(-1));
        meta_set_doc(root, "optimizer", doc);
        return "Invalid learning rate: -1";
    case 23: doc = meta_doc(root, "scheduler"); /* fails after the optimizer was loaded: rolled back */
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(doc, "state"), "last_epoch");
        meta_set_doc(root, "scheduler", doc);
        return "last_epoch";
    case 24: doc = meta_doc(root, "loader"); /* fails after optimizer and scheduler: rolled back */
        cJSON_ReplaceItemInObject(doc, "batch", cJSON_CreateNumber(1000000));
        meta_set_doc(root, "loader", doc);
        return "out of range";
    case 25: doc = meta_doc(root, "rng");
        cJSON_ReplaceItemInObject(doc, "left", cJSON_CreateNumber(0));
        meta_set_doc(root, "rng", doc);
        return "generator state is malformed";
    case 26: doc = meta_doc(root, "optimizer");
        cJSON_ReplaceItemInArray(cJSON_GetObjectItem(doc, "param_names"), 0, cJSON_CreateString("3.weight"));
        meta_set_doc(root, "optimizer", doc);
        return "optimizer parameter 0 is \"3.weight\" in the checkpoint but \"0.weight\" in the live optimizer";
    case 27: doc = meta_doc(root, "optimizer");
        cJSON_ReplaceItemInObject(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "param_groups"), 0), "params",
                                  cJSON_CreateIntArray((int[]){1, 0, 2, 3}, 4));
        meta_set_doc(root, "optimizer", doc);
        return "params must be the indices 0..3 in order";
    case 28: doc = meta_doc(root, "optimizer");
        cJSON_AddItemToObject(cJSON_GetObjectItem(doc, "state"), "abc", cJSON_CreateObject());
        meta_set_doc(root, "optimizer", doc);
        return "optimizer state key \"abc\" is not a parameter index";
    case 29: meta_set(root, "optimizer", cJSON_CreateString("{not json")); return "metadata \"optimizer\" is not a JSON object";
    case 30: cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "__metadata__"), "scheduler");
        return "no scheduler state";
    case 31: cJSON_AddStringToObject(w, "extra", "x"); return "unexpected or repeated field \"extra\"";
    case 32: doc = meta_doc(root, "optimizer");
        cJSON_ReplaceItemInArray(cJSON_GetObjectItem(doc, "param_shapes"), 0, cJSON_CreateIntArray((int[]){24, 41}, 2));
        meta_set_doc(root, "optimizer", doc);
        return "optimizer parameter 0 (\"0.weight\") has shape [24,41] in the checkpoint, the live optimizer's has shape [24,42]";
    case 33: doc = meta_doc(root, "position");
        cJSON_ReplaceItemInObject(doc, "epoch", cJSON_CreateNumber(-3));
        meta_set_doc(root, "position", doc);
        return "position needs integer epoch";
    case 34: { /* a tensor reference to a model tensor */
        doc = meta_doc(root, "optimizer");
        cJSON *s0 = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "state"), "0"), *ref = cJSON_CreateObject();
        cJSON_AddStringToObject(ref, "tensor", "0.weight");
        cJSON_AddItemToObject(s0, "stolen", ref);
        meta_set_doc(root, "optimizer", doc);
        return "refers to tensor \"0.weight\", which is not in the file section it belongs to";
    }
    case 35: meta_set(root, "scheduler", cJSON_CreateString("[1, 2]")); return "metadata \"scheduler\" is not a JSON object";
    case 36: doc = meta_doc(root, "scheduler");
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(doc, "state"), "last_epoch", cJSON_CreateNumber(1e300));
        meta_set_doc(root, "scheduler", doc);
        return "scheduler state \"last_epoch\" must be an integer of at most 2^53, not 1e+300";
    case 37: doc = meta_doc(root, "scheduler"); /* the schedule's own rules (StepLR: step_size > 0) */
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(doc, "state"), "step_size", cJSON_CreateNumber(0));
        meta_set_doc(root, "scheduler", doc);
        return "step_size";
    case 38: meta_set(root, "content", cJSON_CreateString("model+optimizer"));
        return "content \"model+optimizer\" is neither \"checkpoint\" nor \"weights\"";
    case 39: /* a weights file gives weights only, whatever else its metadata holds */
        meta_set(root, "content", cJSON_CreateString("weights"));
        return "the file holds weights only (content \"weights\"), not an optimizer's state";
    case 40: /* so does a plain safetensors file (no "format"), as the format's docs say */
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "__metadata__"), "format");
        return "the file has no \"format\" metadata (a plain safetensors file): it holds weights only";
    case 41: case 42: { /* the generator of init and dropout, or the loader's, with no bit set */
        char zeros[8 * 624 + 1];
        memset(zeros, '0', sizeof zeros - 1);
        zeros[sizeof zeros - 1] = '\0';
        doc = meta_doc(root, k == 41 ? "rng" : "loader");
        cJSON *rng = k == 41 ? doc : cJSON_GetObjectItem(doc, "rng");
        cJSON_ReplaceItemInObject(rng, "state", cJSON_CreateString(zeros));
        meta_set_doc(root, k == 41 ? "rng" : "loader", doc);
        return k == 41 ? "checkpoint: the generator state is all zeros: MT19937 would draw nothing but zeros"
                       : "checkpoint: the loader's generator state is all zeros";
    }
    }
    return NULL;
}

/* Values that would corrupt training without an error are refused by name, and nothing
 * changes: Adam's step count (NaN, negative, fractional), a negative second moment, a negative
 * BatchNorm running_var or num_batches_tracked. The file is a valid checkpoint with the data
 * bytes of one tensor overwritten. */
static void overwrite(const char *in, const char *out, const char *tensor, const void *bytes, size_t n) {
    container c = open_container(in);
    cJSON *t = cJSON_GetObjectItem(c.root, tensor);
    ck_assert_msg(t != NULL, "no tensor %s", tensor);
    memcpy(c.raw + c.data_at + off(t, 0), bytes, n);
    write_container(out, &c, c.root, false);
    cJSON_Delete(c.root);
    free(c.raw);
}

START_TEST(test_loaded_values) {
    const char *dir = temp_dir();
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_module *m = nb_sequential(3, (nb_module *[]){nb_linear_new(4, 3, true, &rng),
                                                     nb_batchnorm1d_new(3, NULL), nb_linear_new(3, 2, true, &rng)});
    nb_tensor *p[8];
    int np = nb_module_parameters(m, p, 8);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *opt = nb_adam(p, np, &ao);
    nb_arena *ar = nb_arena_new(0);
    for (int it = 0; it < 2; it++) { /* two steps: optimizer state, running statistics */
        nb_tensor *x = nb_uniform(ar, 2, (int64_t[]){5, 4}, -1, 1, &rng);
        nb_optim_zero_grad(opt, true);
        ck_assert_int_eq(nb_backward(nb_sum(ar, nb_forward(m, ar, x))), NB_OK);
        ck_assert_int_eq(nb_optim_step(opt), NB_OK);
        nb_arena_reset(ar);
    }
    nb_train_state st = {.model = m, .optim = opt};
    char good[4200], bad[4200];
    snprintf(good, sizeof good, "%s/good.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    ck_assert_int_eq(nb_checkpoint_save(good, &st), NB_OK);
    for (int k = 0; k < np; k++) nb_f32(p[k])[0] += 1.0f; /* the live state differs from the file */
    const double nan = NAN, neg = -5, frac = 1.5;
    const float negf = -0.25f;
    const int32_t negi = -1;
    const struct {
        const char *tensor;
        const void *bytes;
        size_t n;
        const char *want;
    } cases[] = {
        {"optimizer.state.0.step", &nan, 8, "checkpoint: optimizer state 'step' of parameter 0 is nan: it must be an integer >= 0"},
        {"optimizer.state.1.step", &neg, 8, "checkpoint: optimizer state 'step' of parameter 1 is -5.0: it must be an integer >= 0"},
        {"optimizer.state.0.step", &frac, 8, "checkpoint: optimizer state 'step' of parameter 0 is 1.5: it must be an integer >= 0"},
        {"optimizer.state.2.exp_avg_sq", &negf, 4, "checkpoint: optimizer state 'exp_avg_sq' of parameter 2 holds -0.25 at index 0: it must be >= 0"},
        {"1.running_var", &negf, 4, "checkpoint: tensor \"1.running_var\" (a variance) holds -0.25 at index 0: it must be >= 0"},
        {"1.running_var", &nan, 4, NULL}, /* (float NaN bytes: any NaN) */
        {"1.num_batches_tracked", &negi, 4, "checkpoint: tensor \"1.num_batches_tracked\" (a count) holds -1: it must be >= 0"},
    };
    float fnan = NAN;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        overwrite(good, bad, cases[i].tensor, cases[i].want ? cases[i].bytes : (const void *)&fnan, cases[i].n);
        float before[8];
        for (int k = 0; k < np; k++) before[k] = nb_f32(p[k])[0];
        nb_optim_dict *sd0 = nb_optim_state_dict(opt);
        ck_assert_int_eq(nb_checkpoint_load(bad, &st), NB_EFORMAT);
        if (cases[i].want) ck_assert_str_eq(nb_last_error(), cases[i].want);
        else ck_assert_msg(strstr(nb_last_error(), "(a variance) holds nan at index 0"), "%s", nb_last_error());
        for (int k = 0; k < np; k++) ck_assert(nb_f32(p[k])[0] == before[k]);
        nb_optim_dict *sd1 = nb_optim_state_dict(opt);
        ck_assert_int_eq(sd0->nstates, sd1->nstates);
        for (int k = 0; k < sd0->nstates; k++) /* step first, then the tensors (Adam's order) */
            ck_assert(!strcmp(sd1->states[k].values[0].name, "step") &&
                      sd1->states[k].values[0].num == sd0->states[k].values[0].num);
        nb_optim_dict_free(sd0);
        nb_optim_dict_free(sd1);
    }
    ck_assert_int_eq(nb_checkpoint_load(good, &st), NB_OK); /* and the file itself loads */
    nb_arena_free(ar);
    nb_optim_free(opt);
    nb_module_free(m);
    remove_dir(dir);
}
END_TEST

START_TEST(test_header_edits) {
    run r;
    const char *dir = corrupt_setup_avg(&r, _i % NOPT, _i / NOPT);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", path_in(dir, "bad.ckpt"));
    for (int k = 0; k < EDITS; k++) {
        container c = open_container(path_in(dir, "good.ckpt"));
        bool relayout;
        const char *want = edit_case(k, c.root, &relayout);
        write_container(bad, &c, c.root, relayout);
        char what[32];
        snprintf(what, sizeof what, "header edit %d", k);
        expect_reject(&r, bad, want, what);
        cJSON_Delete(c.root);
        free(c.raw);
    }
    /* raw layouts: header length, syntax, trailing bytes, tensor count */
    container c = open_container(path_in(dir, "good.ckpt"));
    unsigned char *raw = malloc(c.len + 64);
    memcpy(raw, c.raw, c.len);
    uint64_t n = (uint64_t)1 << 40;
    memcpy(raw, &n, 8);
    write_gz(bad, raw, c.len);
    expect_reject(&r, bad, "header length 1099511627776 is outside 2..8388608", "huge header length");
    n = c.len; /* promises more header than the file has */
    memcpy(raw, &n, 8);
    write_gz(bad, raw, c.len);
    expect_reject(&r, bad, "truncated inside the header", "header past the end");
    memcpy(raw, c.raw, c.len);
    *(unsigned char *)memchr(raw + 8, ':', 64) = '#';
    write_gz(bad, raw, c.len);
    expect_reject(&r, bad, "header is not valid JSON", "JSON syntax");
    memcpy(raw, c.raw, c.len);
    memcpy(raw + c.len, "tail", 4);
    write_gz(bad, raw, c.len + 4);
    expect_reject(&r, bad, "data continues past", "trailing data");
    write_gz(bad, "", 0);
    expect_reject(&r, bad, "too short", "empty gzip");
    write_bytes(bad, "hello, world! this is not a checkpoint", 38);
    expect_reject(&r, bad, "not a nabla checkpoint or safetensors file", "text file");
    /* trailing garbage after the gzip stream */
    size_t glen;
    unsigned char *g = read_bytes(path_in(dir, "good.ckpt"), &glen);
    g = realloc(g, glen + 3);
    memcpy(g + glen, "xyz", 3);
    write_bytes(bad, g, glen + 3);
    expect_reject(&r, bad, "unexpected bytes after the end of the gzip stream", "garbage after gzip");
    free(g);
    /* more tensors than the limit (all empty, so the file is small) */
    cJSON *root = cJSON_CreateObject();
    for (int i = 0; i <= NB_CKPT_MAX_TENSORS; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "dtype", "U8");
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray((int[]){0}, 1));
        cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateIntArray((int[]){0, 0}, 2));
        cJSON_AddItemToObject(root, name, t);
    }
    write_container(bad, &c, root, false);
    expect_reject(&r, bad, "more than 32768 tensors", "tensor count");
    cJSON_Delete(root);
    free(raw);
    cJSON_Delete(c.root);
    free(c.raw);
    corrupt_teardown(&r, dir);
}
END_TEST

/* ---- the averaged copy and SWALR: edits of their entries, each rejected, nothing changed ---- */
enum { AVG_EDITS = 21 };

static cJSON *meta_tensor(cJSON *root, const char *name) {
    cJSON *t = cJSON_GetObjectItem(root, name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    return t;
}

/* The edit k of a file saved with averaging ai (NULL: not for this kind of averaging). */
static const char *avg_edit_case(int k, cJSON *root, bool *relayout, int ai) {
    cJSON *doc;
    bool swa = ai == AVG_SWA;
    *relayout = false;
    switch (k) {
    case 0: cJSON_ReplaceItemInObject(meta_tensor(root, "swa.0.weight"), "shape", cJSON_CreateIntArray((int[]){ROWS * COLS, 24}, 2));
        return "checkpoint: tensor \"swa.0.weight\" has shape [42,24], the averaged copy expects [24,42]";
    case 1: cJSON_ReplaceItemInObject(meta_tensor(root, "swa.0.weight"), "dtype", cJSON_CreateString("I32"));
        return "checkpoint: tensor \"swa.0.weight\" has dtype I32, the averaged copy expects F32";
    case 2: *relayout = true; cJSON_DeleteItemFromObject(root, "swa.0.bias");
        return "checkpoint: averaged tensor \"swa.0.bias\" is missing from the checkpoint";
    case 3: *relayout = true;
        cJSON_AddItemToObject(root, "swa.9.weight", cJSON_Duplicate(meta_tensor(root, "swa.3.bias"), 1));
        return "checkpoint: tensor \"swa.9.weight\" belongs to no averaged tensor";
    case 4: doc = meta_doc(root, "averaged");
        cJSON_ReplaceItemInObject(doc, "kind", cJSON_CreateString(swa ? "EMA" : "SWA"));
        if (swa) cJSON_AddNumberToObject(doc, "decay", 0.9);
        meta_set_doc(root, "averaged", doc);
        return swa ? "checkpoint: the averaged copy does SWA averaging, but the checkpoint holds EMA state"
                   : "checkpoint: the averaged copy does EMA averaging, but the checkpoint holds SWA state";
    case 5: doc = meta_doc(root, "averaged");
        cJSON_ReplaceItemInObject(doc, "kind", cJSON_CreateString("mean"));
        meta_set_doc(root, "averaged", doc);
        return "checkpoint: averaged state needs a kind \"SWA\", \"EMA\" or \"custom\"";
    case 6: case 7: doc = meta_doc(root, "averaged");
        cJSON_ReplaceItemInObject(doc, "n_averaged", cJSON_CreateNumber(k == 6 ? -1 : 1.5));
        meta_set_doc(root, "averaged", doc);
        return "checkpoint: averaged state needs an integer n_averaged >= 0";
    case 8: doc = meta_doc(root, "averaged");
        cJSON_DeleteItemFromArray(cJSON_GetObjectItem(doc, "names"), 3);
        meta_set_doc(root, "averaged", doc);
        return "checkpoint: the checkpoint averages 3 tensors, the model has 4 parameters (4 with its buffers)";
    case 9: doc = meta_doc(root, "averaged");
        cJSON_ReplaceItemInArray(cJSON_GetObjectItem(doc, "names"), 0, cJSON_CreateString("3.weight"));
        meta_set_doc(root, "averaged", doc);
        return "checkpoint: averaged tensor 0 is \"3.weight\" in the checkpoint but \"0.weight\" in the model";
    case 10: doc = meta_doc(root, "averaged");
        cJSON_ReplaceItemInObject(doc, "names", cJSON_CreateNumber(4));
        meta_set_doc(root, "averaged", doc);
        return "checkpoint: averaged state needs a list of names";
    case 11: /* without its metadata, "swa." tensors are model tensors of an older file */
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "__metadata__"), "averaged");
        return "checkpoint: tensor \"swa.0.weight\" is not in the model";
    case 12: { /* no averaged copy at all, but the caller has one */
        *relayout = true;
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "__metadata__"), "averaged");
        const char *names[] = {"swa.0.weight", "swa.0.bias", "swa.3.weight", "swa.3.bias"};
        for (int i = 0; i < 4; i++) cJSON_DeleteItemFromObject(root, names[i]);
        return "checkpoint: the file has no averaged state (metadata \"averaged\" is missing)";
    }
    case 13: meta_set(root, "averaged", cJSON_CreateString("[1]"));
        return "checkpoint: metadata \"averaged\" is not a JSON object";
    case 14: if (swa) return NULL;
        doc = meta_doc(root, "averaged");
        cJSON_ReplaceItemInObject(doc, "decay", cJSON_CreateNumber(0.5));
        meta_set_doc(root, "averaged", doc);
        return "checkpoint: the averaged copy has EMA decay 0.9, but the checkpoint's has decay 0.5";
    case 15: if (swa) return NULL;
        doc = meta_doc(root, "averaged");
        cJSON_ReplaceItemInObject(doc, "decay", cJSON_CreateNumber(2));
        meta_set_doc(root, "averaged", doc);
        return "checkpoint: averaged EMA state needs a decay in [0, 1]";
    case 16: if (!swa) return NULL;
        doc = meta_doc(root, "swa_scheduler");
        cJSON_ReplaceItemInObject(doc, "type", cJSON_CreateString("StepLR"));
        meta_set_doc(root, "swa_scheduler", doc);
        return "checkpoint: swa_scheduler is SWALR, but the checkpoint holds StepLR state";
    case 17: if (!swa) return NULL;
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "__metadata__"), "swa_scheduler");
        return "checkpoint: the file has no swa_scheduler state (metadata \"swa_scheduler\" is missing)";
    case 18: if (!swa) return NULL; /* fails after the optimizer and the scheduler were loaded */
        doc = meta_doc(root, "swa_scheduler");
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(doc, "state"), "anneal_epochs", cJSON_CreateNumber(-1));
        meta_set_doc(root, "swa_scheduler", doc);
        return "checkpoint: anneal_epochs must be equal or greater than 0, got -1";
    case 19: if (!swa) return NULL;
        doc = meta_doc(root, "swa_scheduler");
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(doc, "state"), "last_epoch", cJSON_CreateNumber(1e300));
        meta_set_doc(root, "swa_scheduler", doc);
        return "checkpoint: swa_scheduler state \"last_epoch\" must be an integer of at most 2^53, not 1e+300";
    case 20: if (!swa) return NULL;
        *relayout = true;
        cJSON_AddItemToObject(root, "swa_scheduler.x", cJSON_Duplicate(meta_tensor(root, "3.bias"), 1));
        return "checkpoint: tensor \"swa_scheduler.x\" belongs to no swa_scheduler state entry";
    }
    return NULL;
}

START_TEST(test_averaged_edits) {
    int oi = _i % NOPT, ai = _i / NOPT ? AVG_EMA : AVG_SWA;
    run r;
    const char *dir = corrupt_setup_avg(&r, oi, ai);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", path_in(dir, "bad.ckpt"));
    int tried = 0;
    for (int k = 0; k < AVG_EDITS; k++) {
        container c = open_container(path_in(dir, "good.ckpt"));
        bool relayout;
        const char *want = avg_edit_case(k, c.root, &relayout, ai);
        if (want) {
            write_container(bad, &c, c.root, relayout);
            char what[64];
            snprintf(what, sizeof what, "%s edit %d", avgs[ai].name, k);
            expect_reject(&r, bad, want, what);
            ck_assert_msg(!strcmp(nb_last_error(), want), "%s: '%s'", what, nb_last_error());
            tried++;
        }
        cJSON_Delete(c.root);
        free(c.raw);
    }
    ck_assert_int_eq(tried, ai == AVG_SWA ? AVG_EDITS - 2 : AVG_EDITS - 5);
    /* the loader fails last of the fallible loads: optimizer and both schedules are rolled back,
     * and the averaged copy was not touched */
    container c = open_container(path_in(dir, "good.ckpt"));
    cJSON *doc = meta_doc(c.root, "loader");
    cJSON_ReplaceItemInObject(doc, "batch", cJSON_CreateNumber(1000000));
    meta_set_doc(c.root, "loader", doc);
    write_container(bad, &c, c.root, false);
    expect_reject(&r, bad, "out of range", "loader after the averaged copy");
    cJSON_Delete(c.root);
    free(c.raw);
    corrupt_teardown(&r, dir);
}
END_TEST

/* The averaged copy through the API: what it must cover, files without one, and
 * nb_weights_load_averaged. */
START_TEST(test_averaged_api) {
    const char *dir = temp_dir();
    run a, b;
    run_init_avg(&a, 0, 1, AVG_SWA, 3);
    run_train(&a, 3, -1);
    ck_assert_int_eq(nb_averaged_count(a.avg), 2);
    nb_train_state st = run_state(&a);
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "swa.ckpt"), &st), NB_OK);
    /* an averaged copy over something else than the model's parameters is refused */
    nb_averaged *part = nb_averaged_new(a.params, 2, NULL);
    st.averaged = part;
    nb_clear_error();
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "part.ckpt"), &st), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the averaged copy has 2 tensors; it must average the "
                                      "model's 4 parameters (or those and its 0 buffers)");
    ck_assert_int_eq(access(path_in(dir, "part.ckpt"), F_OK), -1);
    run_init_avg(&b, 0, 1, AVG_SWA, 4);
    snap before = take(&b);
    nb_train_state bt = run_state(&b);
    bt.averaged = part;
    ck_assert_int_eq(nb_checkpoint_load(path_in(dir, "swa.ckpt"), &bt), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the averaged copy has 2 tensors; it must average the "
                                      "model's 4 parameters (or those and its 0 buffers)");
    snap after = take(&b);
    ck_assert_ptr_null(snap_diff(&before, &after));
    snap_free(&after);
    nb_averaged_free(part);
    /* a file without averaging loads into a run without it, and is refused by a run with it */
    run c;
    run_init(&c, 0, 1, 3);
    run_train(&c, 1, -1);
    nb_train_state ct = run_state(&c);
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "plain.ckpt"), &ct), NB_OK);
    bt = run_state(&b);
    ck_assert_int_eq(nb_checkpoint_load(path_in(dir, "plain.ckpt"), &bt), NB_EFORMAT);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the file has no averaged state (metadata \"averaged\" is missing)");
    after = take(&b);
    ck_assert_ptr_null(snap_diff(&before, &after));
    snap_free(&after);
    /* parts of the file the caller does not pass are ignored: a run without averaging loads the
     * SWA file, "swa." tensors and all */
    ck_assert_msg(nb_checkpoint_load(path_in(dir, "swa.ckpt"), &ct) == NB_OK, "%s", nb_last_error());
    ck_assert_int_eq(memcmp(c.model->internal.slab, a.model->internal.slab, sizeof(float) * (size_t)a.model->internal.slab_numel), 0);
    /* the averaged model: the model tensors, then the averaged weights over them */
    ck_assert_int_eq(nb_weights_load_averaged(path_in(dir, "swa.ckpt"), b.model), NB_OK);
    for (int i = 0; i < a.np; i++)
        ck_assert_int_eq(memcmp(b.params[i]->data, nb_averaged_tensor(a.avg, i)->data,
                                sizeof(float) * (size_t)a.params[i]->numel), 0);
    ck_assert_int_ne(memcmp(b.model->internal.slab, a.model->internal.slab, sizeof(float) * (size_t)a.model->internal.slab_numel), 0);
    snap_free(&before);
    before = take(&b);
    ck_assert_int_eq(nb_weights_load_averaged(path_in(dir, "plain.ckpt"), b.model), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the file has no averaged weights (metadata \"averaged\" is missing)");
    after = take(&b);
    ck_assert_ptr_null(snap_diff(&before, &after));
    snap_free(&before);
    snap_free(&after);
    ck_assert_int_eq(nb_weights_load_averaged(path_in(dir, "nope"), b.model), NB_EIO);
    ck_assert_int_eq(nb_weights_load_averaged(path_in(dir, "swa.ckpt"), NULL), NB_EINVAL);
    run_free(&a);
    run_free(&b);
    run_free(&c);
    unlink(path_in(dir, "swa.ckpt"));
    unlink(path_in(dir, "plain.ckpt"));
    rmdir(dir);
}
END_TEST

/* A plain checkpoint of format version 1 without averaged weights, written by
 * `nabla train --data datasets/tiny --hidden 4 --optim sgd --momentum 0.9 --sched step
 * --step-size 1 --epochs 2 --stop-after 1 --seed 3 --save ...` (it records only the flags its
 * user gave, so flags added or renamed since cannot break its resume), still loads, resumes
 * and evaluates. */
static int nabla_cli(const char *dir, const char *const *args);
static char *cli_output(const char *dir);

START_TEST(test_v1_file) {
    char v1[4200], data[4200];
    snprintf(v1, sizeof v1, "%s/tests/golden/ckpt_v1_sgd_step.ckpt", NB_SOURCE_DIR);
    snprintf(data, sizeof data, "%s", fixture("tiny"));
    nb_ckpt *c = nb_ckpt_open(v1);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(nb_ckpt_meta(c, "format_version"), "1");
    ck_assert_ptr_null(nb_ckpt_meta(c, "averaged"));
    const char *args = nb_ckpt_meta(c, "user.cli.args"); /* the user's flags, not every default */
    ck_assert_msg(args && strstr(args, "\"--hidden=4\"") && !strstr(args, "--patience"), "%s", args);
    nb_ckpt_close(c);
    const char *dir = temp_dir();
    char out[4200];
    snprintf(out, sizeof out, "%s/resumed.ckpt", dir);
    const char *resume[] = {"train", "--data", data, "--epochs", "2", "--resume", v1, "--save", out, NULL};
    ck_assert_msg(nabla_cli(dir, resume) == 0, "%s", cli_output(dir));
    char *o = cli_output(dir);
    ck_assert_msg(strstr(o, "resumed from") && strstr(o, "epoch 2/2"), "%s", o);
    free(o);
    const char *eval[] = {"eval", "--data", data, "--load", v1, NULL};
    ck_assert_msg(nabla_cli(dir, eval) == 0, "%s", cli_output(dir));
    o = cli_output(dir);
    ck_assert_msg(strstr(o, "weights: the model's (no averaged weights in the file)") && strstr(o, "test_acc"), "%s", o);
    free(o);
    /* asking for averaging it never had: named, and nothing written */
    const char *swa[] = {"train", "--data", data, "--epochs", "3", "--resume", v1, "--swa-start", "1", "--save", out, NULL};
    unlink(out);
    ck_assert_int_eq(nabla_cli(dir, swa), 1);
    o = cli_output(dir);
    ck_assert_msg(strstr(o, "checkpoint: the file has no averaged state (metadata \"averaged\" is missing)"), "%s", o);
    free(o);
    ck_assert_int_eq(access(out, F_OK), -1);
    const char *evavg[] = {"eval", "--data", data, "--load", v1, "--weights", "averaged", NULL};
    ck_assert_int_eq(nabla_cli(dir, evavg), 1);
    o = cli_output(dir);
    ck_assert_msg(strstr(o, "has no averaged weights"), "%s", o);
    free(o);
    unlink(path_in(dir, "out.txt"));
    rmdir(dir);
}
END_TEST

/* ---- crash safety: SIGKILL a process in the middle of saving, again and again ----------- */
/* The writer's pause points (nb__ck_save_hook, test-only): the child stops itself at point
 * kill_stop (counted over all its saves) and the parent kills it there, so every kill lands
 * inside a save at a known stage, however slow the build or busy the machine. */
enum { MAX_POINTS = 256 };
static int kill_stop, kill_points;
static nb__ck_stage kill_stages[MAX_POINTS];
static void record_point(nb__ck_stage s) {
    if (kill_points < MAX_POINTS) kill_stages[kill_points] = s;
    kill_points++;
}
static void stop_at_point(nb__ck_stage s) {
    (void)s;
    if (kill_points++ == kill_stop) raise(SIGSTOP);
}

/* The temp files of saves to dir/kill.ckpt: their count; the one of process pid in own[]
 * (empty if none), the first other one in other[]. */
static int kill_temps(const char *dir, pid_t pid, char *own, char *other, size_t n) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "kill.ckpt.tmp.%ld.", (long)pid);
    own[0] = other[0] = '\0';
    int count = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "kill.ckpt") == 0) continue;
        ck_assert_msg(strncmp(e->d_name, "kill.ckpt.tmp.", 14) == 0, "unexpected file %s", e->d_name);
        count++;
        bool mine = strncmp(e->d_name, prefix, strlen(prefix)) == 0;
        if (mine || !other[0]) snprintf(mine ? own : other, n, "%s", e->d_name);
    }
    closedir(d);
    return count;
}

START_TEST(test_kill_during_save) {
    const char *dir = temp_dir();
    char file[4096];
    snprintf(file, sizeof file, "%s/kill.ckpt", dir);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = nb_sequential(5, (nb_module *[]){nb_linear_new(784, 256, true, &rng), nb_relu_new(),
                                                     nb_linear_new(256, 128, true, &rng), nb_relu_new(),
                                                     nb_linear_new(128, 10, true, &rng)});
    nb_tensor *p[8];
    int np = nb_module_parameters(m, p, 8);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *opt = nb_adam(p, np, &ao);
    for (int i = 0; i < np; i++) {
        p[i]->grad = p[i]->internal.grad_slot;
        nb_fill(p[i]->grad, 0.5f);
    }
    ck_assert_int_eq(nb_optim_step(opt), NB_OK);
    nb_train_state st = {.model = m, .optim = opt, .rng = &rng};
    nb_fill(p[0], 0.0f);
    /* generation 0, recording the pause points of one save: created, header, one per tensor,
     * written, synced, renamed, cleaned */
    nb__ck_save_hook = record_point;
    ck_assert_int_eq(nb_checkpoint_save(file, &st), NB_OK);
    nb__ck_save_hook = NULL;
    const int points = kill_points;
    ck_assert_int_le(points, MAX_POINTS);
    ck_assert_int_ge(points, 7);
    ck_assert(kill_stages[0] == NB__CK_CREATED && kill_stages[1] == NB__CK_HEADER);
    for (int k = 2; k < points - 4; k++) ck_assert(kill_stages[k] == NB__CK_TENSOR);
    ck_assert(kill_stages[points - 4] == NB__CK_WRITTEN && kill_stages[points - 3] == NB__CK_SYNCED &&
              kill_stages[points - 2] == NB__CK_RENAMED && kill_stages[points - 1] == NB__CK_CLEANED);
    /* Every point of a child's first save and of its second (the first one complete), rounds
     * alternating between the two: a completed first save must remove the temp that the
     * previous round's kill left. */
    const int rounds = 2 * points;
    int inside = 0, expect_gen = 0;
    char stale[256] = "", own[256], other[256];
    for (int round = 0; round < rounds; round++) {
        kill_stop = round / 2 + (round % 2) * points;
        const int gen = 1 + kill_stop / points;
        const nb__ck_stage at = kill_stages[kill_stop % points];
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) { /* child: save generation after generation, marking each in 0.weight */
            kill_points = 0;
            nb__ck_save_hook = stop_at_point;
            for (int g = 1;; g++) {
                nb_fill(p[0], (float)(round * 1000 + g));
                st.step = round * 1000 + g;
                if (nb_checkpoint_save(file, &st)) _exit(3);
            }
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
        ck_assert_msg(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP,
                      "round %d: the child did not stop at its pause point (status %d)", round, status);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "round %d: status %d", round, status);
        inside++;
        /* killed before the rename: the final name holds the last complete save before */
        bool renamed = at >= NB__CK_RENAMED;
        if (renamed || gen > 1) expect_gen = round * 1000 + (renamed ? gen : gen - 1);
        /* the temp of the save in progress is left behind, under its temp name, until the
         * rename; complete once written (never under the final name, never a torn one there) */
        int ntemps = kill_temps(dir, pid, own, other, sizeof own);
        ck_assert_msg(renamed ? !own[0] : own[0] != '\0', "round %d (stage %d of save %d): temp %s", round,
                      (int)at, gen, own[0] ? own : "missing");
        nb_train_state lt = {.model = m, .optim = opt, .rng = &rng};
        if (own[0]) {
            int rc = nb_checkpoint_load(path_in(dir, own), &lt);
            if (at >= NB__CK_WRITTEN) {
                ck_assert_msg(rc == NB_OK, "round %d: %s", round, nb_last_error());
                ck_assert_int_eq(lt.step, round * 1000 + gen);
            } else {
                ck_assert_msg(rc != NB_OK, "round %d: a temp killed at stage %d loads", round, (int)at);
            }
        }
        /* the previous kill's temp is gone once a save of this child has completed */
        bool cleaned = gen > 1 || at == NB__CK_CLEANED;
        ck_assert_msg(cleaned ? !other[0] : strcmp(other, stale) == 0, "round %d: stale temp '%s', expected '%s'",
                      round, other, cleaned ? "" : stale);
        ck_assert_int_eq(ntemps, (own[0] != '\0') + (other[0] != '\0'));
        snprintf(stale, sizeof stale, "%s", own[0] ? own : other);
        /* the file under the final name loads completely, and is one generation */
        ck_assert_msg(nb_checkpoint_load(file, &lt) == NB_OK, "after kill %d: %s", round, nb_last_error());
        float v = nb_f32(p[0])[0];
        for (int64_t i = 0; i < p[0]->numel; i++) ck_assert_float_eq(nb_f32(p[0])[i], v);
        ck_assert_int_eq((int64_t)v, lt.step);
        ck_assert_int_eq(lt.step, expect_gen);
    }
    ck_assert_int_eq(inside, rounds);
    /* a save of this process removes the last temp left */
    ck_assert_int_eq(nb_checkpoint_save(file, &st), NB_OK);
    ck_assert_int_eq(kill_temps(dir, getpid(), own, other, sizeof own), 0);
    nb_optim_free(opt);
    nb_module_free(m);
    unlink(file);
    rmdir(dir);
}
END_TEST

/* A save removes the temp files that killed saves to the same path left (their process is
 * gone), and nothing else: not a live process's, not another path's, not other names. */
START_TEST(test_stale_temps_removed) {
    const char *dir = temp_dir();
    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0) _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    char gone[2][64], kept[5][64];
    snprintf(gone[0], sizeof gone[0], "s.ckpt.tmp.%ld.0", (long)dead);
    snprintf(gone[1], sizeof gone[1], "s.ckpt.tmp.%ld.17", (long)dead);
    snprintf(kept[0], sizeof kept[0], "s.ckpt.tmp.%ld.0", (long)getppid()); /* alive */
    snprintf(kept[1], sizeof kept[1], "s.ckpt.tmp.%ld.x", (long)dead);      /* not our name */
    snprintf(kept[2], sizeof kept[2], "t.ckpt.tmp.%ld.0", (long)dead);      /* another path */
    snprintf(kept[3], sizeof kept[3], "s.ckpt.tmp.%ld.", (long)dead);
    snprintf(kept[4], sizeof kept[4], "s.ckpt.tmp.-%ld.0", (long)dead);
    for (int i = 0; i < 7; i++) {
        FILE *f = fopen(path_in(dir, i < 2 ? gone[i] : kept[i - 2]), "w");
        ck_assert_ptr_nonnull(f);
        fclose(f);
    }
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = nb_linear_new(3, 2, true, &rng);
    nb_train_state st = {.model = m, .rng = &rng};
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "s.ckpt"), &st), NB_OK);
    for (int i = 0; i < 2; i++) ck_assert_msg(access(path_in(dir, gone[i]), F_OK) != 0, "%s is still there", gone[i]);
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(access(path_in(dir, kept[i]), F_OK) == 0, "%s was removed", kept[i]);
        unlink(path_in(dir, kept[i]));
    }
    unlink(path_in(dir, "s.ckpt"));
    rmdir(dir);
    nb_module_free(m);
}
END_TEST

/* A killed process's temp file whose pid this process now has (pids are reused) does not
 * stop a save: the save takes a free temp name and leaves that file alone. A child process
 * stands in for the new owner of the pid: it plants temp names of its own pid for every
 * counter value the saves of this test program can have reached, then saves. */
START_TEST(test_temp_name_of_reused_pid) {
    const char *dir = temp_dir();
    enum { PLANTED = 4096 };
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char name[64];
        for (int i = 0; i < PLANTED; i++) {
            snprintf(name, sizeof name, "r.ckpt.tmp.%ld.%d", (long)getpid(), i);
            FILE *f = fopen(path_in(dir, name), "w");
            if (!f) _exit(2);
            fclose(f);
        }
        nb_rng rng;
        nb_rng_seed(&rng, 1);
        nb_module *m = nb_linear_new(3, 2, true, &rng);
        nb_train_state st = {.model = m, .rng = &rng};
        int rc = nb_checkpoint_save(path_in(dir, "r.ckpt"), &st);
        if (rc) fprintf(stderr, "save: %s\n", nb_last_error());
        nb_train_state lt = {.model = m, .rng = &rng};
        _exit(rc ? 3 : nb_checkpoint_load(path_in(dir, "r.ckpt"), &lt) ? 4 : 0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the save beside planted temp names failed (status %d)", status);
    int left = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "r.ckpt.tmp.", 11)) {
            left++;
            unlink(path_in(dir, e->d_name));
        }
    closedir(d);
    ck_assert_int_eq(left, PLANTED); /* its own pid is alive while it saves: none removed */
    unlink(path_in(dir, "r.ckpt"));
    rmdir(dir);
}
END_TEST

/* ---- the CLI: nabla train --save/--resume/--stop-after, nabla eval, nabla ckpt inspect ---- */
static void write_idx(const char *path, int rank, const int *dims, const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char hdr[4] = {0, 0, 8, (unsigned char)rank};
    fwrite(hdr, 1, 4, f);
    for (int i = 0; i < rank; i++) {
        unsigned char d[4] = {(unsigned char)(dims[i] >> 24), (unsigned char)(dims[i] >> 16),
                              (unsigned char)(dims[i] >> 8), (unsigned char)dims[i]};
        fwrite(d, 1, 4, f);
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Tiny MNIST-shaped data: each class is a noisy bright stripe, so a model learns something. */
static void make_mnist(const char *dir) {
    nb_rng r;
    nb_rng_seed(&r, 11);
    const char *prefix[] = {"train", "t10k"};
    const int count[] = {480, 200};
    for (int s = 0; s < 2; s++) {
        int n = count[s];
        unsigned char *img = malloc((size_t)n * 784), *lab = malloc((size_t)n);
        for (int i = 0; i < n; i++) {
            lab[i] = (unsigned char)nb_rng_below(&r, 10);
            for (int p = 0; p < 784; p++) {
                int row = p / 28, bright = row / 3 == lab[i] ? 160 : 0;
                img[(size_t)i * 784 + (size_t)p] = (unsigned char)(bright + nb_rng_below(&r, 90));
            }
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix[s]);
        write_idx(path, 3, (int[]){n, 28, 28}, img, (size_t)n * 784);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix[s]);
        write_idx(path, 1, (int[]){n}, lab, (size_t)n);
        free(img);
        free(lab);
    }
}

/* Run build/nabla with args (NULL-terminated); stdout+stderr go to dir/out.txt. Exit code. */
static int nabla_cli(const char *dir, const char *const *args) {
    char out[4096], exe[4096];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(exe, sizeof exe, "%s/nabla", NB_BUILD_DIR);
    const char *argv[64] = {exe};
    int n = 1;
    for (; args[n - 1]; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *o = freopen(out, "w", stdout);
        if (!o || dup2(fileno(stdout), 2) < 0) _exit(126);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *cli_output(const char *dir) {
    size_t len;
    char *b = (char *)read_bytes(path_in(dir, "out.txt"), &len);
    b[len] = '\0';
    return b;
}

static bool same_file(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *x = read_bytes(a, &la), *y = read_bytes(b, &lb);
    bool same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* CLI runs to compare: optimizer and schedule flags (add rows as the CLI learns more). */
static const char *const cli_cases[][6] = {
    {"--optim", "sgd", "--sched", "step", "--gamma", "0.5"},
    {"--optim", "adam", "--sched", "onecycle", "--max-lr", "0.01"},
    {"--optim", "rmsprop", "--momentum", "0.5", "--clip", "1.0"},
    {"--optim", "asgd", "--t0", "5", "--lr", "0.05"},
    {"--optim", "adafactor", "--sched", "step", "--gamma", "0.5"},
    {"--optim", "lbfgs", "--line-search", "strong_wolfe", "--history-size", "3"},
};

START_TEST(test_cli_resume) {
    const char *dir = temp_dir();
    char data[4000], a[4200], b[4200], w[4200];
    snprintf(data, sizeof data, "%s", dir);
    make_mnist(data);
    snprintf(a, sizeof a, "%s/a.ckpt", dir);
    snprintf(b, sizeof b, "%s/b.ckpt", dir);
    snprintf(w, sizeof w, "%s/logits.npy", dir);
    const char *const *c = cli_cases[_i];
    /* one run of 3 epochs */
    const char *full[] = {"train", "--data", data, c[0], c[1], c[2], c[3], c[4], c[5], "--hidden", "32",
                          "--batch", "50", "--seed", "5", "--epochs", "3", "--save", a, NULL};
    ck_assert_msg(nabla_cli(dir, full) == 0, "%s", cli_output(dir));
    /* interrupted after epoch 1, resumed in a new process (flags restored from the file, but for
     * the data path: a path never comes from a file), saved every epoch, interrupted again after
     * 2, resumed with the flags given again */
    const char *part[] = {"train", "--data", data, c[0], c[1], c[2], c[3], c[4], c[5], "--hidden", "32",
                          "--batch", "50", "--seed", "5", "--epochs", "3", "--stop-after", "1",
                          "--save", b, NULL};
    ck_assert_msg(nabla_cli(dir, part) == 0, "%s", cli_output(dir));
    const char *resume1[] = {"train", "--data", data, "--epochs", "3", "--resume", b, "--save", b, "--save-every", "1",
                             "--stop-after", "2", NULL};
    ck_assert_msg(nabla_cli(dir, resume1) == 0, "%s", cli_output(dir));
    char *out = cli_output(dir);
    ck_assert_msg(strstr(out, "resumed from") && strstr(out, "epoch 2/3") && !strstr(out, "epoch 3/3"), "%s", out);
    ck_assert_msg(strstr(out, "flags from the checkpoint: ") && strstr(out, "--hidden=32") &&
                  strstr(out, "not taken from the checkpoint") && strstr(out, "--data="), "%s", out);
    free(out);
    const char *resume2[] = {"train", "--data", data, c[0], c[1], c[2], c[3], c[4], c[5], "--hidden", "32",
                             "--batch", "50", "--seed", "5", "--epochs", "3",
                             "--resume", b, "--save", b, NULL};
    ck_assert_msg(nabla_cli(dir, resume2) == 0, "%s", cli_output(dir));
    ck_assert_msg(same_file(a, b), "%s %s: the resumed run's checkpoint differs from the uninterrupted one", c[1], c[3]);
    /* eval from the file alone (the model flags are in it), with logits */
    const char *eval[] = {"eval", "--data", data, "--load", b, "--logits", w, NULL};
    ck_assert_msg(nabla_cli(dir, eval) == 0, "%s", cli_output(dir));
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "test_acc") && strstr(out, "(200 samples)"), "%s", out);
    free(out);
    size_t nl;
    free(read_bytes(w, &nl));
    ck_assert_uint_eq(nl, 128 + 200 * 10 * 4);
    const char *insp[] = {"ckpt", "inspect", b, NULL};
    ck_assert_int_eq(nabla_cli(dir, insp), 0);
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "optimizer.state.0.") && strstr(out, "0.weight") && strstr(out, "position: {\"epoch\":3"), "%s", out);
    free(out);
    /* a resume that does not fit the checkpoint names the problem and changes nothing */
    const char *bad[] = {"train", "--data", data, "--epochs", "4", "--resume", b, "--hidden", "33", "--save", b, NULL};
    ck_assert_int_eq(nabla_cli(dir, bad), 1);
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "checkpoint: tensor \"0.weight\" has shape [32,784], model expects [33,784]"), "%s", out);
    free(out);
    ck_assert(same_file(a, b));
    remove_dir(dir);
}
END_TEST

/* b's stored flags ("user.cli.args") replaced by words (a JSON array), written to out. */
static void set_stored_flags(const char *b, const char *out, const char *words) {
    container c = open_container(b);
    meta_set(c.root, "user.cli.args", cJSON_CreateString(words));
    write_container(out, &c, c.root, false);
    cJSON_Delete(c.root);
    free(c.raw);
}

/* A checkpoint is data, never a command line: of a crafted file's stored flags, --resume takes
 * only those that describe the model and the training run, validated as if typed, and says
 * which; paths, epochs, threads, metrics and unknown flags stay the command line's. */
START_TEST(test_cli_resume_crafted_flags) {
    const char *dir = temp_dir();
    char data[4000], b[4200], evil[4200], victim[4200], metrics[4200], words[16384];
    snprintf(data, sizeof data, "%s", dir);
    make_mnist(data);
    snprintf(b, sizeof b, "%s/b.ckpt", dir);
    snprintf(evil, sizeof evil, "%s/evil.ckpt", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(metrics, sizeof metrics, "%s/m.json", dir);
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--hidden", "16", "--batch", "50",
                                                  "--epochs", "1", "--save", b, NULL}) == 0, "%s", cli_output(dir));
    FILE *v = fopen(victim, "w");
    fputs("precious\n", v);
    fclose(v);
    snprintf(words, sizeof words, "[\"--hidden=16\", \"--batch=50\", \"--save=%s\", \"--epochs=1000000\", "
             "\"--threads=64\", \"--metrics=%s\", \"--data=/nonexistent\", \"--stop-after=0\", "
             "\"--save-every=1\", \"--resume=%s\", \"--evil=1\", \"--help=true\"]", victim, metrics, victim);
    set_stored_flags(b, evil, words);
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "2", "--resume", evil, NULL}) == 0,
                  "%s", cli_output(dir));
    char *out = cli_output(dir);
    ck_assert_msg(strstr(out, "2 epochs,") && strstr(out, "epoch 2/2") && !strstr(out, "epoch 3/"), "%s", out);
    ck_assert_msg(strstr(out, "flags from the checkpoint: --hidden=16 --batch=50\n"), "%s", out);
    ck_assert_msg(strstr(out, "not taken from the checkpoint") && strstr(out, "--epochs=1000000") &&
                  strstr(out, "--evil=1") && strstr(out, "--data=/nonexistent"), "%s", out);
    free(out);
    size_t n;
    unsigned char *kept = read_bytes(victim, &n);
    ck_assert(n == 9 && !memcmp(kept, "precious\n", 9)); /* --save from the file wrote nothing */
    free(kept);
    ck_assert_int_ne(access(metrics, F_OK), 0);
    /* a restorable flag with a bad value is refused as the user's would be, naming the file */
    set_stored_flags(b, evil, "[\"--hidden=16\", \"--layers=x\"]");
    ck_assert_int_eq(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "2", "--resume", evil, NULL}), 2);
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "a flag stored in the checkpoint is invalid: invalid value 'x' for --layers"), "%s", out);
    free(out);
    set_stored_flags(b, evil, "[\"--hidden=16\", \"--batch=-5\"]");
    ck_assert_int_eq(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "2", "--resume", evil, NULL}), 2);
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "--batch must be positive") &&
                  strstr(out, "(flags taken from the checkpoint: --hidden=16 --batch=-5)"), "%s", out);
    free(out);
    /* a stored word must be one "--name=value": anything else is malformed, not an argument */
    set_stored_flags(b, evil, "[\"--hidden\", \"--save=x\"]");
    ck_assert_int_eq(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "2", "--resume", evil, NULL}), 2);
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "the flags stored in the checkpoint are malformed"), "%s", out);
    free(out);
    /* nabla eval takes the model flags only, blames itself and the file, and states the limit */
    set_stored_flags(b, evil, "[\"--hidden=16\"]");
    container c = open_container(evil);
    meta_set(c.root, "user.cli.model", cJSON_CreateString("[\"--model=mlp\", \"--hidden=2000000\", \"--save=x\"]"));
    write_container(evil, &c, c.root, false);
    cJSON_Delete(c.root);
    free(c.raw);
    ck_assert_int_eq(nabla_cli(dir, (const char *[]){"eval", "--data", data, "--load", evil, NULL}), 2);
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "nabla eval: hidden size 2000000 is not an integer in 1..1000000") &&
                  strstr(out, "(flags taken from the checkpoint: --model=mlp --hidden=2000000)") &&
                  !strstr(out, "nabla train"), "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* A OneCycleLR run has a fixed number of steps: resuming it with more epochs than it was built
 * for is refused at the resume, before any training, not at the first step past its end. */
START_TEST(test_cli_resume_onecycle_longer) {
    const char *dir = temp_dir();
    char data[4000], b[4200];
    snprintf(data, sizeof data, "%s", dir);
    make_mnist(data);
    snprintf(b, sizeof b, "%s/b.ckpt", dir);
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--sched", "onecycle", "--max-lr", "0.05",
                                                  "--batch", "100", "--epochs", "2", "--save", b, NULL}) == 0,
                  "%s", cli_output(dir));
    ck_assert_int_eq(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "3", "--resume", b, NULL}), 1);
    char *out = cli_output(dir);
    ck_assert_msg(strstr(out, "nabla train: --resume: the checkpoint's OneCycleLR schedule has 10 steps in all "
                              "and has taken 10; the 1 epoch(s) left to --epochs need 5 more") &&
                  !strstr(out, "epoch 3/3"), "%s", out);
    free(out);
    /* within its steps it resumes */
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--sched", "onecycle", "--max-lr", "0.05",
                                                  "--batch", "100", "--epochs", "3", "--stop-after", "1", "--save", b, NULL}) == 0,
                  "%s", cli_output(dir));
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "3", "--resume", b, NULL}) == 0,
                  "%s", cli_output(dir));
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "epoch 3/3"), "%s", out);
    free(out);
    remove_dir(dir);
}
END_TEST

/* SWA/EMA through the CLI: 4 epochs in one run, or interrupted after epoch 3 (and after 1, 3)
 * and resumed in new processes, give the same checkpoint bytes: parameters, optimizer state,
 * both schedules, the averaged weights and n_averaged. */
static const char *const cli_avg_cases[][16] = {
    {"--optim", "sgd", "--sched", "step", "--step-size", "1", "--gamma", "0.5", "--swa-start", "2",
     "--swa-lr", "0.02", "--swa-anneal-epochs", "2", NULL},
    {"--optim", "adam", "--sched", "onecycle", "--max-lr", "0.01", "--ema", "0.9", NULL},
    {"--optim", "sgd", "--momentum", "0.9", "--sched", "cosine", "--T-max", "4", "--swa-start", "3", NULL},
};
/* a resume with the other kind of averaging (or EMA decay); the first keeps the stored --swa-lr */
static const char *const cli_avg_other[][5] = {
    {"--swa-start", "0", "--ema", "0.9", NULL},
    {"--ema", "0.5", NULL},
    {"--swa-start", "0", "--ema", "0.9", NULL},
};
static const char *const cli_avg_refusal[] = {
    "nabla train: --swa-lr needs --swa-start",
    "checkpoint: the averaged copy has EMA decay 0.5, but the checkpoint's has decay 0.9",
    "checkpoint: the averaged copy does EMA averaging, but the checkpoint holds SWA state",
};
static const char *const cli_avg_desc[] = {
    "SWA average of 3 update(s) over 4 tensor(s)",
    "EMA (decay 0.9) average of 40 update(s) over 4 tensor(s)",
    "SWA average of 2 update(s) over 4 tensor(s)",
};

/* argv: train --data D <case> --hidden 32 --batch 50 --seed 5 --epochs 4 <extra...> */
static int train_avg(const char *dir, const char *data, const char *const *c, const char *const *extra) {
    const char *argv[48] = {"train", "--data", data};
    int n = 3;
    for (int i = 0; c[i]; i++) argv[n++] = c[i];
    const char *fixed[] = {"--hidden", "32", "--batch", "50", "--seed", "5", "--epochs", "4"};
    for (int i = 0; i < 8; i++) argv[n++] = fixed[i];
    while (*extra) argv[n++] = *extra++;
    argv[n] = NULL;
    return nabla_cli(dir, argv);
}

/* The value printed after key in the line of text that contains line. */
static double value_after(const char *text, const char *line, const char *key) {
    const char *l = strstr(text, line), *k = l ? strstr(l, key) : NULL;
    ck_assert_msg(k != NULL, "no '%s' ... '%s' in: %s", line, key, text);
    return strtod(k + strlen(key), NULL);
}

START_TEST(test_cli_averaged) {
    const char *dir = temp_dir();
    char data[4000], a[4200], b[4200], c[4200];
    snprintf(data, sizeof data, "%s", dir);
    make_mnist(data);
    snprintf(a, sizeof a, "%s/a.ckpt", dir);
    snprintf(b, sizeof b, "%s/b.ckpt", dir);
    snprintf(c, sizeof c, "%s/c.ckpt", dir);
    const char *const *k = cli_avg_cases[_i];
    bool swalr = _i == 0;
    ck_assert_msg(train_avg(dir, data, k, (const char *[]){"--save", a, NULL}) == 0, "%s", cli_output(dir));
    char *out = cli_output(dir);
    double final_loss = value_after(out, "epoch 4/4", "test_loss ");
    ck_assert_msg(strstr(out, "test metrics use the averaged weights"), "%s", out);
    free(out);
    /* stopped after epoch 3, resumed in a new process from the file alone */
    ck_assert_msg(train_avg(dir, data, k, (const char *[]){"--stop-after", "3", "--save", b, NULL}) == 0, "%s", cli_output(dir));
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "4", "--resume", b, "--save", b, NULL}) == 0,
                  "%s", cli_output(dir));
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "averaging resumed: ") && strstr(out, "epoch 4/4") && !strstr(out, "epoch 3/4"), "%s", out);
    ck_assert_msg(!swalr || strstr(out, "SWALR drives the lr"), "%s", out);
    free(out);
    ck_assert_msg(same_file(a, b), "case %d: resumed after epoch 3, the checkpoint differs from the uninterrupted run's", _i);
    /* stopped after 1 (before any averaging), then after 3, then to the end */
    ck_assert_msg(train_avg(dir, data, k, (const char *[]){"--stop-after", "1", "--save", c, NULL}) == 0, "%s", cli_output(dir));
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "4", "--resume", c, "--save", c, "--stop-after", "3", NULL}) == 0,
                  "%s", cli_output(dir));
    ck_assert_msg(nabla_cli(dir, (const char *[]){"train", "--data", data, "--epochs", "4", "--resume", c, "--save", c, NULL}) == 0,
                  "%s", cli_output(dir));
    ck_assert_msg(same_file(a, c), "case %d: resumed after epochs 1 and 3, the checkpoint differs", _i);
    /* eval uses the averaged weights, and says so: the loss nabla train printed last */
    ck_assert_msg(nabla_cli(dir, (const char *[]){"eval", "--data", data, "--load", b, NULL}) == 0, "%s", cli_output(dir));
    out = cli_output(dir);
    char want[256];
    snprintf(want, sizeof want, "weights: the averaged ones (%s)", cli_avg_desc[_i]);
    ck_assert_msg(strstr(out, want), "%s", out);
    char l4[32], le[32];
    snprintf(l4, sizeof l4, "%.4f", final_loss);
    snprintf(le, sizeof le, "%.4f", value_after(out, "test_loss", "test_loss "));
    ck_assert_msg(!strcmp(l4, le), "eval's test loss %s, nabla train printed %s", le, l4);
    free(out);
    ck_assert_msg(nabla_cli(dir, (const char *[]){"eval", "--data", data, "--load", b, "--weights", "model", NULL}) == 0, "%s", cli_output(dir));
    out = cli_output(dir);
    ck_assert_msg(strstr(out, "weights: the model's, not its averaged ones"), "%s", out);
    free(out);
    ck_assert_int_eq(nabla_cli(dir, (const char *[]){"eval", "--data", data, "--load", b, "--weights", "best", NULL}), 2);
    /* inspect shows the averaging, its tensors and SWALR */
    ck_assert_int_eq(nabla_cli(dir, (const char *[]){"ckpt", "inspect", b, NULL}), 0);
    out = cli_output(dir);
    snprintf(want, sizeof want, "averaged: %s, tensors \"swa.<name>\"", cli_avg_desc[_i]);
    ck_assert_msg(strstr(out, want) && strstr(out, "swa.0.weight") && strstr(out, "swa.2.bias"), "%s", out);
    ck_assert_msg(!swalr == !strstr(out, "swa_scheduler: {\"type\":\"SWALR\""), "%s", out);
    free(out);
    /* a resume with other averaging is refused by name, and the file stays as it was */
    const char *bad[16] = {"train", "--data", data, "--epochs", "5", "--resume", b, "--save", b};
    for (int i = 0; cli_avg_other[_i][i]; i++) bad[9 + i] = cli_avg_other[_i][i];
    ck_assert_int_eq(nabla_cli(dir, bad), _i == 0 ? 2 : 1);
    out = cli_output(dir);
    ck_assert_msg(strstr(out, cli_avg_refusal[_i]), "%s", out);
    free(out);
    ck_assert(same_file(a, b));
    remove_dir(dir);
}
END_TEST

/* ---- optimizer state_dicts that PyTorch wrote (tools/golden/gen_optim_sd.py) -------------------
 * PyTorch 1.13's own (v1_13/) and with the keys of PyTorch 2.x (v2/), converted to checkpoints by
 * tools/convert_torch.py: each loads into a model and an optimizer built by class name, and the
 * optimizer then continues as PyTorch 1.13 did. */
static const char *const sd_classes[] = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax",
                                         "NAdam", "RAdam", "ASGD", "Rprop", "LBFGS", "Adafactor"};

typedef struct sd_run {
    nb_optim *o;
    nb_tensor *p[2];
    const float *c[2];
    nb_tensor *g[2];
} sd_run;

/* g = (p*p - 0.5)*p + c, float32 op by op as the generator; returns sum(p^4/4 - p^2/4 + c p) of
 * the float32 terms, summed in double (LBFGS's loss) */
static double sd_closure(void *user) {
    sd_run *r = user;
    nb_optim_zero_grad(r->o, true);
    double loss = 0;
    for (int i = 0; i < 2; i++) {
        const float *x = nb_f32(r->p[i]);
        float *g = nb_f32(r->g[i]);
        for (int64_t j = 0; j < r->p[i]->numel; j++) {
            float q = x[j] * x[j];
            g[j] = (q - 0.5f) * x[j] + r->c[i][j];
            loss += (double)(q * q / 4 - q / 4 + r->c[i][j] * x[j]);
        }
        if (nb_backward_grad(r->p[i], r->g[i])) return NAN;
    }
    return loss;
}

START_TEST(test_torch_optim_state_dicts) {
    golden *gold = golden_load("optim_sd.nbg.gz");
    int after = ((const int32_t *)golden_get(gold, "after")->data)[0];
    double worst = 0;
    for (int v = 0; v < 2; v++)
        for (size_t k = 0; k < sizeof sd_classes / sizeof sd_classes[0]; k++) {
            const char *name = sd_classes[k];
            if (v == 0 && !strcmp(name, "Adafactor")) continue; /* not in PyTorch 1.13 */
            char path[4200], key[96];
            snprintf(path, sizeof path, "%s/tests/golden/torch_optim/%s/%s.ckpt", NB_SOURCE_DIR,
                     v ? "v2" : "v1_13", name);
            nb_rng rng;
            nb_rng_seed(&rng, 1);
            nb_module *m = nb_linear_new(4, 3, true, &rng);
            sd_run r;
            ck_assert_int_eq(nb_module_parameters(m, r.p, 2), 2);
            r.o = nb_optim_new(name, r.p, 2, NULL, 0);
            ck_assert_msg(r.o, "%s: %s", name, nb_last_error());
            nb_train_state st = {.model = m, .optim = r.o};
            ck_assert_msg(nb_checkpoint_load(path, &st) == NB_OK, "%s: %s", path, nb_last_error());
            for (int i = 0; i < 2; i++) {
                snprintf(key, sizeof key, "%s.c.%s", name, i ? "bias" : "weight");
                r.c[i] = golden_get(gold, key)->data;
                r.g[i] = nb_zeros(NULL, r.p[i]->ndim, r.p[i]->shape);
            }
            for (int t = 0; t < after; t++) {
                int rc = nb_optim_requires_closure(r.o) ? nb_optim_step_closure(r.o, sd_closure, &r, NULL)
                                                        : (sd_closure(&r), nb_optim_step(r.o));
                ck_assert_msg(rc == NB_OK, "%s: %s", name, nb_last_error());
                for (int i = 0; i < 2; i++) {
                    snprintf(key, sizeof key, "%s.after%d.%s", name, t, i ? "bias" : "weight");
                    const gold_entry *e = golden_get(gold, key);
                    double err = max_rel_err(nb_f32(r.p[i]), e->data, e->numel, 1e-3, NULL);
                    if (err > worst) worst = err;
                    char what[128];
                    snprintf(what, sizeof what, "%s (%s) step %d %s", name, v ? "2.x" : "1.13", t + 1, key);
                    assert_close(what, nb_f32(r.p[i]), e->data, e->numel, 1e-5, 1e-7);
                }
            }
            for (int i = 0; i < 2; i++) nb_tensor_free(r.g[i]);
            nb_optim_free(r.o);
            nb_module_free(m);
        }
    fprintf(stderr, "PyTorch 1.13 and 2.x optimizer state_dicts: continued runs, max rel err %.2g\n", worst);
    /* a key that no PyTorch has is refused by name, and nothing changes */
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = nb_linear_new(4, 3, true, &rng);
    nb_tensor *p[2];
    nb_module_parameters(m, p, 2);
    nb_optim *o = nb_optim_new("Adam", p, 2, NULL, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/golden/torch_optim/v2/Adam_unknown.ckpt", NB_SOURCE_DIR);
    nb_train_state st = {.model = m, .optim = o};
    ck_assert_int_ne(nb_checkpoint_load(path, &st), NB_OK);
    ck_assert_str_eq(nb_last_error(), "checkpoint: loaded state dict: param group 0 has keys that Adam does not know: 'lookahead'");
    ck_assert_double_eq(nb_optim_get(o, 0, "lr"), 1e-3);
    nb_optim_free(o);
    nb_module_free(m);
    golden_free(gold);
}
END_TEST

/* ---- PyTorch interop: a model trained in PyTorch, converted by tools/convert_torch.py ------ */
START_TEST(test_torch_interop) {
    golden *g = golden_load("ckpt_interop.nbg.gz");
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_sequential(3, (nb_module *[]){nb_linear_new(784, 32, true, &rng), nb_relu_new(),
                                                     nb_linear_new(32, 10, true, &rng)});
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/golden/torch_mlp.nbw", NB_SOURCE_DIR);
    ck_assert_msg(nb_weights_load(path, m) == NB_OK, "%s", nb_last_error());
    nb_ckpt *c = nb_ckpt_open(path);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(nb_ckpt_meta(c, "content"), "weights");
    nb_ckpt_close(c);
    nb_arena *ar = nb_arena_new(0);
    const gold_entry *xe = golden_get(g, "x"), *le = golden_get(g, "logits");
    nb_tensor *x = nb_from_array(ar, NB_FLOAT32, xe->ndim, xe->shape, xe->data);
    nb_tensor *logits = nb_forward(m, ar, x);
    ck_assert_ptr_nonnull(logits);
    double worst = max_rel_err(nb_f32(logits), le->data, le->numel, 1.0, NULL);
    fprintf(stderr, "torch -> nabla logits: max |diff|/max(1,|logit|) %.2g\n", worst);
    ck_assert_msg(worst <= 1e-5, "logits differ from PyTorch's: %.3g", worst);
    /* a model of another width is refused by name and shape */
    nb_module *m2 = nb_sequential(3, (nb_module *[]){nb_linear_new(784, 33, true, &rng), nb_relu_new(),
                                                      nb_linear_new(33, 10, true, &rng)});
    ck_assert_int_eq(nb_weights_load(path, m2), NB_ESHAPE);
    ck_assert_str_eq(nb_last_error(), "checkpoint: tensor \"0.weight\" has shape [32,784], model expects [33,784]");
    nb_module_free(m2);
    nb_arena_free(ar);
    nb_module_free(m);
    golden_free(g);
}
END_TEST

/* Parts: the caller's named tensors (here normalisation statistics) are saved as
 * "<part>.<tensor>", listed in "parts", and loaded with the rest (all or nothing); a model-only
 * load ignores them. */
START_TEST(test_parts) {
    const char *dir = temp_dir();
    char *file = path_in(dir, "parts.ckpt"), *plain = path_in(dir, "plain.ckpt");
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_module *m = nb_linear_new(4, 2, true, &rng);
    nb_tensor *mean = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){4}, (float[]){1, 2, 3, 4});
    nb_tensor *std = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){4}, (float[]){0.5f, 1, 2, 4});
    nb_named_tensor nt[2] = {{"mean", mean}, {"std", std}};
    nb_ckpt_part part = {"normalize", nt, 2};
    nb_train_state st = {.model = m, .rng = &rng, .parts = &part, .nparts = 1};
    ck_assert_msg(nb_checkpoint_save(file, &st) == NB_OK, "%s", nb_last_error());
    nb_train_state pl = {.model = m, .rng = &rng};
    ck_assert_int_eq(nb_checkpoint_save(plain, &pl), NB_OK);
    nb_ckpt *c = nb_ckpt_open(file);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(nb_ckpt_meta(c, "parts"), "{\"normalize\":[\"mean\",\"std\"]}");
    nb_ckpt_tensor t;
    ck_assert_int_eq(nb_ckpt_find(c, "normalize.std", &t), NB_OK);
    ck_assert_str_eq(t.dtype, "F32");
    nb_ckpt_close(c);
    /* load into other tensors: the values come back */
    nb_tensor *m2 = nb_zeros(NULL, 1, (int64_t[]){4}), *s2 = nb_zeros(NULL, 1, (int64_t[]){4});
    nb_named_tensor nt2[2] = {{"std", s2}, {"mean", m2}}; /* any order */
    nb_ckpt_part part2 = {"normalize", nt2, 2};
    nb_train_state ld = {.model = m, .parts = &part2, .nparts = 1};
    ck_assert_msg(nb_checkpoint_load(file, &ld) == NB_OK, "%s", nb_last_error());
    ck_assert_mem_eq(m2->data, mean->data, 16);
    ck_assert_mem_eq(s2->data, std->data, 16);
    ck_assert_int_eq(nb_weights_load(file, m), NB_OK); /* the part is not taken for model tensors */
    /* a file without the part, a part of another shape: refused, nothing changed */
    nb_fill(m2, 9);
    ck_assert_int_eq(nb_checkpoint_load(plain, &ld), NB_EFORMAT);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the file has no parts state (metadata \"parts\" is missing)");
    nb_tensor *s3 = nb_zeros(NULL, 1, (int64_t[]){5});
    nb_named_tensor nt3[2] = {{"mean", m2}, {"std", s3}};
    nb_ckpt_part part3 = {"normalize", nt3, 2};
    ld.parts = &part3;
    ck_assert_int_eq(nb_checkpoint_load(file, &ld), NB_ESHAPE);
    ck_assert_str_eq(nb_last_error(), "checkpoint: tensor \"normalize.std\" has shape [4], part \"normalize\" expects [5]");
    ck_assert_float_eq(nb_f32(m2)[0], 9); /* all or nothing */
    nb_ckpt_part other = {"other", nt2, 2};
    ld.parts = &other;
    ck_assert_int_eq(nb_checkpoint_load(file, &ld), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the file has no part \"other\"");
    nb_ckpt_part one = {"normalize", nt2, 1};
    ld.parts = &one;
    ck_assert_int_eq(nb_checkpoint_load(file, &ld), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: part \"normalize\" has 2 tensors in the file, 1 live");
    /* bad parts are refused at save */
    nb_ckpt_part bad[] = {{"optimizer", nt, 2}, {"a.b", nt, 2}, {"normalize", (nb_named_tensor[]){{"mean", mean},
                                                                                                 {"mean", std}}, 2}};
    const char *why[] = {"part name \"optimizer\" is reserved", "part 0: a name of letters", "has two tensors \"mean\""};
    for (int i = 0; i < 3; i++) {
        nb_train_state b = {.model = m, .parts = &bad[i], .nparts = 1};
        ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "bad.ckpt"), &b), NB_EINVAL);
        ck_assert_msg(strstr(nb_last_error(), why[i]), "%s", nb_last_error());
    }
    nb_ckpt_part clash = {"weight", nt, 2}; /* Linear has "weight": "weight.mean" is fine, but... */
    nb_train_state b = {.model = m, .parts = &clash, .nparts = 1};
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "ok.ckpt"), &b), NB_OK);
    nb_module *seq = nb_sequential(1, (nb_module *[]){nb_linear_new(4, 2, true, &rng)});
    nb_ckpt_part zero = {"0", nt, 2}; /* ...a Sequential's "0.weight" lies under part "0" */
    b = (nb_train_state){.model = seq, .parts = &zero, .nparts = 1};
    ck_assert_int_eq(nb_checkpoint_save(path_in(dir, "clash.ckpt"), &b), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: model tensor \"0.weight\" clashes with the tensors of part \"0\"");
    nb_module_free(seq);
    nb_tensor_free(s3);
    nb_tensor_free(m2);
    nb_tensor_free(s2);
    nb_tensor_free(mean);
    nb_tensor_free(std);
    nb_module_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("io");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_resume_epoch_boundary, 0, NOPT * NSCHED);
    tcase_add_loop_test(tc, test_resume_mid_epoch, 0, NOPT * NSCHED);
    tcase_add_loop_test(tc, test_resume_averaged, 0, NOPT * 2 * 3);
    tcase_add_loop_test(tc, test_roundtrip_bytes, 0, NOPT * NSCHED * NAVG);
    tcase_add_test(tc, test_weights);
    tcase_add_loop_test(tc, test_truncated, 0, NOPT * NAVG);
    tcase_add_loop_test(tc, test_flipped, 0, NOPT * NAVG);
    tcase_add_loop_test(tc, test_header_edits, 0, NOPT * NAVG);
    tcase_add_loop_test(tc, test_averaged_edits, 0, NOPT * 2);
    tcase_add_test(tc, test_averaged_api);
    tcase_add_test(tc, test_v1_file);
    tcase_add_test(tc, test_parts);
    tcase_add_test(tc, test_kill_during_save);
    tcase_add_test(tc, test_stale_temps_removed);
    tcase_add_test(tc, test_temp_name_of_reused_pid);
    tcase_add_test(tc, test_torch_interop);
    tcase_add_test(tc, test_torch_optim_state_dicts);
    tcase_add_test(tc, test_cli_resume_crafted_flags);
    tcase_add_test(tc, test_loaded_values);
    tcase_add_test(tc, test_cli_resume_onecycle_longer);
    tcase_add_loop_test(tc, test_cli_resume, 0, (int)(sizeof cli_cases / sizeof cli_cases[0]));
    tcase_add_loop_test(tc, test_cli_averaged, 0, (int)(sizeof cli_avg_cases / sizeof cli_avg_cases[0]));
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
