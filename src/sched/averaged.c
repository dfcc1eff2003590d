/* averaged.c - an averaged copy of a list of tensors: torch.optim.swa_utils.AveragedModel over
 * model.parameters() (add the buffers for use_buffers=True), with the averaging functions of
 * PyTorch 2.x's swa_utils. Works on plain tensors, so optim/sched never depend on nn.
 *   first update:  avg = p
 *   SWA:           avg = avg + (p - avg) / (n_averaged + 1)          (get_swa_avg_fn, float32)
 *   EMA:           avg = lerp(avg, p, 1 - decay)                     (get_ema_multi_avg_fn)
 *                  lerp(a, b, w) = |w| < 0.5 ? a + w (b - a) : b + (w - 1) (b - a), one fmaf
 *   custom:        fn(avg, p, numel, n_averaged, user) */
#include <math.h>
#include "scheduler.h"

struct nb_averaged {
    nb_averaged_opts o;
    int n;
    nb_tensor **t;
    int64_t count;
};

nb_averaged_opts nb_averaged_defaults(void) {
    return (nb_averaged_opts){.kind = NB_AVG_SWA, .decay = 0.999, .fn = NULL, .user = NULL};
}

static int check_params(const nb_averaged *a, nb_tensor *const *params, int n) {
    if (!params || n <= 0)
        return nb__error(NB_EINVAL, "averaged: expected a non-empty list of tensors, got %d%s", n,
                         params ? "" : " (params is NULL)");
    if (a && n != a->n)
        return nb__error(NB_EINVAL, "averaged: got %d tensors, the averaged copy has %d", n, a->n);
    for (int i = 0; i < n; i++) {
        if (!params[i]) return nb__error(NB_EINVAL, "averaged: tensor %d is NULL", i);
        if (params[i]->dtype != NB_FLOAT32)
            return nb__error(NB_EINVAL, "averaged: tensor %d must be float32, got %s", i,
                             nb__dtype_name(params[i]->dtype));
        if (a && (params[i]->ndim != a->t[i]->ndim ||
                  memcmp(params[i]->shape, a->t[i]->shape, sizeof(int64_t) * (size_t)params[i]->ndim)))
            return nb__error(NB_ESHAPE, "averaged: tensor %d has shape %s, the averaged copy has %s", i,
                             nb__shape(params[i], 0), nb__shape(a->t[i], 1));
    }
    return NB_OK;
}

nb_averaged *nb_averaged_new(nb_tensor *const *params, int n, const nb_averaged_opts *opts) {
    nb_averaged_opts o = opts ? *opts : nb_averaged_defaults();
    if (check_params(NULL, params, n)) return NULL;
    if (o.kind == NB_AVG_EMA && !(o.decay >= 0.0 && o.decay <= 1.0))
        return nb__null(NB_EINVAL, "Invalid decay value %s provided. Please provide a value in [0,1] range.",
                        nb__pyfloat(o.decay, 0));
    if (o.kind == NB_AVG_CUSTOM && !o.fn) return nb__null(NB_EINVAL, "averaged: custom averaging needs a function");
    if (o.kind != NB_AVG_SWA && o.kind != NB_AVG_EMA && o.kind != NB_AVG_CUSTOM)
        return nb__null(NB_EINVAL, "averaged: unknown averaging kind %d", (int)o.kind);
    nb_averaged *a = nb__calloc(1, sizeof *a);
    if (!a || !(a->t = nb__calloc((size_t)n, sizeof *a->t))) {
        nb__free(a);
        return NULL;
    }
    a->o = o;
    a->n = n;
    for (int i = 0; i < n; i++)
        if (!(a->t[i] = nb_clone(NULL, params[i]))) {
            nb_averaged_free(a);
            return NULL;
        }
    return a;
}

static void swa_update(float *restrict avg, const float *restrict p, int64_t numel, int64_t count) {
    float d = (float)(count + 1);
    for (int64_t i = 0; i < numel; i++) avg[i] = avg[i] + (p[i] - avg[i]) / d;
}

/* ATen's CPU lerp: one fused multiply-add from the nearer end. */
NB_FMA_CLONES
static void ema_update(float *restrict avg, const float *restrict p, int64_t numel, float w) {
    if (fabsf(w) < 0.5f) {
        for (int64_t i = 0; i < numel; i++) avg[i] = fmaf(w, p[i] - avg[i], avg[i]);
    } else {
        float wm1 = w - 1.0f;
        for (int64_t i = 0; i < numel; i++) avg[i] = fmaf(wm1, p[i] - avg[i], p[i]);
    }
}

int nb_averaged_update(nb_averaged *a, nb_tensor *const *params, int n) {
    if (!a) return nb__error(NB_EINVAL, "averaged_update: the averaged copy is NULL");
    int rc = check_params(a, params, n);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        float *avg = nb_f32(a->t[i]);
        const float *p = nb_f32(params[i]);
        int64_t m = params[i]->numel;
        if (a->count == 0) memcpy(avg, p, sizeof(float) * (size_t)m);
        else if (a->o.kind == NB_AVG_SWA) swa_update(avg, p, m, a->count);
        else if (a->o.kind == NB_AVG_EMA) ema_update(avg, p, m, (float)(1.0 - a->o.decay));
        else a->o.fn(avg, p, m, a->count, a->o.user);
    }
    a->count++;
    return NB_OK;
}

