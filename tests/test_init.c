/* test_init.c - torch.nn.init: gains, bounds and spreads of every initialiser, orthogonal's
 * QR, determinism under the seed, and the argument errors. */
#include <math.h>
#include <string.h>
#include "common.h"

static void stats(const nb_tensor *t, double *mean, double *std, double *maxabs) {
    double s = 0, q = 0, m = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = nb_f32(t)[i];
        s += v;
        q += v * v;
        m = fmax(m, fabs(v));
    }
    *mean = s / (double)t->numel;
    *std = sqrt(q / (double)t->numel - *mean * *mean);
    *maxabs = m;
}

START_TEST(test_gain) {
    ck_assert_double_eq(nb_calculate_gain("linear", NAN), 1.0);
    ck_assert_double_eq(nb_calculate_gain("conv2d", NAN), 1.0);
    ck_assert_double_eq(nb_calculate_gain("sigmoid", NAN), 1.0);
    ck_assert_double_eq(nb_calculate_gain("tanh", NAN), 5.0 / 3);
    ck_assert_double_eq(nb_calculate_gain("relu", NAN), sqrt(2.0));
    ck_assert_double_eq(nb_calculate_gain("leaky_relu", NAN), sqrt(2.0 / (1 + 0.01 * 0.01)));
    ck_assert_double_eq(nb_calculate_gain("leaky_relu", 0.2), sqrt(2.0 / 1.04));
    ck_assert_double_eq(nb_calculate_gain(NULL, 0), sqrt(2.0));
    ck_assert_double_eq(nb_calculate_gain("selu", NAN), 0.75);
    ck_assert(isnan(nb_calculate_gain("softplus", NAN)));
    ck_assert_str_eq(nb_last_error(), "calculate_gain: Unsupported nonlinearity softplus");
}
END_TEST

START_TEST(test_simple_inits) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_tensor *t = nb_zeros(NULL, 2, (int64_t[]){200, 100});
    double mean, std, m;
    ck_assert_int_eq(nb_init_uniform(t, -2, 3, &rng), NB_OK);
    stats(t, &mean, &std, &m);
    ck_assert_double_eq_tol(mean, 0.5, 0.03);
    ck_assert_double_eq_tol(std, 5 / sqrt(12.0), 0.03);
    for (int64_t i = 0; i < t->numel; i++) ck_assert(nb_f32(t)[i] >= -2 && nb_f32(t)[i] < 3);
    ck_assert_int_eq(nb_init_normal(t, 1, 0.5, &rng), NB_OK);
    stats(t, &mean, &std, &m);
    ck_assert_double_eq_tol(mean, 1.0, 0.01);
    ck_assert_double_eq_tol(std, 0.5, 0.01);
    ck_assert_int_eq(nb_init_constant(t, 0.25), NB_OK);
    ck_assert_float_eq(nb_f32(t)[123], 0.25f);
    nb_init_ones(t);
    ck_assert_float_eq(nb_f32(t)[7], 1.0f);
    nb_init_zeros(t);
    ck_assert_float_eq(nb_f32(t)[7], 0.0f);
    /* errors change nothing */
    ck_assert_int_eq(nb_init_uniform(t, 1, 0, &rng), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "uniform_: uniform_ expects to return a [from, to) range, but found from=1.0 > to=0.0");
    ck_assert_int_eq(nb_init_normal(t, 0, -1, &rng), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "normal_: normal expects std >= 0.0, but found std -1.0");
    ck_assert_float_eq(nb_f32(t)[7], 0.0f);
    ck_assert_int_eq(nb_init_ones(NULL), NB_EINVAL);
    nb_tensor_free(t);
}
END_TEST

