/* tensor.c - tensor creation, views and small helpers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

size_t nb_dtype_size(nb_dtype dt) {
    switch (dt) {
    case NB_FLOAT32: return 4;
    case NB_INT32: return 4;
    case NB_UINT8: return 1;
    case NB_BF16: return 2;
    }
    return 0;
}

uint16_t nb_float_to_bf16(float f) { return nb__bf16_round(f); }
float nb_bf16_to_float(uint16_t b) { return nb__bf16_float(b); }

int64_t nb__numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int nb__check_shape(const char *op, nb_dtype dt, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > NB_MAX_DIMS)
        return nb__error(NB_EINVAL, "%s: rank %d is outside 0..%d", op, ndim, NB_MAX_DIMS);
    if (ndim > 0 && !shape) return nb__error(NB_EINVAL, "%s: shape is NULL", op);
    if (nb_dtype_size(dt) == 0) return nb__error(NB_EINVAL, "%s: unknown dtype %d", op, (int)dt);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return nb__error(NB_EINVAL, "%s: negative size %lld in dim %d", op,
                             (long long)shape[i], i);
        if (shape[i] && n > (INT64_MAX / 16) / shape[i])
            return nb__error(NB_EINVAL, "%s: shape %s is too large", op, nb__shape_of(ndim, shape, 3));
        n *= shape[i];
    }
    return NB_OK;
}

static nb_tensor *tensor_struct(nb_arena *ar, int ndim, const int64_t *shape) {
    nb_tensor *t = ar ? nb__arena_alloc(ar, sizeof *t) : nb__malloc(sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = nb__numel(ndim, shape);
    t->internal.arena = ar;
    return t;
}

nb_tensor *nb__tensor(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape) {
    if (nb__check_shape("tensor", dt, ndim, shape)) return NULL;
    nb_tensor *t = tensor_struct(ar, ndim, shape);
    if (!t) return NULL;
    t->dtype = dt;
    size_t bytes = (size_t)t->numel * nb_dtype_size(dt);
    if (ar) {
        t->data = nb__arena_alloc(ar, bytes);
        if (!t->data) return NULL;
    } else {
        t->data = nb__malloc_aligned(bytes);
        if (!t->data) {
            nb__free(t);
            return NULL;
        }
        t->flags |= NB_TENSOR_OWNS_DATA;
    }
    return t;
}

nb_tensor *nb__tensor_like(nb_arena *ar, const nb_tensor *t) {
    return nb__tensor(ar, t->dtype, t->ndim, t->shape);
}

#define NO_ARENA "an op was given a NULL arena: ops write their output in an arena (nb_arena_new)"

nb_tensor *nb__out(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape) {
    if (!ar) return nb__null(NB_EINVAL, NO_ARENA);
    return nb__tensor(ar, dt, ndim, shape);
}

nb_tensor *nb__out_like(nb_arena *ar, const nb_tensor *t) {
    if (!ar) return nb__null(NB_EINVAL, NO_ARENA);
    return nb__tensor_like(ar, t);
}

nb_tensor *nb__out_f32(nb_arena *ar, const char *op, const nb_tensor *x) {
    if (nb__check_f32(op, x, "input")) return NULL;
    return nb__out_like(ar, x);
}

nb_tensor *nb__alias(nb_arena *ar, const nb_tensor *t, int ndim, const int64_t *shape, void *data) {
    nb_tensor *v = tensor_struct(ar, ndim, shape);
    if (!v) return NULL;
    v->dtype = t->dtype;
    v->data = data;
    return v;
}

void nb_tensor_free(nb_tensor *t) {
    if (!t || t->internal.arena || (t->flags & NB_TENSOR_SPARSE)) return; /* a sparse grad: its leaf's */
    if (t->internal.owner) { /* its module frees it (and would free it again) */
        nb__error(NB_EINVAL, "tensor_free: the tensor is a parameter or buffer of a module, which "
                  "frees it with nb_module_free");
        return;
    }
    if (t->flags & NB_TENSOR_OWNS_DATA) nb__free_aligned(t->data);
    if ((t->flags & NB_TENSOR_OWNS_GRAD) && t->internal.grad_slot) nb_tensor_free(t->internal.grad_slot);
    if (t->internal.sparse) {
        nb__free(t->internal.sparse->rows);
        nb__free(t->internal.sparse->values);
        nb__free(t->internal.sparse);
    }
    nb__free(t->internal.hook);
    nb__free(t);
}

