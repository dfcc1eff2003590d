/* split.c - a training step's forward and backward in parts of the batch, on nabla's pool.
 *
 * A batch of B rows is cut into `parts` slices of consecutive rows (part p: rows
 * [B p / parts, B (p + 1) / parts)). Each part runs the model's forward, the loss (summed over
 * its rows) and the backward from the seed 1/B in its own arena, with nabla's threads taking
 * one part each: one fork and one join per step instead of one per op, which is what lets a
 * second core pay off on the small products of a batch of 64 (a per-GEMM split hands each core
 * 32 columns and a barrier every few microseconds).
 *
 * Gradients: part 0 writes the parameters' gradients as a plain backward would (nb__grad, with
 * its beta); every other part writes a private copy of the gradient slab (a thread-local
 * redirect of nb__grad, src/autograd/engine.c), so no two threads write the same memory and the
 * parameters' tensors are only touched by part 0. After the join the private copies are added
 * in part order. Each gradient element is therefore ((g + part 0) + part 1) + ..., the same
 * whatever thread ran which part: the result depends on `parts`, never on the thread count.
 *
 * The model must not couple the rows of a batch or draw random numbers in its forward:
 * nb_batch_split_new refuses batch norm, dropout and recurrent layers with dropout. */
#include <stdio.h>
#include "nn_internal.h"
#include "../kernels/kernels.h"

struct nb_batch_split {
    nb_module *model;
    int parts;
    nb_arena **arenas;  /* one per part */
    float *priv;        /* parts - 1 private gradient slabs (part p >= 1: slab p - 1) */
    uint8_t *written;   /* parts - 1 flag arrays, one flag per 16 floats of the slab */
    int64_t units;      /* flags per part */
    int np;             /* parameters */
    nb_tensor **params;
    int64_t *start;     /* prefix sums of the parameters' numel (np + 1) */
};

bool nb__rnn_draws_random(const nb_module *m); /* src/nn/rnn.c */

/* Batch norm couples rows, dropout draws from a shared generator: not splittable. */
static const char *unsplittable(const nb_module *m) {
    static const char *const types[] = {"BatchNorm1d", "BatchNorm2d", "Dropout", "Dropout2d"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(m->ops->type, types[i])) return m->ops->type;
    if (nb__rnn_draws_random(m)) return "a recurrent layer with dropout";
    for (int i = 0; i < m->nchildren; i++) {
        const char *c = unsplittable(m->children[i]);
        if (c) return c;
    }
    return NULL;
}

nb_batch_split *nb_batch_split_new(nb_module *model, int parts) {
    if (!model) return nb__null(NB_EINVAL, "batch_split_new: model is NULL");
    if (parts < 1 || parts > 64) return nb__null(NB_EINVAL, "batch_split_new: parts must be 1..64, got %d", parts);
    if (model->parent) return nb__null(NB_EINVAL, "batch_split_new: model must be the root of its tree");
    const char *bad = unsplittable(model);
    if (bad)
        return nb__null(NB_EINVAL, "batch_split_new: the model has %s, which couples the rows of a batch or "
                        "draws random numbers: it cannot run in parts", bad);
    nb_batch_split *s = nb__calloc(1, sizeof *s);
    if (!s) return NULL;
    s->model = model;
    s->parts = parts;
    s->units = (model->internal.slab_numel + 15) / 16;
    s->np = nb_module_num_params(model);
    s->arenas = nb__calloc((size_t)parts, sizeof *s->arenas);
    s->params = nb__calloc((size_t)s->np + 1, sizeof *s->params);
    s->start = nb__calloc((size_t)s->np + 1, sizeof *s->start);
    s->priv = parts > 1 ? nb__malloc_aligned(sizeof(float) * (size_t)((parts - 1) * s->units * 16 + 16)) : NULL;
    s->written = parts > 1 ? nb__calloc((size_t)((parts - 1) * s->units + 1), 1) : NULL;
    bool ok = s->arenas && s->params && s->start && (parts == 1 || (s->priv && s->written));
    for (int p = 0; ok && p < parts; p++) ok = (s->arenas[p] = nb_arena_new(0)) != NULL;
    if (!ok) {
        nb_batch_split_free(s);
        return NULL;
    }
    for (int i = 0; i < s->np; i++) {
        nb_tensor *t = s->params[i] = nb_module_param(model, i).tensor;
        s->start[i + 1] = s->start[i] + t->numel;
        const float *g = t->internal.grad_slot ? nb_f32(t->internal.grad_slot) : NULL;
        if (!g || g < model->internal.grad_slab || g + t->numel > model->internal.grad_slab + model->internal.slab_numel) {
            nb_batch_split_free(s);
            return nb__null(NB_EINVAL, "batch_split_new: parameter \"%s\" is not in the model's gradient "
                            "slab (nb_module_pack)", nb_module_param(model, i).name);
        }
    }
    return s;
}

void nb_batch_split_free(nb_batch_split *s) {
    if (!s) return;
    for (int p = 0; s->arenas && p < s->parts; p++) nb_arena_free(s->arenas[p]);
    nb__free(s->arenas);
    nb__free_aligned(s->priv);
    nb__free(s->written);
    nb__free(s->params);
    nb__free(s->start);
    nb__free(s);
}

typedef struct step_job {
    nb_batch_split *s;
    nb_tensor *x, *target;
    nb_batch_loss_fn loss;
    void *user;
    float seed;       /* 1 / B */
    nb_dtype autocast;
    bool grad;        /* the caller's grad mode */
    double *losses;   /* per part */
    nb_status *rc;    /* per part */
    char (*err)[256]; /* per part */
} step_job;