START_TEST(test_xavier_kaiming) {
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_tensor *t = nb_zeros(NULL, 4, (int64_t[]){64, 32, 3, 3}); /* fan_in 288, fan_out 576 */
    double mean, std, m, fi = 288, fo = 576;
    ck_assert_int_eq(nb_init_xavier_uniform(t, 2.0, &rng), NB_OK);
    stats(t, &mean, &std, &m);
    double bound = 2.0 * sqrt(6.0 / (fi + fo));
    ck_assert(m <= bound && m > 0.99 * bound);
    ck_assert_double_eq_tol(std, bound / sqrt(3.0), 0.01 * bound);
    ck_assert_int_eq(nb_init_xavier_normal(t, 1.0, &rng), NB_OK);
    stats(t, &mean, &std, &m);
    ck_assert_double_eq_tol(std, sqrt(2.0 / (fi + fo)), 0.01 * sqrt(2.0 / (fi + fo)));
    /* kaiming_uniform_ defaults: a=0, fan_in, leaky_relu -> gain sqrt 2 */
    ck_assert_int_eq(nb_init_kaiming_uniform(t, 0, NB_FAN_IN, NULL, &rng), NB_OK);
    stats(t, &mean, &std, &m);
    bound = sqrt(3.0) * sqrt(2.0) / sqrt(fi);
    ck_assert(m <= bound && m > 0.99 * bound);
    ck_assert_int_eq(nb_init_kaiming_uniform(t, 0, NB_FAN_OUT, "tanh", &rng), NB_OK);
    stats(t, &mean, &std, &m);
    bound = sqrt(3.0) * (5.0 / 3) / sqrt(fo);
    ck_assert(m <= bound && m > 0.99 * bound);
    /* Linear's own init: kaiming_uniform(a=sqrt 5) = U(+-1/sqrt(fan_in)) */
    ck_assert_int_eq(nb_init_kaiming_uniform(t, sqrt(5.0), NB_FAN_IN, "leaky_relu", &rng), NB_OK);
    stats(t, &mean, &std, &m);
    ck_assert(m <= 1 / sqrt(fi) && m > 0.99 / sqrt(fi));
    ck_assert_int_eq(nb_init_kaiming_normal(t, 0, NB_FAN_OUT, "relu", &rng), NB_OK);
    stats(t, &mean, &std, &m);
    ck_assert_double_eq_tol(std, sqrt(2.0 / fo), 0.01 * sqrt(2.0 / fo));
    ck_assert_double_eq_tol(mean, 0, 0.01 * sqrt(2.0 / fo));
    /* same seed, same values */
    nb_tensor *u = nb_zeros(NULL, 4, t->shape);
    nb_rng a, b;
    nb_rng_seed(&a, 7);
    nb_rng_seed(&b, 7);
    nb_init_kaiming_normal(t, 0, NB_FAN_IN, "relu", &a);
    nb_init_kaiming_normal(u, 0, NB_FAN_IN, "relu", &b);
    ck_assert_mem_eq(t->data, u->data, sizeof(float) * (size_t)t->numel);
    /* errors */
    nb_tensor *v = nb_zeros(NULL, 1, (int64_t[]){5});
    ck_assert_int_eq(nb_init_xavier_uniform(v, 1, &rng), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "xavier_uniform_: Fan in and fan out can not be computed for tensor "
                     "with fewer than 2 dimensions");
    ck_assert_int_eq(nb_init_kaiming_normal(v, 0, NB_FAN_IN, "relu", &rng), NB_EINVAL);
    ck_assert_int_eq(nb_init_kaiming_uniform(t, 0, NB_FAN_IN, "swish", &rng), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "calculate_gain: Unsupported nonlinearity swish");
    ck_assert_int_eq(nb_init_kaiming_uniform(t, 0, (nb_fan_mode)3, "relu", &rng), NB_EINVAL);
    ck_assert_msg(strstr(nb_last_error(), "Mode 3 not supported"), "%s", nb_last_error());
    ck_assert_mem_eq(t->data, u->data, sizeof(float) * (size_t)t->numel); /* unchanged */
    nb_tensor *empty = nb_zeros(NULL, 2, (int64_t[]){0, 3});
    ck_assert_int_eq(nb_init_kaiming_uniform(empty, 0, NB_FAN_IN, NULL, &rng), NB_OK); /* no-op */
    nb_tensor_free(empty);
    nb_tensor_free(v);
    nb_tensor_free(u);
    nb_tensor_free(t);
}
END_TEST

/* orthogonal_: rows (or columns, if wide) orthonormal times gain, and the Q of a QR of the
 * normal draws with a positive diagonal in R. */
START_TEST(test_orthogonal) {
    int64_t shapes[][4] = {{8, 8}, {10, 4}, {3, 7}, {4, 2, 3, 3}};
    int nds[] = {2, 2, 2, 4};
    for (int s = 0; s < 4; s++) {
        nb_tensor *t = nb_zeros(NULL, nds[s], shapes[s]);
        nb_rng rng, copy;
        nb_rng_seed(&rng, 100 + (uint64_t)s);
        copy = rng;
        ck_assert_int_eq(nb_init_orthogonal(t, 1.5, &rng), NB_OK);
        int64_t rows = t->shape[0], cols = t->numel / rows;
        bool wide = rows < cols;
        int64_t m = wide ? cols : rows, n = wide ? rows : cols; /* Q is m x n */
        const float *q = nb_f32(t);
#define Q(i, j) ((double)(wide ? q[(j) * cols + (i)] : q[(i) * cols + (j)]) / 1.5)
        for (int64_t a = 0; a < n; a++)
            for (int64_t b = 0; b < n; b++) {
                double d = 0;
                for (int64_t i = 0; i < m; i++) d += Q(i, a) * Q(i, b);
                ck_assert_double_eq_tol(d, a == b ? 1.0 : 0.0, 1e-5);
            }
        /* R = Q^T A is upper triangular with a positive diagonal (A: the same normal draws) */
        for (int64_t a = 0; a < n; a++)
            for (int64_t b = 0; b < n; b++) {
                double r = 0;
                for (int64_t i = 0; i < m; i++) {
                    nb_rng tmp = copy;
                    /* A[i][b] is draw number (wide ? b*cols + i : i*cols + b) */
                    int64_t k = wide ? b * cols + i : i * cols + b;
                    double z = 0;
                    for (int64_t skip = 0; skip <= k; skip++) z = nb_rng_normal(&tmp);
                    r += Q(i, a) * (double)(float)z;
                }
                if (a > b) ck_assert_double_eq_tol(r, 0.0, 1e-4);
                if (a == b) ck_assert(r > 0);
            }
#undef Q
        nb_tensor_free(t);
    }
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_tensor *v = nb_zeros(NULL, 1, (int64_t[]){4});
    ck_assert_int_eq(nb_init_orthogonal(v, 1, &rng), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "orthogonal_: Only tensors with 2 or more dimensions are supported");
    nb_tensor_free(v);
}
END_TEST

int main(void) {
    Suite *s = suite_create("init");
    TCase *tc = tcase_create("init");
    tcase_add_test(tc, test_gain);
    tcase_add_test(tc, test_simple_inits);
    tcase_add_test(tc, test_xavier_kaiming);
    tcase_add_test(tc, test_orthogonal);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
