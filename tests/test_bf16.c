/* test_bf16.c - bfloat16: PyTorch's conversion, the bfloat16 GEMM kernels (every one this CPU
 * runs, the emulated one included: the fallback of CPUs without AVX512_BF16), and autocast:
 * parity with PyTorch 1.13's CPU bf16 autocast for a Linear and a Conv2d, forward and
 * backward (tests/golden/bf16.nbg.gz, tools/golden/gen_bf16.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/kernels/bf16.h"
#include "../src/kernels/kernels.h"
#include "common.h"

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- conversion ---------------------------------------------------------------------------- */
/* float32 bit patterns and what torch 1.13's x.to(torch.bfloat16) makes of them (measured on
 * a tensor of these values, and of each alone: the vectorised and scalar paths agree). */
static const uint32_t conv_in[] = {
    0x7fc00000, 0xffc00000, 0x7f800000, 0xff800000, /* NaN, -NaN, inf, -inf */
    0x000116c2, 0x800116c2,                         /* +-1e-40 (subnormal) */
    0x7f7fc99e,                                     /* 3.4e38: rounds up to inf */
    0x3f808000, 0x3f818000, 0x3f808008,             /* 1 + 2^-8 (tie: even), 1 + 3 2^-8, just past a tie */
    0x00000000, 0x80000000, 0x00000001,             /* 0, -0, the smallest subnormal */
    0x7f800001, 0xff800001, 0x7fbfffff, 0x7fc00001, 0xffc12345, /* signalling / payload NaNs */
    0x7f7fffff, 0x00800000, 0x007fffff, 0x00008000, 0x00018000,
};
static const uint16_t conv_torch[] = {
    0xffff, 0xffff, 0x7f80, 0xff80, 0x0001, 0x8001, 0x7f80, 0x3f80, 0x3f82, 0x3f81, 0x0000, 0x8000,
    0x0000, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0x7f80, 0x0080, 0x0080, 0x0000, 0x0002,
};
enum { NCONV = (int)(sizeof conv_in / sizeof conv_in[0]) };

START_TEST(test_conversion_as_torch) {
    ck_assert_int_eq(NCONV, (int)(sizeof conv_torch / sizeof conv_torch[0]));
    for (int i = 0; i < NCONV; i++) {
        uint16_t b = nb_float_to_bf16(from_bits(conv_in[i]));
        ck_assert_msg(b == conv_torch[i], "0x%08x -> 0x%04x, torch 0x%04x", conv_in[i], b, conv_torch[i]);
    }
    /* the vectorised conversion, at every offset of a long array */
    enum { N = 1000 };
    static float x[N];
    static uint16_t y[N];
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = i % 3 == 0 ? from_bits(conv_in[i % NCONV]) : from_bits(s);
    }
    for (int off = 0; off < 40; off++) {
        memset(y, 0xa5, sizeof y);
        nb_k_f32_to_bf16(y + off, x + off, N - 2 * off);
        for (int i = off; i < N - off; i++)
            ck_assert_msg(y[i] == nb_float_to_bf16(x[i]), "element %d of 0x%08x", i, bits(x[i]));
        ck_assert(off == 0 || y[N - off] == 0xa5a5); /* nothing written past the end */
    }
    /* bfloat16 -> float32 is exact, and float -> bf16 -> float -> bf16 is stable */
    for (uint32_t b = 0; b < 65536; b++) {
        float f = nb_bf16_to_float((uint16_t)b);
        ck_assert_uint_eq(bits(f), b << 16);
        if (!isnan(f)) ck_assert_uint_eq(nb_float_to_bf16(f), b);
    }
}
END_TEST

