/* test_core.c - errors, arena, RNG, tensor creation and views. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "../src/kernels/kernels.h"
#include "../src/kernels/gemm_avx512.h"
#include "../src/core/internal.h"

START_TEST(test_error_messages) {
    nb_clear_error();
    ck_assert_int_eq(nb_last_status(), NB_OK);
    ck_assert_ptr_null(nb_zeros(NULL, 9, (int64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 1}));
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    ck_assert_msg(strstr(nb_last_error(), "rank 9") != NULL, "message: %s", nb_last_error());
    ck_assert_ptr_null(nb_zeros(NULL, 2, (int64_t[]){3, -1}));
    ck_assert_msg(strstr(nb_last_error(), "negative size") != NULL, "message: %s", nb_last_error());
    ck_assert_str_eq(nb_status_str(NB_ESHAPE), "shape mismatch");
}
END_TEST

START_TEST(test_arena_reuses_memory) {
    nb_arena *ar = nb_arena_new(1024);
    ck_assert_ptr_nonnull(ar);
    for (int step = 0; step < 3; step++) {
        nb_arena_reset(ar);
        for (int i = 0; i < 100; i++) ck_assert_ptr_nonnull(nb_zeros(ar, 1, (int64_t[]){1000}));
    }
    size_t peak = nb_arena_peak(ar);
    ck_assert_uint_ge(peak, 100 * 4000);
    nb_arena_reset(ar);
    ck_assert_uint_eq(nb_arena_used(ar), 0);
    /* a request near SIZE_MAX fails instead of wrapping around to a tiny block */
    ck_assert_ptr_null(nb__arena_alloc(ar, SIZE_MAX - 8));
    ck_assert_int_eq(nb_last_status(), NB_ENOMEM);
    ck_assert_uint_eq(nb_arena_used(ar), 0);
    nb_arena_free(ar);
    nb_arena_free(NULL);
}
END_TEST

START_TEST(test_rng_is_deterministic) {
    nb_rng a, b;
    nb_rng_seed(&a, 42);
    nb_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) ck_assert_uint_eq(nb_rng_u32(&a), nb_rng_u32(&b));
    nb_rng_seed(&b, 43);
    int same = 0;
    for (int i = 0; i < 100; i++) same += nb_rng_u32(&a) == nb_rng_u32(&b);
    ck_assert_int_lt(same, 3);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        float u = nb_rng_uniform(&a);
        ck_assert(u >= 0.0f && u < 1.0f);
        s += u;
        s2 += u * u;
    }
    ck_assert_double_eq_tol(s / 100000, 0.5, 0.01);
    ck_assert_double_eq_tol(s2 / 100000 - 0.25, 1.0 / 12, 0.01);
    for (int i = 0; i < 1000; i++) ck_assert_uint_lt(nb_rng_below(&a, 7), 7);
    nb_rng c = a;
    ck_assert_uint_eq(nb_rng_below(&a, 0), 0); /* was a division by zero */
    ck_assert_str_eq(nb_last_error(), "rng_below: n must be > 0, got 0");
    ck_assert_mem_eq(&a, &c, sizeof a); /* nothing drawn */
}
END_TEST

/* Values printed by PyTorch 1.13: torch.manual_seed(0); torch.empty(5).uniform_(-1, 1) and
 * torch.randperm(10, generator=torch.Generator().manual_seed(0)). */
START_TEST(test_rng_matches_pytorch) {
    nb_rng r;
    nb_rng_seed(&r, 0);
    nb_tensor *u = nb_uniform(NULL, 1, (int64_t[]){5}, -1.0f, 1.0f, &r);
    const float want[] = {-0.007486820220947266f, 0.5364435911178589f, -0.8230451345443726f,
                          -0.7359390258789062f, -0.3851543664932251f};
    ck_assert_mem_eq(u->data, want, sizeof want);
    nb_tensor_free(u);
    nb_rng_seed(&r, 0);
    int64_t perm[10], want_perm[] = {4, 1, 7, 5, 3, 9, 0, 8, 6, 2};
    nb_randperm(&r, 10, perm);
    ck_assert_mem_eq(perm, want_perm, sizeof perm);
}
END_TEST