/* ---- row-sparse gradients ------------------------------------------------------------------ */
int nb__sparse_append(nb_tensor *t, const int32_t *rows, const float *vals, int64_t n, int64_t skip) {
    int64_t dim = t->shape[1];
    nb_sparse *s = t->internal.sparse;
    if (!s) {
        if (!(s = t->internal.sparse = nb__calloc(1, sizeof *s))) return NB_ENOMEM;
        s->grad.dtype = NB_FLOAT32;
        s->grad.ndim = t->ndim;
        memcpy(s->grad.shape, t->shape, sizeof s->grad.shape);
        s->grad.numel = t->numel;
        s->grad.flags = NB_TENSOR_SPARSE;
        s->grad.internal.sparse = s;
    }
    if (!t->grad) { /* (a dense gradient takes sparse rows by a dense add: the caller's) */
        s->nnz = 0;
        t->grad = &s->grad;
    }
    if (s->nnz + n > s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        if (cap < s->nnz + n) cap = s->nnz + n;
        int32_t *r = nb__realloc(s->rows, sizeof(int32_t) * (size_t)cap);
        if (r) s->rows = r;
        float *v = r ? nb__realloc(s->values, sizeof(float) * (size_t)(cap * dim)) : NULL;
        if (!v) return NB_ENOMEM;
        s->values = v;
        s->cap = cap;
    }
    for (int64_t i = 0; i < n; i++) {
        if (rows[i] == skip) continue;
        s->rows[s->nnz] = rows[i];
        memcpy(s->values + s->nnz * dim, vals + i * dim, sizeof(float) * (size_t)dim);
        s->nnz++;
    }
    return NB_OK;
}

static int by_row_then_order(const void *a, const void *b) {
    const int32_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

size_t nb__sparse_coalesce_size(const nb_tensor *g) {
    int64_t n = g->internal.sparse->nnz;
    return sizeof(int32_t) * (size_t)(3 * n) + sizeof(float) * (size_t)(n * g->shape[1]);
}

int64_t nb__sparse_coalesce(const nb_tensor *g, float sign, void *work, const int32_t **rows, const float **vals) {
    const nb_sparse *s = g->internal.sparse;
    int64_t n = s->nnz, dim = g->shape[1], m = 0;
    int32_t *pairs = work, *out_rows = pairs + 2 * n; /* (row, position) pairs; the rows out */
    float *out = (float *)(void *)(out_rows + n);
    for (int64_t k = 0; k < n; k++) pairs[2 * k] = s->rows[k], pairs[2 * k + 1] = (int32_t)k;
    qsort(pairs, (size_t)n, 2 * sizeof(int32_t), by_row_then_order);
    for (int64_t k = 0; k < n; k++) {
        const float *src = s->values + (int64_t)pairs[2 * k + 1] * dim;
        if (m && out_rows[m - 1] == pairs[2 * k]) {
            for (int64_t j = 0; j < dim; j++) out[(m - 1) * dim + j] += sign * src[j];
        } else {
            out_rows[m] = pairs[2 * k];
            for (int64_t j = 0; j < dim; j++) out[m * dim + j] = sign * src[j];
            m++;
        }
    }
    *rows = out_rows;
    *vals = out;
    return m;
}

void nb__sparse_dense(const nb_tensor *g, float *dst) {
    const nb_sparse *s = g->internal.sparse;
    int64_t dim = g->shape[1];
    memset(dst, 0, sizeof(float) * (size_t)g->numel);
    for (int64_t k = 0; k < s->nnz; k++)
        for (int64_t j = 0; j < dim; j++) dst[s->rows[k] * dim + j] += s->values[k * dim + j];
}

bool nb_is_sparse(const nb_tensor *t) { return t && (t->flags & NB_TENSOR_SPARSE); }
int64_t nb_sparse_nnz(const nb_tensor *t) { return nb_is_sparse(t) ? t->internal.sparse->nnz : -1; }
const int32_t *nb_sparse_indices(const nb_tensor *t) { return nb_is_sparse(t) ? t->internal.sparse->rows : NULL; }
const float *nb_sparse_values(const nb_tensor *t) { return nb_is_sparse(t) ? t->internal.sparse->values : NULL; }

int nb_sparse_to_dense(const nb_tensor *t, nb_tensor *dense) {
    if (!nb_is_sparse(t)) return nb__error(NB_EINVAL, "to_dense: the tensor is not a sparse gradient");
    if (!dense || dense->dtype != NB_FLOAT32 || !nb_same_shape(t, dense) || !dense->data)
        return nb__error(NB_ESHAPE, "to_dense: the output must be a float32 tensor of shape %s", nb__shape(t, 0));
    nb__sparse_dense(t, nb_f32(dense));
    return NB_OK;
}

int nb__dim(const char *op, int dim, int ndim) {
    int d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim) {
        nb__error(NB_EINVAL, "%s: dim %d is out of range for a tensor of rank %d", op, dim, ndim);
        return -1;
    }
    return d;
}