START_TEST(test_to_dtype) {
    nb_arena *ar = nb_arena_new(0);
    float v[5] = {1.0f, 1.00390625f, -2.5f, 1e-40f, NAN};
    nb_tensor *x = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){5}, v);
    ck_assert_int_eq(nb_requires_grad(x, true), NB_OK);
    nb_tensor *b = nb_to_dtype(ar, x, NB_BF16);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->dtype, NB_BF16);
    ck_assert(nb_tensor_requires_grad(b));
    for (int i = 0; i < 5; i++) ck_assert_uint_eq(nb_bf16(b)[i], nb_float_to_bf16(v[i]));
    ck_assert_ptr_eq(nb_to_dtype(ar, b, NB_BF16), b);
    nb_tensor *f = nb_to_dtype(ar, b, NB_FLOAT32);
    ck_assert_double_eq(nb_item(nb_slice(ar, f, 0, 1, 2)), 1.0); /* the tie went to even */
    nb_tensor *one = nb_empty(ar, NB_BF16, 0, NULL);
    ck_assert_int_eq(nb_fill(one, -2.5f), NB_OK);
    ck_assert_double_eq(nb_item(one), -2.5); /* nb_item and nb_fill know bfloat16 */
    /* the gradient of the bfloat16 tensor is rounded to bfloat16 on its way back */
    float w[5] = {1.00390625f, 3.0f, 0.1f, 1.0f, 0.0f};
    nb_tensor *wt = nb_from_array(ar, NB_FLOAT32, 1, (int64_t[]){5}, w);
    nb_tensor *loss = nb_sum(ar, nb_mul(ar, nb_slice(ar, f, 0, 0, 4), nb_slice(ar, wt, 0, 0, 4)));
    ck_assert_int_eq(nb_backward(loss), NB_OK);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(nb_f32(x->grad)[i], nb_bf16_to_float(nb_float_to_bf16(w[i])));
    /* integers to either float type; float to integer is refused */
    int32_t iv[3] = {-7, 16777217, 255};
    nb_tensor *it = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, iv);
    nb_tensor *itf = nb_to_dtype(ar, it, NB_FLOAT32), *itb = nb_to_dtype(ar, it, NB_BF16);
    ck_assert_float_eq(nb_f32(itf)[0], -7.0f);
    ck_assert_float_eq(nb_f32(itf)[1], 16777216.0f);
    ck_assert_uint_eq(nb_bf16(itb)[2], nb_float_to_bf16(255.0f));
    ck_assert_ptr_null(nb_to_dtype(ar, x, NB_INT32));
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "float32 to int32"));
    /* elementwise ops still want float32 */
    ck_assert_ptr_null(nb_relu(ar, b));
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "bfloat16"));
    nb_tensor_free(x);
    nb_arena_free(ar);
}
END_TEST

/* ---- the GEMM kernels ------------------------------------------------------------------------ */
static const char *const kernels[] = {"amx", "avx512bf16", "emulated"};

