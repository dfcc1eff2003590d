/* init.c - torch.nn.init: in-place initialisers drawing from a seeded nb_rng (no autograd).
 * Fans, gains and bounds are PyTorch's: fan_in = size(1) * receptive field, fan_out =
 * size(0) * receptive field; kaiming std = gain / sqrt(fan); xavier std = gain sqrt(2 /
 * (fan_in + fan_out)); a uniform with standard deviation std has bound sqrt(3) std. */
#include <math.h>
#include "nn_internal.h"

static int check(const char *op, const nb_tensor *t) {
    if (!t) return nb__error(NB_EINVAL, "%s: tensor is NULL", op);
    return nb__check_f32(op, t, "tensor");
}

static int fans(const char *op, const nb_tensor *t, double *fan_in, double *fan_out) {
    if (t->ndim < 2)
        return nb__error(NB_EINVAL, "%s: Fan in and fan out can not be computed for tensor with "
                         "fewer than 2 dimensions", op);
    double rf = (double)nb__numel(t->ndim - 2, t->shape + 2);
    *fan_in = (double)t->shape[1] * rf;
    *fan_out = (double)t->shape[0] * rf;
    return NB_OK;
}

double nb_calculate_gain(const char *nl, double param) {
    static const char *const linear[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                         "conv_transpose2d", "conv_transpose3d", "sigmoid"};
    if (!nl) nl = "leaky_relu";
    for (size_t i = 0; i < sizeof linear / sizeof *linear; i++)
        if (!strcmp(nl, linear[i])) return 1.0;
    if (!strcmp(nl, "tanh")) return 5.0 / 3;
    if (!strcmp(nl, "relu")) return sqrt(2.0);
    if (!strcmp(nl, "leaky_relu")) {
        double slope = isnan(param) ? 0.01 : param;
        if (!isfinite(slope)) {
            nb__error(NB_EINVAL, "calculate_gain: negative_slope %s not a valid number",
                      nb__pyfloat(slope, 0));
            return NAN;
        }
        return sqrt(2.0 / (1 + slope * slope));
    }
    if (!strcmp(nl, "selu")) return 3.0 / 4;
    nb__error(NB_EINVAL, "calculate_gain: Unsupported nonlinearity %s", nl);
    return NAN;
}

static void fill_uniform(nb_tensor *t, double a, double b, nb_rng *rng) {
    for (int64_t i = 0; i < t->numel; i++)
        nb_f32(t)[i] = (float)(a + (b - a) * nb_rng_uniform_double(rng));
}

static void fill_normal(nb_tensor *t, double mean, double std, nb_rng *rng) {
    for (int64_t i = 0; i < t->numel; i++) nb_f32(t)[i] = (float)(mean + std * nb_rng_normal(rng));
}

int nb_init_uniform(nb_tensor *t, double a, double b, nb_rng *rng) {
    if (check("uniform_", t)) return NB_EINVAL;
    if (!rng) return nb__error(NB_EINVAL, "uniform_: rng is NULL");
    if (!(a <= b))
        return nb__error(NB_EINVAL, "uniform_: uniform_ expects to return a [from, to) range, but "
                         "found from=%s > to=%s", nb__pyfloat(a, 0), nb__pyfloat(b, 1));
    fill_uniform(t, a, b, rng);
    return NB_OK;
}

int nb_init_normal(nb_tensor *t, double mean, double std, nb_rng *rng) {
    if (check("normal_", t)) return NB_EINVAL;
    if (!rng) return nb__error(NB_EINVAL, "normal_: rng is NULL");
    if (!(std >= 0))
        return nb__error(NB_EINVAL, "normal_: normal expects std >= 0.0, but found std %s",
                         nb__pyfloat(std, 0));
    fill_normal(t, mean, std, rng);
    return NB_OK;
}

int nb_init_constant(nb_tensor *t, double val) {
    if (check("constant_", t)) return NB_EINVAL;
    return nb_fill(t, (float)val);
}

int nb_init_zeros(nb_tensor *t) { return check("zeros_", t) ? NB_EINVAL : nb_fill(t, 0.0f); }
int nb_init_ones(nb_tensor *t) { return check("ones_", t) ? NB_EINVAL : nb_fill(t, 1.0f); }

static int xavier(const char *op, nb_tensor *t, double gain, nb_rng *rng, bool normal) {
    double fi = 0, fo = 0;
    if (check(op, t) || fans(op, t, &fi, &fo)) return NB_EINVAL;
    if (!rng) return nb__error(NB_EINVAL, "%s: rng is NULL", op);
    if (t->numel == 0) return NB_OK;
    double std = gain * sqrt(2.0 / (fi + fo));
    if (normal) fill_normal(t, 0.0, std, rng);
    else fill_uniform(t, -sqrt(3.0) * std, sqrt(3.0) * std, rng);
    return NB_OK;
}

int nb_init_xavier_uniform(nb_tensor *t, double gain, nb_rng *rng) {
    return xavier("xavier_uniform_", t, gain, rng, false);
}

int nb_init_xavier_normal(nb_tensor *t, double gain, nb_rng *rng) {
    return xavier("xavier_normal_", t, gain, rng, true);
}