START_TEST(test_creation) {
    int64_t shape[] = {2, 3};
    nb_tensor *z = nb_zeros(NULL, 2, shape), *o = nb_ones(NULL, 2, shape), *f = nb_full(NULL, 2, shape, 2.5f);
    ck_assert_int_eq(z->numel, 6);
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq(nb_f32(z)[i], 0.0f);
        ck_assert_float_eq(nb_f32(o)[i], 1.0f);
        ck_assert_float_eq(nb_f32(f)[i], 2.5f);
    }
    float vals[] = {1, 2, 3, 4, 5, 6};
    nb_tensor *a = nb_from_array(NULL, NB_FLOAT32, 2, shape, vals);
    ck_assert_mem_eq(a->data, vals, sizeof vals);
    nb_tensor *r = nb_arange(NULL, 0, 5, 1);
    ck_assert_int_eq(r->numel, 5);
    ck_assert_float_eq(nb_f32(r)[4], 4.0f);
    nb_tensor *r2 = nb_arange(NULL, 1, 2, 0.25);
    ck_assert_int_eq(r2->numel, 4);
    ck_assert_ptr_null(nb_arange(NULL, 0, 1, 0));
    ck_assert_str_eq(nb_last_error(), "arange: step must be nonzero and finite, got 0.0");
    ck_assert_ptr_null(nb_arange(NULL, 0, 1e300, 1)); /* the size does not fit an int64 */
    ck_assert_str_eq(nb_last_error(), "arange: invalid size, possible overflow? (1e+300 elements)");
    ck_assert_ptr_null(nb_arange(NULL, 0, INFINITY, 1));
    ck_assert_str_eq(nb_last_error(), "arange: unsupported range: 0.0 -> inf");
    ck_assert_ptr_null(nb_arange(NULL, 1, 0, 1));
    ck_assert_str_eq(nb_last_error(), "arange: upper bound and larger bound inconsistent with step sign");
    nb_tensor *s = nb_scalar(NULL, 3.0f);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_double_eq(nb_item(s), 3.0);
    ck_assert(isnan(nb_item(a)));
    char buf[32];
    ck_assert_str_eq(nb_shape_str(a, buf, sizeof buf), "[2, 3]");
    nb_tensor *c = nb_clone(NULL, a);
    ck_assert_mem_eq(c->data, vals, sizeof vals);
    ck_assert_int_eq(nb_copy(z, a), NB_OK);
    ck_assert_mem_eq(z->data, vals, sizeof vals);
    ck_assert_int_eq(nb_copy(r, a), NB_ESHAPE);
    nb_tensor *ts[] = {z, o, f, a, r, r2, s, c};
    for (int i = 0; i < 8; i++) nb_tensor_free(ts[i]);
    nb_tensor_free(NULL);
}
END_TEST

START_TEST(test_random_init) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    int64_t shape[] = {128, 784};
    nb_tensor *w = nb_kaiming_uniform(NULL, 2, shape, sqrt(5.0), &rng);
    float bound = 1.0f / sqrtf(784.0f), mx = 0;
    for (int64_t i = 0; i < w->numel; i++) mx = fmaxf(mx, fabsf(nb_f32(w)[i]));
    ck_assert_float_le(mx, bound);
    ck_assert_float_gt(mx, bound * 0.99f);
    nb_tensor *n = nb_normal(NULL, 1, (int64_t[]){100000}, 1.0f, 2.0f, &rng);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n->numel; i++) {
        s += nb_f32(n)[i];
        s2 += (double)nb_f32(n)[i] * nb_f32(n)[i];
    }
    double mean = s / 1e5, var = s2 / 1e5 - mean * mean;
    ck_assert_double_eq_tol(mean, 1.0, 0.03);
    ck_assert_double_eq_tol(var, 4.0, 0.1);
    ck_assert_ptr_null(nb_kaiming_uniform(NULL, 1, shape, 0, &rng));
    ck_assert_ptr_null(nb_uniform(NULL, 1, shape, 1, 0, &rng));
    nb_tensor_free(w);
    nb_tensor_free(n);
}
END_TEST