static float rnd(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* op(X)[i, j] as the kernels see it: rounded to bfloat16. */
static double opx(const float *X, int64_t ld, bool t, int64_t i, int64_t j) {
    return nb_bf16_to_float(nb_float_to_bf16(t ? X[j * ld + i] : X[i * ld + j]));
}

/* C = alpha op(A) op(B) + beta C with every kernel this CPU runs, for shapes around the block
 * edges, both transpositions, beta 0 over NaN garbage and beta 1: close to the double-precision
 * product of the rounded operands (float32 sums: |error| <= K 2^-23 sum |a b|), the emulated
 * kernel exactly equal to a float32 replay of its order, and the same bits whatever the number
 * of threads. */
START_TEST(test_gemm_kernels) {
    static const int64_t shapes[][3] = {{1, 1, 1},  {3, 5, 7},     {16, 16, 32},  {17, 33, 31},
                                        {64, 128, 784}, {100, 40, 1030}, {33, 600, 65}, {8, 32, 2}};
    int ran = 0;
    for (int kn = 0; kn < 3; kn++) {
        if (!nb__k_bf16_force(kernels[kn])) {
            printf("bf16 kernel %s: not on this CPU\n", kernels[kn]);
            continue;
        }
        ran++;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int tr = 0; tr < 4; tr++) {
                bool ta = tr & 1, tb = tr & 2;
                int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
                float *A = malloc(sizeof(float) * (size_t)((ta ? K : M) * lda));
                float *B = malloc(sizeof(float) * (size_t)((tb ? N : K) * ldb));
                float *C[3];
                uint32_t s = (uint32_t)(si * 4 + (size_t)tr + 1);
                for (int64_t i = 0; i < (ta ? K : M) * lda; i++) A[i] = rnd(&s);
                for (int64_t i = 0; i < (tb ? N : K) * ldb; i++) B[i] = rnd(&s) * 3.0f;
                for (int t = 0; t < 3; t++) {
                    C[t] = malloc(sizeof(float) * (size_t)(M * ldc));
                    for (int64_t i = 0; i < M * ldc; i++) C[t][i] = NAN; /* beta 0: never read */
                    ck_assert_int_eq(nb_set_num_threads(t + 1), NB_OK);
                    nb_k_gemm_as(NB_BF16, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C[t], ldc);
                    nb_k_gemm_as(NB_BF16, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, C[t], ldc);
                }
                nb_set_num_threads(1);
                for (int t = 1; t < 3; t++)
                    for (int64_t i = 0; i < M; i++)
                        ck_assert_msg(!memcmp(C[t] + i * ldc, C[0] + i * ldc, sizeof(float) * (size_t)N),
                                      "%s %lldx%lldx%lld: %d threads differ", kernels[kn], (long long)M,
                                      (long long)N, (long long)K, t + 1);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double ref = 0, mag = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double p = opx(A, lda, ta, i, k) * opx(B, ldb, tb, k, j);
                            ref += p;
                            mag += fabs(p);
                        }
                        double got = C[0][i * ldc + j], want = 1.5 * ref;
                        ck_assert_msg(fabs(got - want) <= 1.5 * (double)(K + 2) * 0x1p-23 * mag + 1e-30,
                                      "%s %lldx%lldx%lld ta %d tb %d: C[%lld, %lld] = %.9g, expected %.9g",
                                      kernels[kn], (long long)M, (long long)N, (long long)K, ta, tb,
                                      (long long)i, (long long)j, got, want);
                    }
                if (!strcmp(kernels[kn], "emulated") && K <= 256) /* one block of k: replay it */
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            float acc = 0.0f;
                            for (int64_t k = 0; k < K; k++)
                                acc += (float)(opx(A, lda, ta, i, k) * opx(B, ldb, tb, k, j));
                            ck_assert_msg(C[0][i * ldc + j] == 0.5f * acc + 1.0f * acc,
                                          "emulated: C[%lld, %lld]", (long long)i, (long long)j);
                        }
                free(A);
                free(B);
                for (int t = 0; t < 3; t++) free(C[t]);
            }
    }
    ck_assert(nb__k_bf16_force(NULL));
    ck_assert_int_ge(ran, 1);
}
END_TEST