int64_t nb_averaged_count(const nb_averaged *a) { return a ? a->count : 0; }

int nb_averaged_set_count(nb_averaged *a, int64_t n_averaged) {
    if (!a) return nb__error(NB_EINVAL, "averaged_set_count: the averaged copy is NULL");
    if (n_averaged < 0)
        return nb__error(NB_EINVAL, "averaged_set_count: n_averaged must be >= 0, got %lld",
                         (long long)n_averaged);
    a->count = n_averaged;
    return NB_OK;
}

int nb_averaged_num(const nb_averaged *a) { return a ? a->n : 0; }
nb_tensor *nb_averaged_tensor(const nb_averaged *a, int i) { return a && i >= 0 && i < a->n ? a->t[i] : NULL; }

int nb_averaged_swap(nb_averaged *a, nb_tensor *const *params, int n) {
    if (!a) return nb__error(NB_EINVAL, "averaged_swap: the averaged copy is NULL");
    int rc = check_params(a, params, n);
    for (int i = 0; !rc && i < n; i++) {
        float *x = nb_f32(a->t[i]), *y = nb_f32(params[i]);
        for (int64_t j = 0; j < params[i]->numel; j++) {
            float t = x[j];
            x[j] = y[j];
            y[j] = t;
        }
    }
    return rc;
}

int nb_averaged_copy_to(const nb_averaged *a, nb_tensor *const *params, int n) {
    if (!a) return nb__error(NB_EINVAL, "averaged_copy_to: the averaged copy is NULL");
    int rc = check_params(a, params, n);
    for (int i = 0; !rc && i < n; i++)
        memcpy(nb_f32(params[i]), nb_f32(a->t[i]), sizeof(float) * (size_t)params[i]->numel);
    return rc;
}

/* ---- state_dict --------------------------------------------------------------------------- */
static const char *kind_name(nb_avg_kind k) { return k == NB_AVG_SWA ? "SWA" : k == NB_AVG_EMA ? "EMA" : "custom"; }

void nb_averaged_dict_free(nb_averaged_dict *sd) {
    if (!sd) return;
    for (int i = 0; i < sd->n && sd->tensors; i++) nb_tensor_free(sd->tensors[i]);
    nb__free(sd->tensors);
    nb__free(sd);
}

nb_averaged_dict *nb_averaged_state_dict(const nb_averaged *a) {
    if (!a) return nb__null(NB_EINVAL, "averaged_state_dict: the averaged copy is NULL");
    nb_averaged_dict *sd = nb__calloc(1, sizeof *sd);
    if (!sd || !(sd->tensors = nb__calloc((size_t)a->n, sizeof *sd->tensors))) {
        nb__free(sd);
        return NULL;
    }
    sd->kind = a->o.kind;
    sd->decay = a->o.kind == NB_AVG_EMA ? a->o.decay : NAN;
    sd->n_averaged = a->count;
    sd->n = a->n;
    for (int i = 0; i < a->n; i++)
        if (!(sd->tensors[i] = nb_clone(NULL, a->t[i]))) {
            nb_averaged_dict_free(sd);
            return NULL;
        }
    return sd;
}

int nb_averaged_load_state_dict(nb_averaged *a, const nb_averaged_dict *sd) {
    if (!a || !sd)
        return nb__error(NB_EINVAL, "averaged_load_state_dict: the %s is NULL", a ? "state dict" : "averaged copy");
    if (sd->kind != a->o.kind)
        return nb__error(NB_EINVAL, "averaged: the state is for %s averaging, this averaged copy does %s",
                         kind_name(sd->kind), kind_name(a->o.kind));
    if (sd->kind == NB_AVG_EMA && !(sd->decay == a->o.decay))
        return nb__error(NB_EINVAL, "averaged: the state is for EMA decay %s, this averaged copy has decay %s",
                         nb__pyfloat(sd->decay, 0), nb__pyfloat(a->o.decay, 1));
    if (sd->n_averaged < 0)
        return nb__error(NB_EINVAL, "averaged: n_averaged must be >= 0, got %lld", (long long)sd->n_averaged);
    if (sd->n != a->n || (sd->n && !sd->tensors))
        return nb__error(NB_EINVAL, "averaged: the state has %d tensors, the averaged copy has %d", sd->n, a->n);
    for (int i = 0; i < a->n; i++) {
        const nb_tensor *t = sd->tensors[i];
        if (!t) return nb__error(NB_EINVAL, "averaged: state tensor %d is NULL", i);
        if (t->dtype != NB_FLOAT32)
            return nb__error(NB_EINVAL, "averaged: state tensor %d must be float32, got %s", i,
                             nb__dtype_name(t->dtype));
        if (!nb_same_shape(t, a->t[i]))
            return nb__error(NB_ESHAPE, "averaged: state tensor %d has shape %s, the averaged copy has %s", i,
                             nb__shape(t, 0), nb__shape(a->t[i], 1));
    }
    for (int i = 0; i < a->n; i++)
        memcpy(nb_f32(a->t[i]), nb_f32(sd->tensors[i]), sizeof(float) * (size_t)a->t[i]->numel);
    a->count = sd->n_averaged;
    return NB_OK;
}

void nb_averaged_free(nb_averaged *a) {
    if (!a) return;
    for (int i = 0; i < a->n; i++) nb_tensor_free(a->t[i]);
    nb__free(a->t);
    nb__free(a);
}