START_TEST(test_version) {
    ck_assert_str_eq(nb_version(), NB_VERSION_STRING);
    ck_assert_int_eq(nb_set_num_threads(0), NB_EINVAL);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    ck_assert_int_eq(nb_get_num_threads(), 1);
}
END_TEST

/* nb_k_gemm against a naive triple loop: every transpose combination, vector shapes
 * (M, N or K == 1 take special paths), beta 0 (C garbage is ignored) and 1. */
START_TEST(test_gemm_shapes) {
    const int64_t dims[][3] = {{1, 7, 5}, {6, 1, 5}, {6, 7, 1}, {1, 1, 9}, {1, 7, 1}, {13, 11, 17}, {64, 10, 128}};
    nb_rng r;
    nb_rng_seed(&r, 7);
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 2; bi++) {
                    int64_t M = dims[d][0], N = dims[d][1], K = dims[d][2];
                    float A[64 * 128], B[128 * 17], C[64 * 17], want[64 * 17];
                    for (int64_t i = 0; i < M * K; i++) A[i] = nb_rng_uniform(&r) - 0.5f;
                    for (int64_t i = 0; i < K * N; i++) B[i] = nb_rng_uniform(&r) - 0.5f;
                    float beta = (float)bi;
                    for (int64_t i = 0; i < M * N; i++) C[i] = bi ? nb_rng_uniform(&r) : NAN;
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double acc = 0;
                            for (int64_t k = 0; k < K; k++)
                                acc += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
                            want[i * N + j] = (float)(0.5 * acc + (bi ? beta * C[i * N + j] : 0.0));
                        }
                    nb_k_gemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, beta, C, N);
                    char what[64];
                    snprintf(what, sizeof what, "gemm %lldx%lldx%lld ta=%d tb=%d beta=%d", (long long)M,
                             (long long)N, (long long)K, ta, tb, bi);
                    assert_close(what, C, want, M * N, 1e-5, 1e-6);
                }
}
END_TEST

/* Element (i, j) of op(A) op(B) summed in double over k = 0..K-1; *mag (if mag) = the sum of
 * the products' magnitudes. */