/* bfloat16 operands are used as they are, float32 ones rounded: the same product. */
START_TEST(test_gemm_bf16_operands) {
    int64_t M = 37, N = 45, K = 70;
    float *A = malloc(sizeof(float) * (size_t)(M * K)), *B = malloc(sizeof(float) * (size_t)(K * N));
    uint16_t *A16 = malloc(sizeof(uint16_t) * (size_t)(M * K)), *B16 = malloc(sizeof(uint16_t) * (size_t)(K * N));
    float *C1 = malloc(sizeof(float) * (size_t)(M * N)), *C2 = malloc(sizeof(float) * (size_t)(M * N));
    uint32_t s = 7;
    for (int64_t i = 0; i < M * K; i++) A[i] = rnd(&s);
    for (int64_t i = 0; i < K * N; i++) B[i] = rnd(&s);
    nb_k_f32_to_bf16(A16, A, M * K);
    nb_k_f32_to_bf16(B16, B, K * N);
    for (int kn = 0; kn < 3; kn++) {
        if (!nb__k_bf16_force(kernels[kn])) continue;
        for (int tb = 0; tb < 2; tb++) {
            int64_t ldb = tb ? K : N;
            nb_k_gemm_as(NB_BF16, false, tb, M, N, K, 1.0f, A, K, B, ldb, 0.0f, C1, N);
            nb_k_gemm_ex(NB_BF16, false, tb, M, N, K, 1.0f, (nb_k_operand){A16, NB_BF16, K},
                         (nb_k_operand){B16, NB_BF16, ldb}, 0.0f, C2, N);
            ck_assert_msg(!memcmp(C1, C2, sizeof(float) * (size_t)(M * N)), "%s tb %d", kernels[kn], tb);
            /* a float32 operand with a bfloat16 one: bfloat16 products */
            nb_k_gemm_ex(NB_FLOAT32, false, tb, M, N, K, 1.0f, nb_k_f32_operand(A, K),
                         (nb_k_operand){B16, NB_BF16, ldb}, 0.0f, C2, N);
            ck_assert_msg(!memcmp(C1, C2, sizeof(float) * (size_t)(M * N)), "%s mixed tb %d", kernels[kn], tb);
        }
    }
    nb__k_bf16_force(NULL);
    free(A), free(B), free(A16), free(B16), free(C1), free(C2);
}
END_TEST

/* ---- autocast: parity with PyTorch 1.13 ------------------------------------------------------
 * PyTorch rounds the float32 sums of a bfloat16 product to bfloat16 (its autocast outputs and
 * the gradients of its bfloat16 casts are bfloat16); nabla keeps the float32 sums. Both start
 * from the same bfloat16 operands (the same rounding of x, W and b, and an upstream gradient
 * that is exactly a bfloat16) and add the same exact products; only the order of the float32
 * additions differs, by a few float32 ulps of the sum. So nabla's value, rounded to bfloat16,
 * is PyTorch's exactly, except where the two sums straddle a bfloat16 rounding boundary: then
 * they are one bfloat16 ulp apart. The test asserts exactly that: every element within one
 * bfloat16 ulp of PyTorch's (elements below 2^-12 of the tensor's largest come out of
 * cancellations between terms as large as it, where the float32 order matters; they are
 * compared against that floor), and 98 % of them equal after rounding (a boundary is hit
 * about once in 2^8 / (K 2^-16) elements; 98 % leaves room for K up to ~300). */
static double bf16_ulp(float v) {
    int e;
    frexpf(fabsf(v) > 0 ? fabsf(v) : 1e-30f, &e);
    return ldexp(1.0, e - 8);
}

static double worst_exact = 1.0; /* the smallest fraction equal after rounding */
static int64_t off_by_one;        /* elements one bfloat16 ulp from PyTorch's */

static void assert_bf16_parity(const char *what, const float *got, const gold_entry *e) {
    const float *want = e->data;
    double scale = 0;
    for (int64_t i = 0; i < e->numel; i++) scale = fmax(scale, fabs(want[i]));
    int64_t exact = 0;
    for (int64_t i = 0; i < e->numel; i++) {
        float r = nb_bf16_to_float(nb_float_to_bf16(got[i]));
        if (r == want[i]) {
            exact++;
            continue;
        }
        double tol = fmax(bf16_ulp(want[i]), 0x1p-12 * scale);
        ck_assert_msg(fabs((double)got[i] - want[i]) <= tol,
                      "%s[%lld]: nabla %.9g (bf16 %.9g), PyTorch %.9g: beyond one bfloat16 ulp",
                      what, (long long)i, got[i], r, want[i]);
    }
    ck_assert_msg(exact >= 0.98 * (double)e->numel, "%s: only %lld of %lld equal after rounding",
                  what, (long long)exact, (long long)e->numel);
    worst_exact = fmin(worst_exact, (double)exact / (double)e->numel);
    off_by_one += e->numel - exact;
}

static const char *const cases[] = {"lin", "lin2", "conv1", "conv2", "conv3"};

