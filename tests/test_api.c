/* test_api.c - the contract of the public API (the headers in include/nabla/): NULL pointers
 * and bad counts never crash; functions return NULL, a negative nb_status, NaN or 0, or do
 * nothing (the *_free functions), and report an error where one is due. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "common.h"

/* Looking a name up with a NULL name finds nothing (it was strcmp(NULL)). */
START_TEST(test_lookup_null_name) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_linear_new(2, 2, true, &rng);
    nb_tensor *ps[2];
    nb_sgd_opts o = nb_sgd_defaults();
    nb_optim *opt = nb_sgd(ps, nb_module_parameters(m, ps, 2), &o);
    ck_assert_ptr_null(nb_module_find(m, NULL));
    ck_assert(isnan(nb_optim_get(opt, 0, NULL)));
    ck_assert_ptr_null(nb_optim_get_value(opt, 0, NULL));
    ck_assert(!nb_optim_has_default(opt, NULL));
    ck_assert_int_lt(nb_optim_set(opt, 0, NULL, 1.0), 0);
    ck_assert_double_eq(nb_optim_get(opt, 0, "lr"), 1e-3);
    nb_optim_free(opt);
    nb_module_free(m);
}
END_TEST

/* kaiming_uniform validates the shape before computing the fan (it read a NULL shape). */
START_TEST(test_kaiming_uniform_shape) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    ck_assert_ptr_null(nb_kaiming_uniform(NULL, 2, NULL, 0, &rng));
    ck_assert_str_eq(nb_last_error(), "kaiming_uniform: shape is NULL");
    ck_assert_ptr_null(nb_kaiming_uniform(NULL, 2, (int64_t[]){3, -2}, 0, &rng));
    ck_assert_str_eq(nb_last_error(), "kaiming_uniform: negative size -2 in dim 1");
}
END_TEST

/* User metadata: a NULL array with a count is an error, not a read through NULL. */
START_TEST(test_save_meta_count) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *m = nb_linear_new(2, 2, true, &rng);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.ckpt", temp_dir());
    ck_assert_int_eq(nb_weights_save(path, m, NULL, 2), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: meta is NULL but nmeta is 2");
    nb_meta meta[1] = {{"k", "v"}};
    ck_assert_int_eq(nb_weights_save(path, m, meta, -1), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "checkpoint: nmeta must be >= 0, got -1");
    ck_assert_int_eq(access(path, F_OK), -1); /* nothing written */
    nb_module_free(m);
}
END_TEST

/* Sequential with a negative count says so (it returned NULL with no error). */
START_TEST(test_sequential_negative_count) {
    nb_clear_error();
    ck_assert_ptr_null(nb_sequential(-1, NULL));
    ck_assert_str_eq(nb_last_error(), "Sequential: n must be >= 0, got -1");
}
END_TEST

/* A module needs its ops (type, forward...): NULL ops made modules that crashed in
 * nb_forward and nb_module_repr. */
START_TEST(test_module_alloc_ops) {
    ck_assert_ptr_null(nb_module_alloc(sizeof(nb_module), NULL));
    ck_assert_str_eq(nb_last_error(), "module_alloc: ops or ops->type is NULL");
    static const nb_module_ops untyped = {NULL, NULL, NULL, NULL};
    ck_assert_ptr_null(nb_module_alloc(sizeof(nb_module), &untyped));
    ck_assert_ptr_null(nb_module_alloc(8, &untyped));
    ck_assert_msg(strstr(nb_last_error(), "module_alloc: size 8 is smaller than an nb_module"),
                  "%s", nb_last_error());
}
END_TEST

int main(void) {
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("contract");
    tcase_add_test(tc, test_lookup_null_name);
    tcase_add_test(tc, test_kaiming_uniform_shape);
    tcase_add_test(tc, test_save_meta_count);
    tcase_add_test(tc, test_sequential_negative_count);
    tcase_add_test(tc, test_module_alloc_ops);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