static double gemm_ref(bool ta, bool tb, int64_t i, int64_t j, int64_t K, const float *A, int64_t lda,
                       const float *B, int64_t ldb, double *mag) {
    double acc = 0, m = 0;
    for (int64_t k = 0; k < K; k++) {
        double p = (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
        acc += p, m += fabs(p);
    }
    if (mag) *mag = m;
    return acc;
}

/* Shapes with N >= 32 go through the blocked kernels (AVX-512 where the CPU has it): edges of
 * every block (8/16 rows, 16/32 columns, k blocks of <= 256, row blocks of 64, column panels of
 * 512), and a matrix-vector product (M = 1); leading dimensions larger than the matrices,
 * alpha != 1, beta 0 (C garbage ignored) and beta 0.5. Then the same products split across 2
 * threads must give the same bits. */
START_TEST(test_gemm_blocks) {
    const int64_t dims[][3] = {{8, 32, 16},  {17, 33, 15},   {1 + 16, 47, 300}, {70, 100, 33},
                               {130, 40, 7}, {5, 600, 257}, {64, 128, 784}, {1, 37, 100}};
    enum { PAD = 3 };
    nb_rng r;
    nb_rng_seed(&r, 11);
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 2; bi++) {
                    int64_t M = dims[d][0], N = dims[d][1], K = dims[d][2];
                    int64_t lda = (ta ? M : K) + PAD, ldb = (tb ? K : N) + PAD, ldc = N + PAD;
                    int64_t na = (ta ? K : M) * lda, nbb = (tb ? N : K) * ldb, nc = M * ldc;
                    float *A = malloc(sizeof(float) * (size_t)na), *B = malloc(sizeof(float) * (size_t)nbb);
                    float *C = malloc(sizeof(float) * (size_t)nc), *C2 = malloc(sizeof(float) * (size_t)nc);
                    float *want = malloc(sizeof(float) * (size_t)nc);
                    ck_assert(A && B && C && C2 && want);
                    for (int64_t i = 0; i < na; i++) A[i] = nb_rng_uniform(&r) - 0.5f;
                    for (int64_t i = 0; i < nbb; i++) B[i] = nb_rng_uniform(&r) - 0.5f;
                    float beta = bi ? 0.5f : 0.0f;
                    for (int64_t i = 0; i < nc; i++) C[i] = bi ? nb_rng_uniform(&r) : NAN;
                    memcpy(C2, C, sizeof(float) * (size_t)nc);
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < ldc; j++)
                            want[i * ldc + j] = j < N ? (float)(-0.5 * gemm_ref(ta, tb, i, j, K, A, lda, B, ldb, NULL) +
                                                                (bi ? beta * C[i * ldc + j] : 0.0))
                                                      : C[i * ldc + j]; /* the padding stays */
                    nb_k_gemm(ta, tb, M, N, K, -0.5f, A, lda, B, ldb, beta, C, ldc);
                    char what[80];
                    snprintf(what, sizeof what, "gemm %lldx%lldx%lld ta=%d tb=%d beta=%g", (long long)M,
                             (long long)N, (long long)K, ta, tb, beta);
                    for (int64_t i = 0; i < M; i++) /* NaN padding compares equal to itself */
                        for (int64_t j = N; j < ldc; j++) ck_assert(memcmp(&C[i * ldc + j], &want[i * ldc + j], 4) == 0);
                    for (int64_t i = 0; i < M; i++)
                        assert_close(what, C + i * ldc, want + i * ldc, N, 1e-5, 1e-5);
                    ck_assert_int_eq(nb_set_num_threads(2), NB_OK);
                    nb_k_gemm(ta, tb, M, N, K, -0.5f, A, lda, B, ldb, beta, C2, ldc);
                    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
                    if (nb_k_gemm512_available()) /* each element sums its k in one order */
                        ck_assert_msg(memcmp(C, C2, sizeof(float) * (size_t)nc) == 0, "%s: 2 threads differ", what);
                    else
                        for (int64_t i = 0; i < M; i++) assert_close(what, C2 + i * ldc, C + i * ldc, N, 1e-5, 1e-5);
                    free(A), free(B), free(C), free(C2), free(want);
                }
}
END_TEST

/* 300 random products (sizes up to 600, transposes, padded leading dimensions, alpha, beta 0
 * with NaN in C, 1 or 2 threads) against a double-precision reference, each element within
 * 1e-5 of the sum of its products' magnitudes; the padding of C is never written. */