static void parity_case(const golden *g, const char *c) {
    char k[64];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", c, s), k)
    int kind = ((const int32_t *)golden_get(g, KEY("kind"))->data)[0];
    const int32_t *args = golden_get(g, KEY("args"))->data;
    nb_tensor *x = golden_tensor(g, KEY("x")), *w = golden_tensor(g, KEY("w")), *b = golden_tensor(g, KEY("b"));
    nb_tensor *gy = golden_tensor(g, KEY("gy"));
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_arena *ar = nb_arena_new(0);
    ck_assert_int_eq(nb_arena_set_autocast(ar, NB_BF16), NB_OK);
    nb_tensor *y;
    if (kind == 0) {
        y = nb_linear(ar, x, w, b);
    } else {
        nb_conv_opts o = nb_conv_defaults();
        o.stride[0] = o.stride[1] = args[3];
        o.padding[0] = o.padding[1] = args[4];
        y = nb_conv2d(ar, x, w, b, &o);
    }
    ck_assert_msg(y != NULL, "%s: %s", c, nb_last_error());
    ck_assert_int_eq(nb_backward_grad(y, gy), NB_OK);
    char what[96];
    const char *names[4] = {"y", "gx", "gw", "gb"};
    const nb_tensor *got[4] = {y, x->grad, w->grad, b->grad};
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "%s (%s kernel) %s", c, nb_k_bf16_kernel(), names[i]);
        ck_assert_int_eq(got[i]->numel, golden_get(g, KEY(names[i]))->numel);
        assert_bf16_parity(what, nb_f32(got[i]), golden_get(g, KEY(names[i])));
    }
#undef KEY
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
    nb_tensor_free(gy);
}

START_TEST(test_autocast_parity_with_pytorch) {
    golden *g = golden_load("bf16.nbg.gz");
    int ran = 0;
    for (int kn = 0; kn < 3; kn++) {
        if (!nb__k_bf16_force(kernels[kn])) continue;
        ran++;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) parity_case(g, cases[i]);
    }
    nb__k_bf16_force(NULL);
    ck_assert_int_ge(ran, 1);
    printf("bf16 parity (%d kernels): at least %.2f %% of each tensor equal to PyTorch's after "
           "rounding, %lld elements one bfloat16 ulp apart\n", ran, 100 * worst_exact, (long long)off_by_one);
    golden_free(g);
}
END_TEST

/* Without autocast the same ops are float32 again, and autocast is a setting of the arena:
 * kept across resets, refused for other dtypes. */
START_TEST(test_autocast_scope) {
    nb_arena *ar = nb_arena_new(0);
    ck_assert_int_eq(nb_arena_autocast(ar), NB_FLOAT32);
    ck_assert_int_eq(nb_arena_set_autocast(ar, NB_INT32), NB_EINVAL);
    ck_assert_ptr_nonnull(strstr(nb_last_error(), "bfloat16"));
    float xv[3] = {1.00390625f, 1.0f, 3.0f}, wv[3] = {1.0f, 1.00390625f, 0.0f};
    nb_tensor *x = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){1, 3}, xv);
    nb_tensor *w = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){1, 3}, wv);
    ck_assert_float_eq(nb_f32(nb_linear(ar, x, w, NULL))[0], 1.00390625f + 1.00390625f);
    ck_assert_int_eq(nb_arena_set_autocast(ar, NB_BF16), NB_OK);
    nb_arena_reset(ar);
    ck_assert_int_eq(nb_arena_autocast(ar), NB_BF16);
    x = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){1, 3}, xv);
    w = nb_from_array(ar, NB_FLOAT32, 2, (int64_t[]){1, 3}, wv);
    ck_assert_float_eq(nb_f32(nb_linear(ar, x, w, NULL))[0], 2.0f); /* 1 + 2^-8 rounds to 1 */
    ck_assert_float_eq(nb_f32(nb_matmul(ar, x, nb_transpose(ar, w, 0, 1)))[0], 2.0f);
    ck_assert_int_eq(nb_arena_set_autocast(ar, NB_FLOAT32), NB_OK);
    ck_assert_float_eq(nb_f32(nb_matmul(ar, x, nb_transpose(ar, w, 0, 1)))[0], 1.00390625f + 1.00390625f);
    nb_arena_free(ar);
}
END_TEST