/* Rows [b0, b1) of t (a view in ar). */
static nb_tensor *rows(nb_arena *ar, nb_tensor *t, int64_t b0, int64_t b1) {
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = b1 - b0;
    int64_t row = t->shape[0] ? t->numel / t->shape[0] : 0;
    return nb__alias(ar, t, t->ndim, shape, (char *)t->data + (size_t)(b0 * row) * nb_dtype_size(t->dtype));
}

static void run_part(step_job *j, int p) {
    nb_batch_split *s = j->s;
    int64_t B = j->x->shape[0], b0 = B * p / s->parts, b1 = B * (p + 1) / s->parts;
    nb_arena *ar = s->arenas[p];
    nb_arena_reset(ar);
    nb_arena_set_autocast(ar, j->autocast);
    j->losses[p] = 0;
    j->rc[p] = NB_OK;
    if (b0 == b1) return;
    nb__grad_redirect r = {s->model->internal.grad_slab, s->units * 16, NULL, NULL};
    if (p > 0) {
        r.priv = s->priv + (p - 1) * s->units * 16;
        r.written = s->written + (p - 1) * s->units;
        memset(r.written, 0, (size_t)s->units);
    }
    nb__grad_redirect *prev = nb__set_grad_redirect(p > 0 ? &r : NULL);
    bool mode = nb_set_grad_enabled(j->grad);
    nb_tensor *xs = rows(ar, j->x, b0, b1), *ts = rows(ar, j->target, b0, b1);
    nb_tensor *l = j->loss(ar, nb_forward(s->model, ar, xs), ts, j->user);
    int rc;
    if (!l) rc = nb_last_status() ? nb_last_status() : NB_EINVAL;
    else if (l->numel != 1)
        rc = nb__error(NB_EINVAL, "batch_split_step: the loss must be one number, got shape %s",
                       nb__shape(l, 0));
    else rc = nb_backward_grad(l, nb_scalar(ar, j->seed));
    if (rc == NB_OK) j->losses[p] = nb_item(l);
    else snprintf(j->err[p], sizeof j->err[p], "%s", nb_last_error());
    j->rc[p] = (nb_status)rc;
    nb_set_grad_enabled(mode);
    nb__set_grad_redirect(prev);
}

static void parts_job(void *ctx, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) run_part(ctx, (int)p);
}

/* The gradients of parts 1.. added in part order to the parameters' (elements [b, e) of all
 * parameters taken end to end). */
typedef struct sum_job {
    nb_batch_split *s;
} sum_job;

static void sum_part(void *ctx, int64_t b, int64_t e) {
    nb_batch_split *s = ((sum_job *)ctx)->s;
    const float *slab = s->model->internal.grad_slab;
    for (int i = 0; i < s->np; i++) {
        int64_t lo = b > s->start[i] ? b : s->start[i], hi = e < s->start[i + 1] ? e : s->start[i + 1];
        if (lo >= hi) continue;
        nb_tensor *t = s->params[i];
        int64_t off = nb_f32(t->internal.grad_slot) - slab, k0 = lo - s->start[i], n = hi - lo;
        float *g = nb_f32(t->internal.grad_slot) + k0;
        for (int p = 1; p < s->parts; p++) {
            if (!s->written[(p - 1) * s->units + off / 16]) continue;
            const float *q = s->priv + (p - 1) * s->units * 16 + off + k0;
            nb_k_acc(g, q, n, 1.0f);
        }
    }
}

int nb_batch_split_step(nb_batch_split *s, nb_arena *ar, nb_tensor *x, nb_tensor *target,
                        nb_batch_loss_fn loss, void *user, double *mean_loss) {
    if (!s || !x || !target || !loss)
        return nb__error(NB_EINVAL, "batch_split_step: %s is NULL", !s ? "split" : !x ? "x" : !target ? "target" : "loss");
    if (x->ndim < 1 || target->ndim < 1 || x->shape[0] != target->shape[0] || x->shape[0] < 1)
        return nb__error(NB_ESHAPE, "batch_split_step: x %s and target %s must have the same number of rows "
                         "(at least one)", nb__shape(x, 0), nb__shape(target, 1));
    int P = s->parts;
    double losses[64];
    nb_status rc[64];
    char err[64][256];
    step_job j = {s, x, target, loss, user, (float)(1.0 / (double)x->shape[0]),
                  nb_arena_autocast(ar), nb_is_grad_enabled(), losses, rc, err};
    nb__parallel_for(P, 1, parts_job, &j);
    for (int p = 0; p < P; p++)
        if (rc[p] != NB_OK) return nb__error(rc[p], "%s", err[p]);
    /* parameters that part 0 did not reach but a later part did start from zero */
    for (int i = 0; i < s->np && P > 1; i++) {
        nb_tensor *t = s->params[i];
        int64_t off = nb_f32(t->internal.grad_slot) - s->model->internal.grad_slab;
        bool any = false;
        for (int p = 1; p < P; p++) any = any || s->written[(p - 1) * s->units + off / 16];
        if (any && !t->grad) {
            memset(t->internal.grad_slot->data, 0, sizeof(float) * (size_t)t->numel);
            t->grad = t->internal.grad_slot;
        }
    }
    if (P > 1) {
        int64_t total = s->start[s->np];
        nb__parallel_for(total, 1 << 14, sum_part, &(sum_job){s});
    }
    double sum = 0;
    for (int p = 0; p < P; p++) sum += losses[p];
    if (mean_loss) *mean_loss = sum / (double)x->shape[0];
    return NB_OK;
}