void nb__around(const nb_tensor *t, int d, int64_t *outer, int64_t *C, int64_t *inner) {
    if (t->ndim == 0) {
        *outer = *C = *inner = 1;
        return;
    }
    *outer = nb__numel(d, t->shape);
    *C = t->shape[d];
    *inner = nb__numel(t->ndim - d - 1, t->shape + d + 1);
}

const char *nb__dtype_name(nb_dtype dt) {
    switch (dt) {
    case NB_FLOAT32: return "float32";
    case NB_INT32: return "int32";
    case NB_UINT8: return "uint8";
    case NB_BF16: return "bfloat16";
    }
    return "unknown dtype";
}

int nb__check_f32(const char *op, const nb_tensor *t, const char *what) {
    if (t->dtype != NB_FLOAT32)
        return nb__error(NB_EINVAL, "%s: %s must be float32, got %s", op, what, nb__dtype_name(t->dtype));
    return NB_OK;
}

int nb__check_float(const char *op, const nb_tensor *t, const char *what) {
    if (t->dtype != NB_FLOAT32 && t->dtype != NB_BF16)
        return nb__error(NB_EINVAL, "%s: %s must be float32 or bfloat16, got %s", op, what,
                         nb__dtype_name(t->dtype));
    return NB_OK;
}

const char *nb__shape_of(int ndim, const int64_t *shape, int k) {
    static _Thread_local char bufs[4][128];
    char *b = bufs[k & 3];
    size_t o = 0;
    o += (size_t)snprintf(b + o, sizeof bufs[0] - o, "[");
    for (int i = 0; i < ndim && o < sizeof bufs[0]; i++)
        o += (size_t)snprintf(b + o, sizeof bufs[0] - o, i ? ", %lld" : "%lld",
                              (long long)shape[i]);
    if (o < sizeof bufs[0]) snprintf(b + o, sizeof bufs[0] - o, "]");
    return b;
}

const char *nb__shape(const nb_tensor *t, int k) { return nb__shape_of(t->ndim, t->shape, k); }

const char *nb_shape_str(const nb_tensor *t, char *buf, size_t n) {
    if (!buf || !n) return buf;
    snprintf(buf, n, "%s", t ? nb__shape(t, 3) : "(null)");
    return buf;
}

bool nb_same_shape(const nb_tensor *a, const nb_tensor *b) {
    if (!a || !b || a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

/* ---- creation ---------------------------------------------------------------------------- */
nb_tensor *nb_empty(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape) {
    return nb__tensor(ar, dt, ndim, shape);
}

nb_tensor *nb_full(nb_arena *ar, int ndim, const int64_t *shape, float value) {
    nb_tensor *t = nb__tensor(ar, NB_FLOAT32, ndim, shape);
    if (t) nb_fill(t, value);
    return t;
}

nb_tensor *nb_zeros(nb_arena *ar, int ndim, const int64_t *shape) {
    return nb_full(ar, ndim, shape, 0.0f);
}

nb_tensor *nb_ones(nb_arena *ar, int ndim, const int64_t *shape) {
    return nb_full(ar, ndim, shape, 1.0f);
}

nb_tensor *nb_scalar(nb_arena *ar, float value) { return nb_full(ar, 0, NULL, value); }

nb_tensor *nb_from_array(nb_arena *ar, nb_dtype dt, int ndim, const int64_t *shape,
                         const void *values) {
    if (!values) return nb__null(NB_EINVAL, "from_array: values is NULL");
    nb_tensor *t = nb__tensor(ar, dt, ndim, shape);
    if (t) memcpy(t->data, values, (size_t)t->numel * nb_dtype_size(dt));
    return t;
}

nb_tensor *nb_arange(nb_arena *ar, double start, double end, double step) {
    if (!isfinite(start) || !isfinite(end))
        return nb__null(NB_EINVAL, "arange: unsupported range: %s -> %s", nb__pyfloat(start, 0),
                        nb__pyfloat(end, 1));
    if (!(step > 0 || step < 0) || !isfinite(step))
        return nb__null(NB_EINVAL, "arange: step must be nonzero and finite, got %s", nb__pyfloat(step, 0));
    if ((end - start) / step < 0)
        return nb__null(NB_EINVAL, "arange: upper bound and larger bound inconsistent with step sign");
    double size = ceil((end - start) / step);
    if (!(size <= 9.2e18)) /* beyond int64 (converting would be undefined) */
        return nb__null(NB_EINVAL, "arange: invalid size, possible overflow? (%s elements)",
                        nb__pyfloat(size, 0));
    int64_t n = (int64_t)size;
    nb_tensor *t = nb__tensor(ar, NB_FLOAT32, 1, &n);
    if (t)
        for (int64_t i = 0; i < n; i++) nb_f32(t)[i] = (float)(start + (double)i * step);
    return t;
}

/* uniform_(lo, hi) on float32 as PyTorch computes it: u * (hi - lo) + lo with one rounding. */
nb_tensor *nb_uniform(nb_arena *ar, int ndim, const int64_t *shape, float lo, float hi,
                      nb_rng *rng) {
    if (!rng) return nb__null(NB_EINVAL, "uniform: rng is NULL");
    if (!(lo <= hi)) return nb__null(NB_EINVAL, "uniform: lo %g > hi %g", lo, hi);
    nb_tensor *t = nb__tensor(ar, NB_FLOAT32, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) nb_f32(t)[i] = fmaf(nb_rng_uniform(rng), hi - lo, lo);
    return t;
}

/* normal_(mean, std) as PyTorch's CPU normal_fill: uniforms first, then Box-Muller over blocks
 * of 16 (the last block recomputed from fresh uniforms when numel is not a multiple of 16).
 * Fewer than 16 elements: pairs of double Box-Muller draws. */
static void normal_fill_16(float *d, float mean, float std) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j], u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(2.0f * 3.14159265358979323846 * u2);
        d[j] = radius * cosf(theta) * std + mean;
        d[j + 8] = radius * sinf(theta) * std + mean;
    }
}