/* The thread count never changes a bit under autocast either: a LeNet-5 step (the direct
 * convolutions, pooling, the linears; forward, backward into the parameters' gradients) on 1, 2
 * and 3 threads, with every bfloat16 kernel this CPU runs and in float32. */
static float *lenet_grads(int threads, bool bf16, int64_t *n) {
    ck_assert_int_eq(nb_set_num_threads(threads), NB_OK);
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_conv_opts p2 = nb_conv_defaults();
    p2.padding[0] = p2.padding[1] = 2;
    nb_module *m = nb_sequential(
        9, (nb_module *[]){nb_conv2d_new(1, 6, 5, 5, &p2, true, &rng), nb_relu_new(),
                           nb_max_pool2d_new(2, 2, NULL), nb_conv2d_new(6, 16, 5, 5, NULL, true, &rng),
                           nb_relu_new(), nb_max_pool2d_new(2, 2, NULL), nb_flatten_new(1, -1),
                           nb_linear_new(400, 120, true, &rng), nb_linear_new(120, 10, true, &rng)});
    nb_tensor *x = nb_uniform(NULL, 4, (int64_t[]){64, 1, 28, 28}, 0, 1, &rng);
    nb_tensor *y = nb_empty(NULL, NB_INT32, 1, (int64_t[]){64});
    for (int i = 0; i < 64; i++) nb_i32(y)[i] = i % 10;
    nb_arena *ar = nb_arena_new(0);
    nb_arena_set_autocast(ar, bf16 ? NB_BF16 : NB_FLOAT32);
    nb_tensor *params[16];
    int np = nb_module_parameters(m, params, 16);
    for (int rep = 0; rep < 2; rep++) { /* the second backward adds to the first */
        nb_arena_reset(ar);
        ck_assert_int_eq(nb_backward(nb_cross_entropy(ar, nb_forward(m, ar, x), y, NULL)), NB_OK);
    }
    *n = nb_module_numel(m);
    float *g = malloc(sizeof(float) * (size_t)*n), *at = g;
    for (int i = 0; i < np; i++, at += params[i - 1]->numel)
        memcpy(at, params[i]->grad->data, sizeof(float) * (size_t)params[i]->numel);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(y);
    nb_module_free(m);
    ck_assert_int_eq(nb_set_num_threads(1), NB_OK);
    return g;
}

START_TEST(test_threads_bit_identical) {
    for (int kn = -1; kn < 3; kn++) {
        if (kn >= 0 && !nb__k_bf16_force(kernels[kn])) continue;
        int64_t n;
        float *g1 = lenet_grads(1, kn >= 0, &n);
        for (int t = 2; t <= 3; t++) {
            float *gt = lenet_grads(t, kn >= 0, &n);
            ck_assert_msg(!memcmp(g1, gt, sizeof(float) * (size_t)n), "%s: %d threads differ",
                          kn >= 0 ? kernels[kn] : "float32", t);
            free(gt);
        }
        free(g1);
    }
    nb__k_bf16_force(NULL);
}
END_TEST

/* The AMX convolution kernels against the emulated path on shapes around their edges: input
 * channels 1, 6, 17 (no divisor up to 16: chunks of kernel rows), 20 (chunks of 10) and 32,
 * output channels past 16, groups, dilation, padding, even and odd kernels, 1-D. Both form the
 * same exact products of the same bfloat16 numbers and sum them in float32 in different
 * orders: the results agree to float32 rounding (1e-5 of the tensor's scale). */
typedef struct conv_case {
    int64_t N, C, H, W, O, kh, kw, pad, dil, groups;
    bool one_d;
} conv_case;