static int kaiming(const char *op, nb_tensor *t, double a, nb_fan_mode mode, const char *nl,
                   nb_rng *rng, bool normal) {
    if (check(op, t)) return NB_EINVAL;
    if (!rng) return nb__error(NB_EINVAL, "%s: rng is NULL", op);
    if (t->numel == 0) return NB_OK; /* PyTorch: "Initializing zero-element tensors is a no-op" */
    if (mode != NB_FAN_IN && mode != NB_FAN_OUT)
        return nb__error(NB_EINVAL, "%s: Mode %d not supported, please use one of ['fan_in', "
                         "'fan_out']", op, (int)mode);
    double fi = 0, fo = 0;
    if (fans(op, t, &fi, &fo)) return NB_EINVAL;
    double gain = nb_calculate_gain(nl, a);
    if (isnan(gain)) return NB_EINVAL;
    double std = gain / sqrt(mode == NB_FAN_IN ? fi : fo);
    if (normal) fill_normal(t, 0.0, std, rng);
    else fill_uniform(t, -sqrt(3.0) * std, sqrt(3.0) * std, rng);
    return NB_OK;
}

int nb_init_kaiming_uniform(nb_tensor *t, double a, nb_fan_mode mode, const char *nonlinearity,
                            nb_rng *rng) {
    return kaiming("kaiming_uniform_", t, a, mode, nonlinearity, rng, false);
}

int nb_init_kaiming_normal(nb_tensor *t, double a, nb_fan_mode mode, const char *nonlinearity,
                           nb_rng *rng) {
    return kaiming("kaiming_normal_", t, a, mode, nonlinearity, rng, true);
}

/* Columns j0.. of M [m, n] -= (2 / vn) v (v^T M), v living in rows k.. (vn = |v|^2 != 0):
 * the Householder reflection I - 2 v v^T / vn applied from the left. */
static void reflect(double *M, const double *v, double vn, int64_t m, int64_t n, int64_t k,
                    int64_t j0) {
    for (int64_t j = j0; j < n; j++) {
        double s = 0;
        for (int64_t i = k; i < m; i++) s += v[i] * M[i * n + j];
        s *= 2 / vn;
        for (int64_t i = k; i < m; i++) M[i * n + j] -= s * v[i];
    }
}

/* Q of the QR factorisation of A [m, n] (m >= n, row-major, overwritten) by Householder
 * reflections, with each column j multiplied by sign(R[j, j]) as PyTorch does: that is the
 * unique QR with a positive diagonal, whichever algorithm computes it. */
static void householder_q(double *A, double *Q, double *v, int64_t m, int64_t n) {
    double *vs = v; /* reflector k in vs[k*m + i], i >= k; its squared norm in vs[n*m + k] */
    double *rdiag = v + n * m + n;
    for (int64_t k = 0; k < n; k++) {
        double norm = 0;
        for (int64_t i = k; i < m; i++) norm += A[i * n + k] * A[i * n + k];
        norm = sqrt(norm);
        double alpha = A[k * n + k] > 0 ? -norm : norm, vn = 0;
        for (int64_t i = k; i < m; i++) {
            vs[k * m + i] = A[i * n + k] - (i == k ? alpha : 0.0);
            vn += vs[k * m + i] * vs[k * m + i];
        }
        vs[n * m + k] = vn;
        rdiag[k] = alpha;
        if (vn != 0) reflect(A, vs + k * m, vn, m, n, k, k);
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) Q[i * n + j] = i == j;
    for (int64_t k = n - 1; k >= 0; k--) { /* Q = H_0 ... H_{n-1} I */
        double vn = vs[n * m + k];
        if (vn != 0) reflect(Q, vs + k * m, vn, m, n, k, 0);
    }
    for (int64_t j = 0; j < n; j++) {
        double sg = rdiag[j] > 0 ? 1.0 : rdiag[j] < 0 ? -1.0 : 0.0;
        for (int64_t i = 0; i < m; i++) Q[i * n + j] *= sg;
    }
}

int nb_init_orthogonal(nb_tensor *t, double gain, nb_rng *rng) {
    if (check("orthogonal_", t)) return NB_EINVAL;
    if (t->ndim < 2)
        return nb__error(NB_EINVAL, "orthogonal_: Only tensors with 2 or more dimensions are supported");
    if (!rng) return nb__error(NB_EINVAL, "orthogonal_: rng is NULL");
    if (t->numel == 0) return NB_OK;
    int64_t rows = t->shape[0], cols = t->numel / rows;
    bool tr = rows < cols;
    int64_t m = tr ? cols : rows, n = tr ? rows : cols;
    double *A = nb__malloc(sizeof(double) * (size_t)(2 * m * n + n * m + 2 * n));
    if (!A) return NB_ENOMEM;
    double *Q = A + m * n, *work = Q + m * n;
    /* draw flattened [rows, cols] in row-major order, then view it transposed if rows < cols */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            double z = nb_rng_normal(rng);
            if (tr) A[c * n + r] = (double)(float)z;
            else A[r * n + c] = (double)(float)z;
        }
    householder_q(A, Q, work, m, n);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            nb_f32(t)[r * cols + c] = (float)(gain * (tr ? Q[c * n + r] : Q[r * n + c]));
    nb__free(A);
    return NB_OK;
}