nb_tensor *nb_normal(nb_arena *ar, int ndim, const int64_t *shape, float mean, float std,
                     nb_rng *rng) {
    if (!rng) return nb__null(NB_EINVAL, "normal: rng is NULL");
    if (!(std >= 0)) return nb__null(NB_EINVAL, "normal: std %g must be >= 0", std);
    nb_tensor *t = nb__tensor(ar, NB_FLOAT32, ndim, shape);
    if (!t) return NULL;
    float *d = nb_f32(t);
    int64_t n = t->numel;
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) d[i] = mean + std * (float)nb_rng_normal(rng);
        return t;
    }
    for (int64_t i = 0; i < n; i++) d[i] = nb_rng_uniform(rng);
    for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(d + i, mean, std);
    if (n % 16) {
        float *tail = d + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = nb_rng_uniform(rng);
        normal_fill_16(tail, mean, std);
    }
    return t;
}

nb_tensor *nb_kaiming_uniform(nb_arena *ar, int ndim, const int64_t *shape, double a,
                              nb_rng *rng) {
    if (ndim < 2)
        return nb__null(NB_EINVAL, "kaiming_uniform: fan in can not be computed for a tensor "
                                   "with fewer than 2 dimensions");
    if (nb__check_shape("kaiming_uniform", NB_FLOAT32, ndim, shape)) return NULL;
    int64_t fan_in = nb__numel(ndim - 1, shape + 1);
    double gain = sqrt(2.0 / (1.0 + a * a));
    double bound = fan_in ? sqrt(3.0) * gain / sqrt((double)fan_in) : 0.0;
    return nb_uniform(ar, ndim, shape, (float)-bound, (float)bound, rng);
}

nb_tensor *nb_clone(nb_arena *ar, const nb_tensor *t) {
    if (!t) return NULL;
    return nb_from_array(ar, t->dtype, t->ndim, t->shape, t->data);
}

double nb_item(const nb_tensor *t) {
    if (!t || t->numel != 1) return NAN;
    switch (t->dtype) {
    case NB_FLOAT32: return nb_f32(t)[0];
    case NB_INT32: return nb_i32(t)[0];
    case NB_UINT8: return nb_u8(t)[0];
    case NB_BF16: return nb_bf16_to_float(nb_bf16(t)[0]);
    }
    return NAN;
}

int nb_fill(nb_tensor *t, float value) {
    if (!t) return nb__error(NB_EINVAL, "fill: tensor is NULL");
    if (t->dtype == NB_BF16) {
        uint16_t b = nb_float_to_bf16(value);
        for (int64_t i = 0; i < t->numel; i++) nb_bf16(t)[i] = b;
        return NB_OK;
    }
    if (nb__check_f32("fill", t, "tensor")) return NB_EINVAL;
    float *d = nb_f32(t);
    for (int64_t i = 0; i < t->numel; i++) d[i] = value;
    return NB_OK;
}

int nb_copy(nb_tensor *dst, const nb_tensor *src) {
    if (!dst || !src) return nb__error(NB_EINVAL, "copy: %s is NULL", dst ? "src" : "dst");
    if (dst->numel != src->numel || dst->dtype != src->dtype)
        return nb__error(NB_ESHAPE, "copy: cannot copy %s into %s", nb__shape(src, 0),
                         nb__shape(dst, 1));
    memmove(dst->data, src->data, (size_t)src->numel * nb_dtype_size(src->dtype));
    return NB_OK;
}