static void conv_bf16_run(const conv_case *c, nb_tensor **out) {
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    nb_tensor *x = c->one_d ? nb_uniform(NULL, 3, (int64_t[]){c->N, c->C, c->W}, -1, 1, &rng)
                            : nb_uniform(NULL, 4, (int64_t[]){c->N, c->C, c->H, c->W}, -1, 1, &rng);
    nb_tensor *w = c->one_d ? nb_uniform(NULL, 3, (int64_t[]){c->O, c->C / c->groups, c->kw}, -1, 1, &rng)
                            : nb_uniform(NULL, 4, (int64_t[]){c->O, c->C / c->groups, c->kh, c->kw}, -1, 1, &rng);
    nb_tensor *b = nb_uniform(NULL, 1, (int64_t[]){c->O}, -1, 1, &rng);
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_arena *ar = nb_arena_new(0);
    nb_arena_set_autocast(ar, NB_BF16);
    nb_conv_opts o = nb_conv_defaults();
    o.padding[0] = o.padding[1] = c->pad;
    o.dilation[0] = o.dilation[1] = c->dil;
    o.groups = c->groups;
    nb_tensor *y = c->one_d ? nb_conv1d(ar, x, w, b, &o) : nb_conv2d(ar, x, w, b, &o);
    ck_assert_msg(y != NULL, "%s", nb_last_error());
    ck_assert_int_eq(nb_backward_grad(y, nb_uniform(ar, y->ndim, y->shape, -1, 1, &rng)), NB_OK);
    out[0] = nb_clone(NULL, y);
    out[1] = nb_clone(NULL, x->grad);
    out[2] = nb_clone(NULL, w->grad);
    out[3] = nb_clone(NULL, b->grad);
    nb_arena_free(ar);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
}

START_TEST(test_conv_tiles_match_emulation) {
    if (!nb__k_bf16_force("amx")) NB_SKIP("no AMX kernel here (the CPU, the OS or the build lacks it)");
    static const conv_case cases[] = {
        {3, 1, 28, 28, 6, 5, 5, 2, 1, 1, false},  {2, 6, 14, 14, 16, 5, 5, 0, 1, 1, false},
        {2, 17, 9, 11, 20, 3, 3, 1, 1, 1, false}, {2, 20, 7, 8, 18, 3, 2, 1, 1, 1, false},
        {2, 32, 6, 6, 8, 3, 3, 1, 1, 2, false},   {2, 4, 12, 13, 5, 3, 3, 2, 2, 1, false},
        {3, 5, 1, 40, 7, 1, 5, 2, 1, 1, true},    {1, 3, 5, 5, 33, 2, 4, 1, 1, 1, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_tensor *t[4], *e[4];
        ck_assert(nb__k_bf16_force("amx"));
        conv_bf16_run(&cases[i], t);
        ck_assert(nb__k_bf16_force("emulated"));
        conv_bf16_run(&cases[i], e);
        static const char *const names[4] = {"y", "dx", "dW", "db"};
        for (int k = 0; k < 4; k++) {
            double scale = 0;
            for (int64_t j = 0; j < e[k]->numel; j++) scale = fmax(scale, fabs(nb_f32(e[k])[j]));
            char what[64];
            snprintf(what, sizeof what, "conv case %zu %s", i, names[k]);
            assert_close(what, nb_f32(t[k]), nb_f32(e[k]), e[k]->numel, 0, 1e-5 * scale);
            nb_tensor_free(t[k]);
            nb_tensor_free(e[k]);
        }
    }
    nb__k_bf16_force(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_conversion_as_torch);
    tcase_add_test(tc, test_to_dtype);
    tcase_add_test(tc, test_gemm_kernels);
    tcase_add_test(tc, test_gemm_bf16_operands);
    tcase_add_test(tc, test_autocast_parity_with_pytorch);
    tcase_add_test(tc, test_autocast_scope);
    tcase_add_test(tc, test_threads_bit_identical);
    tcase_add_test(tc, test_conv_tiles_match_emulation);
    suite_add_tcase(s, tc);
    printf("bf16 kernel: %s\n", nb_k_bf16_kernel());
    return run_suite(s);
}