START_TEST(test_gemm_random) {
    nb_rng r;
    nb_rng_seed(&r, 5);
#define RND(n) ((int64_t)(nb_rng_uniform(&r) * (float)(n)) % (n))
    for (int it = 0; it < 300; it++) {
        int64_t M = 1 + RND(it % 4 ? 40 : 300), N = 1 + RND(it % 3 ? 70 : 400);
        int64_t K = 1 + RND(it % 5 ? 40 : 600), pad = RND(5);
        bool ta = RND(2), tb = RND(2);
        float alpha = RND(2) ? 1.0f : -0.75f, beta = (float)RND(3) * 0.5f;
        int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        int64_t na = (ta ? K : M) * lda, nbb = (tb ? N : K) * ldb, nc = M * ldc;
        float *A = malloc(sizeof(float) * (size_t)na), *B = malloc(sizeof(float) * (size_t)nbb);
        float *C = malloc(sizeof(float) * (size_t)nc), *C0 = malloc(sizeof(float) * (size_t)nc);
        ck_assert(A && B && C && C0);
        for (int64_t i = 0; i < na; i++) A[i] = nb_rng_uniform(&r) - 0.5f;
        for (int64_t i = 0; i < nbb; i++) B[i] = nb_rng_uniform(&r) - 0.5f;
        for (int64_t i = 0; i < nc; i++) C0[i] = C[i] = beta == 0.0f ? NAN : nb_rng_uniform(&r);
        ck_assert_int_eq(nb_set_num_threads(1 + (int)RND(2)), NB_OK);
        nb_k_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < ldc; j++) {
                const float *c = C + i * ldc + j, *c0 = C0 + i * ldc + j;
                if (j >= N) {
                    ck_assert_msg(memcmp(c, c0, sizeof *c) == 0, "gemm wrote the padding of C");
                    continue;
                }
                double mag, acc = gemm_ref(ta, tb, i, j, K, A, lda, B, ldb, &mag);
                double want = alpha * acc + (beta != 0.0f ? beta * *c0 : 0.0);
                double tol = 1e-5 * (fabs(alpha) * mag + (beta != 0.0f ? fabs(beta * *c0) : 0.0)) + 1e-6;
                ck_assert_msg(fabs(*c - want) <= tol, "gemm %lldx%lldx%lld ta=%d tb=%d beta=%g: C[%lld,%lld] = %g, want %g",
                              (long long)M, (long long)N, (long long)K, ta, tb, beta, (long long)i,
                              (long long)j, *c, want);
            }
        free(A), free(B), free(C), free(C0);
    }
#undef RND
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
}
END_TEST

/* With 2 threads big GEMMs are split by rows or columns across nabla's pool: same result. */
START_TEST(test_gemm_threads) {
    enum { M = 256, N = 192, K = 300 };
    static float A[M * K], B[K * N], C1[M * N], C2[M * N], Ct[N * M];
    nb_rng r;
    nb_rng_seed(&r, 3);
    for (int i = 0; i < M * K; i++) A[i] = nb_rng_uniform(&r) - 0.5f;
    for (int i = 0; i < K * N; i++) B[i] = nb_rng_uniform(&r) - 0.5f;
    for (int rep = 0; rep < 3; rep++) {
        ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
        nb_k_gemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
        ck_assert_int_eq(nb_set_num_threads(2), NB_OK);
        nb_k_gemm(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N); /* split by rows */
        assert_close("gemm 2 threads (rows)", C2, C1, M * N, 1e-5, 1e-6);
        nb_k_gemm(true, true, N, M, K, 1.0f, B, N, A, K, 0.0f, Ct, M); /* C^T, split by columns */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) ck_assert_float_eq_tol(Ct[j * M + i], C1[i * N + j], 1e-4f);
    }
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
}
END_TEST

/* Growing an aligned block keeps its content and its 64-byte alignment (the IDX reader grows
 * its buffer this way so that the tensor can take it without a copy). */
START_TEST(test_realloc_aligned) {
    size_t used = 0;
    unsigned char *p = nb__malloc_aligned(100);
    for (size_t n = 100; n < (size_t)40 << 20; n = n * 3 + 7) {
        for (size_t i = used; i < n / 2; i++) p[i] = (unsigned char)(i * 31 + 7);
        used = n / 2;
        p = nb__realloc_aligned(p, used, n * 3 + 7);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        for (size_t i = 0; i < used; i += 4093) ck_assert_uint_eq(p[i], (unsigned char)(i * 31 + 7));
        ck_assert_uint_eq(p[used - 1], (unsigned char)((used - 1) * 31 + 7));
    }
    nb__free_aligned(p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_error_messages);
    tcase_add_test(tc, test_arena_reuses_memory);
    tcase_add_test(tc, test_rng_is_deterministic);
    tcase_add_test(tc, test_rng_matches_pytorch);
    tcase_add_test(tc, test_creation);
    tcase_add_test(tc, test_random_init);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_gemm_shapes);
    tcase_add_test(tc, test_gemm_blocks);
    tcase_add_test(tc, test_gemm_random);
    tcase_add_test(tc, test_gemm_threads);
    tcase_add_test(tc, test_realloc_aligned);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
