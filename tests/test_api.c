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

/* e is NULL and the error untouched (a NULL input is not a new error). */
#define QUIET_NULL(e)                                                                        \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        ck_assert_msg((e) == NULL, "%s did not return NULL", #e);                            \
        ck_assert_msg(nb_last_status() == NB_OK, "%s set an error: %s", #e, nb_last_error()); \
    } while (0)
/* e returns v and sets no error (getters of a NULL object). */
#define QUIET_EQ(e, v)                                                                       \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        ck_assert_msg((e) == (v), "%s is not %s", #e, #v);                                   \
        ck_assert_msg(nb_last_status() == NB_OK, "%s set an error: %s", #e, nb_last_error()); \
    } while (0)
#define QUIET_NAN(e)                                                                         \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        ck_assert_msg(isnan(e), "%s is not NaN", #e);                                        \
        ck_assert_msg(nb_last_status() == NB_OK, "%s set an error: %s", #e, nb_last_error()); \
    } while (0)
/* e (a statement) sets an error with a message. */
#define SETS_ERROR(e)                                                                        \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        e;                                                                                   \
        ck_assert_msg(nb_last_status() < 0 && nb_last_error()[0], "%s set no error", #e);   \
    } while (0)
/* e returns NULL and sets an error. */
#define FAILS_NULL(e) SETS_ERROR(ck_assert_msg((e) == NULL, "%s did not return NULL", #e))
/* e returns a negative nb_status, the one nb_last_status() reports. */
#define FAILS(e)                                                                             \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        int rc_ = (int)(e);                                                                  \
        ck_assert_msg(rc_ < 0, "%s returned %d", #e, rc_);                                   \
        ck_assert_msg(rc_ == (int)nb_last_status() && nb_last_error()[0],                    \
                      "%s returned %d, last error %d \"%s\"", #e, rc_, (int)nb_last_status(), \
                      nb_last_error());                                                      \
    } while (0)
/* A void call with nothing to do. */
#define NOOP(e)                                                                              \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        e;                                                                                   \
        ck_assert_msg(nb_last_status() == NB_OK, "%s set an error: %s", #e, nb_last_error()); \
    } while (0)

static void *makes(void *p, const char *what) {
    ck_assert_msg(p != NULL, "%s returned NULL: %s", what, nb_last_error());
    return p;
}
#define MAKES(e) makes((e), #e)

/* ---- every pointer NULL (and every number 0) ------------------------------------------- */
START_TEST(test_null_everywhere) {
    /* autograd.h */
    FAILS(nb_backward(NULL));
    FAILS(nb_backward_grad(NULL, NULL));
    FAILS(nb_requires_grad(NULL, false));
    QUIET_EQ(nb_tensor_requires_grad(NULL), 0);
    QUIET_NULL(nb_detach(NULL, NULL));
    QUIET_EQ(nb_set_grad_enabled(false), 1);
    QUIET_EQ(nb_is_grad_enabled(), 0);
    nb_set_grad_enabled(true);
    (void)nb_gradcheck_defaults();
    FAILS(nb_gradcheck(NULL, 0, NULL, NULL, NULL));
    FAILS(nb_graph_dot(NULL, NULL));
    FAILS(nb_graph_dot_opts(NULL, NULL, NULL));
    (void)nb_graph_defaults();
    FAILS(nb_set_grad_hook(NULL, NULL, NULL));
    FAILS(nb_backward_queue_callback(NULL, NULL));
    /* dist.h (NULL process groups and wrappers; in a build without MPI the same calls fail
     * because MPI is missing) */
    QUIET_EQ(nb_dist_rank(NULL), 0);
    QUIET_EQ(nb_dist_world_size(NULL), 1);
    FAILS(nb_dist_set_timeout(NULL, 1));
    FAILS(nb_dist_barrier(NULL));
    FAILS(nb_dist_broadcast(NULL, NULL, 0, 0));
    FAILS(nb_dist_allreduce_sum(NULL, NULL, 0));
    FAILS(nb_dist_check_same(NULL, NULL, NULL));
    FAILS(nb_dist_check_optim(NULL, NULL));
    NOOP(nb_dist_abort(NULL, 1));
    NOOP(nb_dist_free(NULL));
    FAILS_NULL(nb_ddp_new(NULL, NULL, NULL));
    QUIET_EQ(nb_ddp_set_sync(NULL, false), 1);
    FAILS(nb_ddp_sync_buffers(NULL));
    QUIET_EQ(nb_ddp_get_stats(NULL).backwards, 0);
    NOOP(nb_ddp_free(NULL));
    /* core.h */
    ck_assert_ptr_nonnull(nb_version());
    nb_arena_free(MAKES(nb_arena_new(0)));
    NOOP(nb_arena_reset(NULL));
    QUIET_EQ(nb_arena_used(NULL), 0);
    QUIET_EQ(nb_arena_peak(NULL), 0);
    FAILS(nb_arena_set_autocast(NULL, NB_BF16));
    QUIET_EQ(nb_arena_autocast(NULL), NB_FLOAT32);
    NOOP(nb_arena_free(NULL));
    SETS_ERROR(nb_rng_seed(NULL, 0));
    SETS_ERROR(ck_assert_uint_eq(nb_rng_u32(NULL), 0));
    SETS_ERROR(ck_assert(isnan(nb_rng_uniform(NULL))));
    SETS_ERROR(ck_assert(isnan(nb_rng_uniform_double(NULL))));
    SETS_ERROR(ck_assert(isnan(nb_rng_normal(NULL))));
    SETS_ERROR(ck_assert_uint_eq(nb_rng_below(NULL, 0), 0));
    NOOP(nb_randperm(NULL, 0, NULL)); /* nothing to draw */
    FAILS(nb_set_num_threads(0));
    QUIET_EQ(nb_get_num_threads(), 1);
    ck_assert_ptr_nonnull(nb_blas_backend());
    /* data.h */
    FAILS_NULL(nb_idx_load(NULL));
    FAILS_NULL(nb_idx_parse(NULL, 0, NULL));
    FAILS(nb_mnist_load(NULL, NULL, NULL));
    NOOP(nb_mnist_free(NULL));
    ck_assert_ptr_nonnull(nb_default_data_dir());
    (void)nb_loader_defaults();
    FAILS_NULL(nb_loader_new(NULL, NULL, NULL));
    FAILS(nb_loader_next(NULL, NULL, NULL, NULL));
    QUIET_EQ(nb_loader_num_batches(NULL), 0);
    QUIET_EQ(nb_loader_num_samples(NULL), 0);
    (void)nb_loader_get_state(NULL);
    FAILS(nb_loader_set_state(NULL, NULL));
    NOOP(nb_loader_free(NULL));
    FAILS_NULL(nb_loader_over(NULL, NULL, NULL));
    QUIET_EQ(nb_loader_dataset(NULL), NULL);
    QUIET_EQ(nb_dataset_len(NULL), 0);
    FAILS(nb_dataset_get(NULL, NULL, 0, NULL, NULL));
    NOOP(nb_dataset_free(NULL));
    FAILS_NULL(nb_dataset_alloc(0, NULL, 0, 0, NULL, NB_CLASSIFY, 0));
    FAILS_NULL(nb_dataset_images(NULL, NULL, 0));
    FAILS_NULL(nb_dataset_mnist(NULL, NULL));
    FAILS_NULL(nb_dataset_arrays(NULL, 0, NULL, NULL, NB_CLASSIFY, 0));
    FAILS_NULL(nb_dataset_tensors(NULL, NULL, 0));
    FAILS_NULL(nb_dataset_subset(NULL, NULL, 0));
    FAILS(nb_random_split(NULL, NULL, 0, NULL, NULL));
    FAILS(nb_split_lengths(0, NULL, 0, NULL));
    FAILS(nb_dataset_fit_standardize(NULL, NULL, NULL));
    FAILS(nb_dataset_normalize(NULL, NULL, NULL));
    FAILS_NULL(nb_subset_random_sampler(NULL, 3, 0));
    FAILS_NULL(nb_sequential_sampler(-1));
    FAILS(nb_sampler_set_epoch(NULL, 0));
    QUIET_EQ(nb_sampler_len(NULL), 0);
    FAILS(nb_sampler_indices(NULL, NULL));
    (void)nb_read_defaults();
    FAILS_NULL(nb_dataset_csv(NULL, NULL, NULL));
    FAILS_NULL(nb_csv_parse(NULL, 0, NULL, NULL));
    FAILS_NULL(nb_dataset_npy(NULL, NULL, NULL));
    FAILS_NULL(nb_npy_parse(NULL, 0, NULL, 0, NULL, NULL));
    NOOP(nb_sampler_free(NULL));
    /* error.h */
    ck_assert_str_eq(nb_last_error(), "");
    QUIET_EQ(nb_last_status(), NB_OK);
    NOOP(nb_clear_error());
    ck_assert_ptr_nonnull(nb_status_str(NB_EINVAL));
    /* io.h */
    FAILS(nb_checkpoint_save(NULL, NULL));
    FAILS(nb_checkpoint_load(NULL, NULL));
    FAILS(nb_weights_save(NULL, NULL, NULL, 0));
    FAILS(nb_weights_load(NULL, NULL));
    FAILS_NULL(nb_ckpt_open(NULL));
    FAILS_NULL(nb_ckpt_parse(NULL, 0));
    QUIET_EQ(nb_ckpt_num_tensors(NULL), 0);
    FAILS(nb_ckpt_tensor_at(NULL, 0, NULL));
    FAILS(nb_ckpt_find(NULL, NULL, NULL));
    QUIET_EQ(nb_ckpt_num_meta(NULL), 0);
    FAILS(nb_ckpt_meta_at(NULL, 0, NULL, NULL));
    QUIET_NULL(nb_ckpt_meta(NULL, NULL));
    FAILS(nb_ckpt_apply(NULL, NULL));
    NOOP(nb_ckpt_close(NULL));
    FAILS(nb_weights_load_averaged(NULL, NULL));
    FAILS(nb_ckpt_apply_averaged(NULL, NULL));
    /* loss.h */
    (void)nb_cross_entropy_defaults();
    QUIET_NULL(nb_cross_entropy(NULL, NULL, NULL, NULL));
    QUIET_NULL(nb_nll_loss(NULL, NULL, NULL, NULL));
    QUIET_NULL(nb_mse_loss(NULL, NULL, NULL, NB_REDUCTION_MEAN));
    QUIET_NULL(nb_l1_loss(NULL, NULL, NULL, NB_REDUCTION_MEAN));
    QUIET_NULL(nb_smooth_l1_loss(NULL, NULL, NULL, NB_REDUCTION_MEAN, 0));
    QUIET_NULL(nb_huber_loss(NULL, NULL, NULL, NB_REDUCTION_MEAN, 0));
    QUIET_NULL(nb_binary_cross_entropy(NULL, NULL, NULL, NULL, NB_REDUCTION_MEAN));
    QUIET_NULL(nb_binary_cross_entropy_with_logits(NULL, NULL, NULL, NULL, NULL, NB_REDUCTION_MEAN));
    QUIET_NULL(nb_kl_div(NULL, NULL, NULL, NB_REDUCTION_MEAN, false));
    /* nn.h */
    QUIET_NULL(nb_forward(NULL, NULL, NULL));
    NOOP(nb_module_train(NULL, false));
    QUIET_EQ(nb_module_num_params(NULL), 0);
    QUIET_EQ(nb_module_numel(NULL), 0);
    (void)nb_module_param(NULL, 0);
    QUIET_EQ(nb_module_state(NULL, NULL), 0);
    QUIET_EQ(nb_module_parameters(NULL, NULL, 0), 0);
    QUIET_NULL(nb_module_find(NULL, NULL));
    QUIET_EQ(nb_module_repr(NULL, NULL, 0), 6); /* strlen("(null)") */
    NOOP(nb_module_zero_grad(NULL, false));
    NOOP(nb_module_free(NULL));
    FAILS_NULL(nb_batch_split_new(NULL, 2));
    FAILS(nb_batch_split_step(NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    NOOP(nb_batch_split_free(NULL));
    FAILS_NULL(nb_linear_new(0, 0, false, NULL));
    nb_module_free(MAKES(nb_sequential(0, NULL))); /* an empty nn.Sequential() */
    QUIET_NULL(nb_module_child(NULL, 0));
    FAILS_NULL(nb_dropout_new(0, NULL));
    FAILS_NULL(nb_embedding_new(0, 0, 0, NULL));
    (void)nb_rnn_defaults();
    FAILS_NULL(nb_rnn_new(0, 0, NULL, NULL));
    FAILS_NULL(nb_lstm_new(0, 0, NULL, NULL));
    FAILS_NULL(nb_gru_new(0, 0, NULL, NULL));
    FAILS_NULL(nb_rnn_forward(NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    FAILS_NULL(nb_rnn_cell_new(0, 0, false, false, NULL));
    FAILS_NULL(nb_lstm_cell_new(0, 0, false, NULL));
    FAILS_NULL(nb_gru_cell_new(0, 0, false, NULL));
    FAILS_NULL(nb_rnn_cell_forward(NULL, NULL, NULL, NULL, NULL, NULL));
    nb_module_free(MAKES(nb_select_new(0, 0)));
    nb_module_free(MAKES(nb_relu_new()));
    nb_module_free(MAKES(nb_leaky_relu_new(0)));
    nb_module_free(MAKES(nb_tanh_new()));
    nb_module_free(MAKES(nb_sigmoid_new()));
    nb_module_free(MAKES(nb_gelu_new()));
    nb_module_free(MAKES(nb_softmax_new(0)));
    nb_module_free(MAKES(nb_log_softmax_new(0)));
    nb_module_free(MAKES(nb_flatten_new(0, 0)));
    nb_module_free(MAKES(nb_elu_new(0)));
    nb_module_free(MAKES(nb_silu_new()));
    nb_module_free(MAKES(nb_identity_new()));
    FAILS_NULL(nb_conv2d_new(0, 0, 0, 0, NULL, false, NULL));
    FAILS_NULL(nb_conv1d_new(0, 0, 0, NULL, false, NULL));
    FAILS_NULL(nb_max_pool2d_new(0, 0, NULL));
    FAILS_NULL(nb_avg_pool2d_new(0, 0, NULL));
    nb_module_free(MAKES(nb_adaptive_avg_pool2d_new(0, 0))); /* output size 0 is valid */
    (void)nb_batchnorm_defaults();
    FAILS_NULL(nb_batchnorm1d_new(0, NULL));
    FAILS_NULL(nb_batchnorm2d_new(0, NULL));
    FAILS_NULL(nb_layernorm_new(0, NULL, 0, false));
    FAILS_NULL(nb_dropout2d_new(0, NULL));
    ck_assert_double_eq(nb_calculate_gain(NULL, 0), sqrt(2.0)); /* NULL: leaky_relu */
    FAILS(nb_init_uniform(NULL, 0, 0, NULL));
    FAILS(nb_init_normal(NULL, 0, 0, NULL));
    FAILS(nb_init_constant(NULL, 0));
    FAILS(nb_init_zeros(NULL));
    FAILS(nb_init_ones(NULL));
    FAILS(nb_init_xavier_uniform(NULL, 0, NULL));
    FAILS(nb_init_xavier_normal(NULL, 0, NULL));
    FAILS(nb_init_kaiming_uniform(NULL, 0, NB_FAN_IN, NULL, NULL));
    FAILS(nb_init_kaiming_normal(NULL, 0, NB_FAN_IN, NULL, NULL));
    FAILS(nb_init_orthogonal(NULL, 0, NULL));
    FAILS_NULL(nb_module_alloc(0, NULL));
    FAILS(nb_module_add_param(NULL, NULL, NULL));
    FAILS(nb_module_add_buffer(NULL, NULL, NULL));
    FAILS(nb_module_add_child(NULL, NULL, NULL));
    FAILS(nb_module_pack(NULL));
    /* optim.h */
    (void)nb_num(NULL, 0);
    (void)nb_int(NULL, 0);
    (void)nb_bool(NULL, false);
    (void)nb_pair(NULL, 0, 0);
    (void)nb_str(NULL, NULL);
    (void)nb_none(NULL);
    QUIET_NULL(nb_value_elems(NULL));
    QUIET_NULL(nb_optim_type(NULL));
    FAILS(nb_optim_add_param_group(NULL, NULL, 0, NULL, 0));
    QUIET_EQ(nb_optim_num_groups(NULL), 0);
    QUIET_EQ(nb_optim_group_size(NULL, 0), -1); /* as for a group out of range */
    QUIET_NULL(nb_optim_group_param(NULL, 0, 0));
    QUIET_NAN(nb_optim_get(NULL, 0, NULL));
    QUIET_NULL(nb_optim_get_value(NULL, 0, NULL));
    FAILS(nb_optim_set(NULL, 0, NULL, 0));
    FAILS(nb_optim_set_elem(NULL, 0, NULL, 0, 0));
    FAILS(nb_optim_put(NULL, 0, NULL));
    QUIET_EQ(nb_optim_has_default(NULL, NULL), 0);
    NOOP(nb_optim_zero_grad(NULL, false));
    FAILS(nb_optim_step(NULL));
    FAILS(nb_optim_step_closure(NULL, NULL, NULL, NULL));
    NOOP(nb_optim_free(NULL));
    FAILS_NULL(nb_optim_state_dict(NULL));
    FAILS(nb_optim_load_state_dict(NULL, NULL));
    NOOP(nb_optim_dict_free(NULL));
    FAILS(nb_clip_grad_norm(NULL, 0, 0, 0, false, NULL));
    QUIET_EQ(nb_clip_grad_value(NULL, 0, 0), 0);
    (void)nb_sgd_defaults();
    FAILS_NULL(nb_sgd(NULL, 0, NULL));
    (void)nb_adam_defaults();
    FAILS_NULL(nb_adam(NULL, 0, NULL));
    FAILS(nb_optim_set_value(NULL, 0, NULL));
    (void)nb_adamw_defaults();
    FAILS_NULL(nb_adamw(NULL, 0, NULL));
    (void)nb_rmsprop_defaults();
    FAILS_NULL(nb_rmsprop(NULL, 0, NULL));
    (void)nb_adagrad_defaults();
    FAILS_NULL(nb_adagrad(NULL, 0, NULL));
    (void)nb_adadelta_defaults();
    FAILS_NULL(nb_adadelta(NULL, 0, NULL));
    (void)nb_adamax_defaults();
    FAILS_NULL(nb_adamax(NULL, 0, NULL));
    (void)nb_nadam_defaults();
    FAILS_NULL(nb_nadam(NULL, 0, NULL));
    (void)nb_radam_defaults();
    FAILS_NULL(nb_radam(NULL, 0, NULL));
    (void)nb_asgd_defaults();
    FAILS_NULL(nb_asgd(NULL, 0, NULL));
    QUIET_NULL(nb_asgd_average(NULL, NULL));
    (void)nb_rprop_defaults();
    FAILS_NULL(nb_rprop(NULL, 0, NULL));
    (void)nb_lbfgs_defaults();
    FAILS_NULL(nb_lbfgs(NULL, 0, NULL));
    (void)nb_adafactor_defaults();
    FAILS_NULL(nb_adafactor(NULL, 0, NULL));
    /* sched.h */
    FAILS(nb_sched_step(NULL));
    FAILS(nb_sched_step_epoch(NULL, 0));
    FAILS(nb_sched_step_metric(NULL, 0));
    QUIET_NAN(nb_sched_last_lr(NULL, 0));
    QUIET_EQ(nb_sched_num_groups(NULL), 0);
    QUIET_EQ(nb_sched_last_epoch(NULL), 0);
    QUIET_NULL(nb_sched_type(NULL));
    QUIET_NULL(nb_sched_optimizer(NULL));
    NOOP(nb_sched_free(NULL));
    FAILS_NULL(nb_sched_state_dict(NULL));
    FAILS(nb_sched_load_state_dict(NULL, NULL));
    NOOP(nb_sched_dict_free(NULL));
    FAILS_NULL(nb_step_lr(NULL, 0, 0));
    FAILS_NULL(nb_multistep_lr(NULL, NULL, 0, 0));
    FAILS_NULL(nb_constant_lr(NULL, 0, 0));
    FAILS_NULL(nb_linear_lr(NULL, 0, 0, 0));
    FAILS_NULL(nb_exponential_lr(NULL, 0));
    FAILS_NULL(nb_polynomial_lr(NULL, 0, 0));
    FAILS_NULL(nb_cosine_annealing_lr(NULL, 0, 0));
    FAILS_NULL(nb_cosine_annealing_warm_restarts(NULL, 0, 0, 0));
    FAILS_NULL(nb_lambda_lr(NULL, NULL, NULL));
    FAILS_NULL(nb_multiplicative_lr(NULL, NULL, NULL));
    (void)nb_onecycle_defaults();
    FAILS_NULL(nb_onecycle_lr(NULL, NULL));
    (void)nb_cyclic_defaults();
    FAILS_NULL(nb_cyclic_lr(NULL, NULL));
    (void)nb_plateau_defaults();
    FAILS_NULL(nb_reduce_lr_on_plateau(NULL, NULL));
    FAILS_NULL(nb_sequential_lr(NULL, NULL, 0, NULL, 0));
    FAILS_NULL(nb_chained_scheduler(NULL, 0));
    (void)nb_swalr_defaults();
    FAILS_NULL(nb_swalr(NULL, NULL));
    (void)nb_averaged_defaults();
    FAILS_NULL(nb_averaged_new(NULL, 0, NULL));
    FAILS(nb_averaged_update(NULL, NULL, 0));
    QUIET_EQ(nb_averaged_count(NULL), 0);
    FAILS(nb_averaged_set_count(NULL, 0));
    QUIET_EQ(nb_averaged_num(NULL), 0);
    QUIET_NULL(nb_averaged_tensor(NULL, 0));
    FAILS(nb_averaged_swap(NULL, NULL, 0));
    FAILS(nb_averaged_copy_to(NULL, NULL, 0));
    NOOP(nb_averaged_free(NULL));
    FAILS_NULL(nb_averaged_state_dict(NULL));
    FAILS(nb_averaged_load_state_dict(NULL, NULL));
    NOOP(nb_averaged_dict_free(NULL));
    /* tensor.h */
    nb_tensor_free(MAKES(nb_empty(NULL, NB_FLOAT32, 0, NULL)));
    nb_tensor_free(MAKES(nb_zeros(NULL, 0, NULL)));
    nb_tensor_free(MAKES(nb_ones(NULL, 0, NULL)));
    nb_tensor_free(MAKES(nb_full(NULL, 0, NULL, 0)));
    FAILS_NULL(nb_from_array(NULL, NB_FLOAT32, 0, NULL, NULL));
    FAILS_NULL(nb_arange(NULL, 0, 0, 0));
    FAILS_NULL(nb_uniform(NULL, 0, NULL, 0, 0, NULL));
    FAILS_NULL(nb_normal(NULL, 0, NULL, 0, 0, NULL));
    FAILS_NULL(nb_kaiming_uniform(NULL, 0, NULL, 0, NULL));
    nb_tensor_free(MAKES(nb_scalar(NULL, 0)));
    QUIET_NULL(nb_clone(NULL, NULL));
    NOOP(nb_tensor_free(NULL));
    QUIET_NAN(nb_item(NULL));
    QUIET_EQ(nb_same_shape(NULL, NULL), 0);
    QUIET_NULL(nb_shape_str(NULL, NULL, 0));
    FAILS(nb_fill(NULL, 0));
    FAILS(nb_copy(NULL, NULL));
    QUIET_EQ(nb_dtype_size(NB_FLOAT32), 4);
    QUIET_EQ(nb_dtype_size(NB_BF16), 2);
    QUIET_NULL(nb_to_dtype(NULL, NULL, NB_BF16));
    ck_assert_ptr_nonnull(nb_bf16_backend());
    QUIET_NULL(nb_reshape(NULL, NULL, 0, NULL));
    QUIET_NULL(nb_view(NULL, NULL, 0, NULL));
    QUIET_NULL(nb_flatten(NULL, NULL, 0, 0));
    QUIET_NULL(nb_add(NULL, NULL, NULL));
    QUIET_NULL(nb_sub(NULL, NULL, NULL));
    QUIET_NULL(nb_mul(NULL, NULL, NULL));
    QUIET_NULL(nb_div(NULL, NULL, NULL));
    QUIET_NULL(nb_add_scalar(NULL, NULL, 0));
    QUIET_NULL(nb_mul_scalar(NULL, NULL, 0));
    QUIET_NULL(nb_neg(NULL, NULL));
    QUIET_NULL(nb_exp(NULL, NULL));
    QUIET_NULL(nb_log(NULL, NULL));
    QUIET_NULL(nb_sqrt(NULL, NULL));
    QUIET_NULL(nb_abs(NULL, NULL));
    QUIET_NULL(nb_pow(NULL, NULL, 0));
    QUIET_NULL(nb_clamp(NULL, NULL, 0, 0));
    QUIET_NULL(nb_relu(NULL, NULL));
    QUIET_NULL(nb_leaky_relu(NULL, NULL, 0));
    QUIET_NULL(nb_tanh(NULL, NULL));
    QUIET_NULL(nb_sigmoid(NULL, NULL));
    QUIET_NULL(nb_gelu(NULL, NULL));
    QUIET_NULL(nb_elu(NULL, NULL, 0));
    QUIET_NULL(nb_silu(NULL, NULL));
    QUIET_NULL(nb_softmax(NULL, NULL, 0));
    QUIET_NULL(nb_log_softmax(NULL, NULL, 0));
    QUIET_NULL(nb_dropout(NULL, NULL, 0, false, NULL));
    QUIET_NULL(nb_dropout2d(NULL, NULL, 0, false, NULL));
    (void)nb_conv_defaults();
    QUIET_NULL(nb_conv2d(NULL, NULL, NULL, NULL, NULL));
    QUIET_NULL(nb_conv1d(NULL, NULL, NULL, NULL, NULL));
    (void)nb_pool_defaults();
    QUIET_NULL(nb_max_pool2d(NULL, NULL, 0, 0, NULL));
    QUIET_NULL(nb_avg_pool2d(NULL, NULL, 0, 0, NULL));
    QUIET_NULL(nb_adaptive_avg_pool2d(NULL, NULL, 0, 0));
    QUIET_NULL(nb_batch_norm(NULL, NULL, NULL, NULL, NULL, NULL, false, 0, 0));
    QUIET_NULL(nb_layer_norm(NULL, NULL, 0, NULL, NULL, NULL, 0));
    QUIET_NULL(nb_matmul(NULL, NULL, NULL));
    QUIET_NULL(nb_transpose(NULL, NULL, 0, 0));
    QUIET_NULL(nb_linear(NULL, NULL, NULL, NULL));
    QUIET_NULL(nb_sum(NULL, NULL));
    QUIET_NULL(nb_mean(NULL, NULL));
    QUIET_NULL(nb_sum_dim(NULL, NULL, 0, false));
    QUIET_NULL(nb_mean_dim(NULL, NULL, 0, false));
    QUIET_NULL(nb_max_dim(NULL, NULL, 0, false));
    QUIET_NULL(nb_max(NULL, NULL));
    QUIET_NULL(nb_argmax(NULL, NULL, 0, false));
    QUIET_NULL(nb_index_select(NULL, NULL, NULL));
    QUIET_NULL(nb_gather(NULL, NULL, NULL));
    QUIET_NULL(nb_select(NULL, NULL, 0, 0));
    QUIET_NULL(nb_embedding(NULL, NULL, NULL, 0));
    FAILS_NULL(nb_cat(NULL, 0, NULL, 0));
    FAILS_NULL(nb_stack(NULL, 0, NULL, 0));
    QUIET_NULL(nb_slice(NULL, NULL, 0, 0, 0));
    QUIET_EQ(nb_split(NULL, NULL, 0, 0, NULL, 0), NB_EINVAL); /* keeps the input's error */
}
END_TEST

/* ---- one pointer NULL at a time, the others valid ---------------------------------------- */
static nb_arena *ar;
static nb_tensor *x, *xs[2], *outs[4];
static int64_t shape[2] = {2, 3};
static nb_rng rng;
static nb_module *mod;
static nb_optim *opt;
static nb_sched *sch;
static nb_loader *ld;
static nb_tensor *images, *labels;
static nb_ckpt *ck;
static char buf[256];
static FILE *devnull;
static nb_mnist mn;
static nb_loader_opts lo;
static nb_loader_state ls;
static nb_train_state ts;
static const nb_meta meta[1] = {{"key", "value"}};
static nb_ckpt_tensor ct;
static const char *cs;
static const nb_named_tensor *nt;
static nb_cross_entropy_opts ceo;
static nb_conv_opts co;
static nb_pool_opts po;
static nb_rnn_opts ro;
static nb_batchnorm_opts bo;
static nb_value val;
static nb_optim_dict *od;
static nb_sched_dict *sd;
static double dbl[4];
static nb_sgd_opts so;
static nb_adam_opts ao;
static nb_onecycle_opts oc;
static nb_cyclic_opts cy;
static nb_plateau_opts pl;
static nb_swalr_opts sw;
static nb_averaged_opts avo;
static nb_averaged *avg;
static nb_averaged_dict *ad;
static nb_adamw_opts adw;
static nb_rmsprop_opts rms;
static nb_adagrad_opts agr;
static nb_adadelta_opts add;
static nb_adamax_opts amx;
static nb_nadam_opts nad;
static nb_radam_opts rad;
static nb_asgd_opts asg;
static nb_rprop_opts rpr;
static nb_lbfgs_opts lbf;
static nb_adafactor_opts afa;
static nb_gradcheck_opts gco;

static nb_tensor *sum_fn(nb_arena *a, nb_tensor *const *in, void *user) {
    (void)user;
    return nb_sum(a, in[0]);
}
static double one_fn(int64_t epoch, int group, void *user) {
    (void)epoch, (void)group, (void)user;
    return 1.0;
}
static double zero_fn(void *user) {
    (void)user;
    return 0.0;
}

static void objects_new(void) {
    ar = nb_arena_new(0);
    nb_rng_seed(&rng, 0);
    x = nb_ones(NULL, 2, shape);
    nb_requires_grad(x, true);
    xs[0] = x;
    xs[1] = nb_ones(NULL, 2, shape);
    mod = nb_linear_new(3, 2, true, &rng);
    nb_tensor *ps[2];
    int np = nb_module_parameters(mod, ps, 2);
    so = nb_sgd_defaults();
    ao = nb_adam_defaults();
    opt = nb_sgd(ps, np, &so);
    sch = nb_step_lr(opt, 2, 0.5);
    images = nb_empty(NULL, NB_UINT8, 3, (int64_t[]){4, 2, 2});
    labels = nb_empty(NULL, NB_UINT8, 1, (int64_t[]){4});
    memset(images->data, 1, 16);
    memset(labels->data, 1, 4);
    lo = nb_loader_defaults();
    ld = nb_loader_new(images, labels, &lo);
    devnull = fopen("/dev/null", "w");
    ts = (nb_train_state){.model = mod, .optim = opt};
    char path[4096];
    snprintf(path, sizeof path, "%s/api.ckpt", temp_dir());
    ck_assert_int_eq(nb_weights_save(path, mod, NULL, 0), NB_OK);
    ck = nb_ckpt_open(path);
    ceo = nb_cross_entropy_defaults();
    co = nb_conv_defaults();
    po = nb_pool_defaults();
    ro = nb_rnn_defaults();
    bo = nb_batchnorm_defaults();
    val = nb_num("lr", 0.1);
    od = nb_optim_state_dict(opt);
    sd = nb_sched_state_dict(sch);
    oc = nb_onecycle_defaults();
    oc.max_lr = 0.1;
    oc.total_steps = 10;
    cy = nb_cyclic_defaults();
    cy.base_lr = 0.01;
    cy.max_lr = 0.1;
    pl = nb_plateau_defaults();
    sw = nb_swalr_defaults();
    sw.swa_lr = 0.05;
    avo = nb_averaged_defaults();
    avg = nb_averaged_new(ps, np, &avo);
    ad = nb_averaged_state_dict(avg);
    adw = nb_adamw_defaults(), rms = nb_rmsprop_defaults(), agr = nb_adagrad_defaults();
    add = nb_adadelta_defaults(), amx = nb_adamax_defaults(), nad = nb_nadam_defaults();
    rad = nb_radam_defaults(), asg = nb_asgd_defaults(), rpr = nb_rprop_defaults();
    lbf = nb_lbfgs_defaults(), afa = nb_adafactor_defaults();
    gco = nb_gradcheck_defaults();
    ck_assert(ar && x && xs[1] && mod && opt && sch && ld && devnull && ck && od && sd && avg && ad);
}

static void objects_free(void) {
    nb_averaged_dict_free(ad);
    nb_averaged_free(avg);
    nb_sched_dict_free(sd);
    nb_optim_dict_free(od);
    nb_ckpt_close(ck);
    fclose(devnull);
    nb_loader_free(ld);
    nb_tensor_free(images);
    nb_tensor_free(labels);
    nb_sched_free(sch);
    nb_optim_free(opt);
    nb_module_free(mod);
    nb_tensor_free(xs[1]);
    nb_tensor_free(x);
    nb_arena_free(ar);
}

START_TEST(test_null_one_at_a_time) {
    objects_new();
    /* autograd.h */
    (void)nb_backward(NULL);
    (void)nb_backward_grad(NULL, x);
    (void)nb_backward_grad(x, NULL);
    (void)nb_requires_grad(NULL, true);
    (void)nb_tensor_requires_grad(NULL);
    nb_tensor_free(nb_detach(NULL, x));
    nb_tensor_free(nb_detach(ar, NULL));
    (void)nb_gradcheck(NULL, 2, xs, buf, &gco);
    (void)nb_gradcheck(sum_fn, 2, NULL, buf, &gco);
    (void)nb_gradcheck(sum_fn, 2, xs, NULL, &gco);
    (void)nb_gradcheck(sum_fn, 2, xs, buf, NULL);
    (void)nb_graph_dot(NULL, devnull);
    (void)nb_graph_dot(x, NULL);
    (void)nb_graph_dot_opts(NULL, devnull, NULL);
    (void)nb_graph_dot_opts(x, NULL, NULL);
    /* core.h */
    (void)nb_arena_reset(NULL);
    (void)nb_arena_used(NULL);
    (void)nb_arena_peak(NULL);
    (void)nb_arena_set_autocast(NULL, NB_BF16);
    (void)nb_arena_set_autocast(ar, (nb_dtype)99);
    (void)nb_arena_autocast(NULL);
    (void)nb_rng_seed(NULL, 0);
    (void)nb_rng_u32(NULL);
    (void)nb_rng_uniform(NULL);
    (void)nb_rng_uniform_double(NULL);
    (void)nb_rng_normal(NULL);
    (void)nb_rng_below(NULL, 2);
    (void)nb_randperm(NULL, 2, shape);
    (void)nb_randperm(&rng, 2, NULL);
    /* data.h */
    nb_tensor_free(nb_idx_load(NULL));
    nb_tensor_free(nb_idx_parse(NULL, 2, "x"));
    nb_tensor_free(nb_idx_parse(buf, 2, NULL));
    (void)nb_mnist_load(NULL, "x", &mn);
    (void)nb_mnist_load("x", NULL, &mn);
    (void)nb_mnist_load("x", "x", NULL);
    nb_loader_free(nb_loader_new(NULL, x, &lo));
    nb_loader_free(nb_loader_new(x, NULL, &lo));
    nb_loader_free(nb_loader_new(x, x, NULL));
    (void)nb_loader_next(NULL, ar, outs, outs);
    (void)nb_loader_next(ld, NULL, outs, outs);
    (void)nb_loader_next(ld, ar, NULL, outs);
    (void)nb_loader_next(ld, ar, outs, NULL);
    (void)nb_loader_num_batches(NULL);
    (void)nb_loader_num_samples(NULL);
    (void)nb_loader_get_state(NULL);
    (void)nb_loader_set_state(NULL, &ls);
    (void)nb_loader_set_state(ld, NULL);
    /* io.h */
    (void)nb_checkpoint_save(NULL, &ts);
    (void)nb_checkpoint_save("x", NULL);
    (void)nb_checkpoint_load(NULL, &ts);
    (void)nb_checkpoint_load("x", NULL);
    (void)nb_weights_save(NULL, mod, meta, 1);
    (void)nb_weights_save("x", NULL, meta, 1);
    (void)nb_weights_save("x", mod, NULL, 1);
    (void)nb_weights_load(NULL, mod);
    (void)nb_weights_load("x", NULL);
    nb_ckpt_close(nb_ckpt_open(NULL));
    nb_ckpt_close(nb_ckpt_parse(NULL, 2));
    (void)nb_ckpt_num_tensors(NULL);
    (void)nb_ckpt_tensor_at(NULL, 0, &ct);
    (void)nb_ckpt_tensor_at(ck, 0, NULL);
    (void)nb_ckpt_find(NULL, "x", &ct);
    (void)nb_ckpt_find(ck, NULL, &ct);
    (void)nb_ckpt_find(ck, "x", NULL);
    (void)nb_ckpt_num_meta(NULL);
    (void)nb_ckpt_meta_at(NULL, 0, &cs, &cs);
    (void)nb_ckpt_meta_at(ck, 0, NULL, &cs);
    (void)nb_ckpt_meta_at(ck, 0, &cs, NULL);
    (void)nb_ckpt_meta(NULL, "x");
    (void)nb_ckpt_meta(ck, NULL);
    (void)nb_ckpt_apply(NULL, &ts);
    (void)nb_ckpt_apply(ck, NULL);
    (void)nb_weights_load_averaged(NULL, mod);
    (void)nb_weights_load_averaged("x", NULL);
    (void)nb_ckpt_apply_averaged(NULL, mod);
    (void)nb_ckpt_apply_averaged(ck, NULL);
    /* loss.h */
    (void)nb_cross_entropy(NULL, x, x, &ceo);
    (void)nb_cross_entropy(ar, NULL, x, &ceo);
    (void)nb_cross_entropy(ar, x, NULL, &ceo);
    (void)nb_cross_entropy(ar, x, x, NULL);
    (void)nb_nll_loss(NULL, x, x, &ceo);
    (void)nb_nll_loss(ar, NULL, x, &ceo);
    (void)nb_nll_loss(ar, x, NULL, &ceo);
    (void)nb_nll_loss(ar, x, x, NULL);
    (void)nb_mse_loss(NULL, x, x, NB_REDUCTION_MEAN);
    (void)nb_mse_loss(ar, NULL, x, NB_REDUCTION_MEAN);
    (void)nb_mse_loss(ar, x, NULL, NB_REDUCTION_MEAN);
    (void)nb_l1_loss(NULL, x, x, NB_REDUCTION_MEAN);
    (void)nb_l1_loss(ar, NULL, x, NB_REDUCTION_MEAN);
    (void)nb_l1_loss(ar, x, NULL, NB_REDUCTION_MEAN);
    (void)nb_smooth_l1_loss(NULL, x, x, NB_REDUCTION_MEAN, 0.5);
    (void)nb_smooth_l1_loss(ar, NULL, x, NB_REDUCTION_MEAN, 0.5);
    (void)nb_smooth_l1_loss(ar, x, NULL, NB_REDUCTION_MEAN, 0.5);
    (void)nb_huber_loss(NULL, x, x, NB_REDUCTION_MEAN, 0.5);
    (void)nb_huber_loss(ar, NULL, x, NB_REDUCTION_MEAN, 0.5);
    (void)nb_huber_loss(ar, x, NULL, NB_REDUCTION_MEAN, 0.5);
    (void)nb_binary_cross_entropy(NULL, x, x, x, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy(ar, NULL, x, x, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy(ar, x, NULL, x, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy(ar, x, x, NULL, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy_with_logits(NULL, x, x, x, x, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy_with_logits(ar, NULL, x, x, x, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy_with_logits(ar, x, NULL, x, x, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy_with_logits(ar, x, x, NULL, x, NB_REDUCTION_MEAN);
    (void)nb_binary_cross_entropy_with_logits(ar, x, x, x, NULL, NB_REDUCTION_MEAN);
    (void)nb_kl_div(NULL, x, x, NB_REDUCTION_MEAN, true);
    (void)nb_kl_div(ar, NULL, x, NB_REDUCTION_MEAN, true);
    (void)nb_kl_div(ar, x, NULL, NB_REDUCTION_MEAN, true);
    /* nn.h */
    (void)nb_forward(NULL, ar, x);
    (void)nb_forward(mod, NULL, x);
    (void)nb_forward(mod, ar, NULL);
    (void)nb_module_train(NULL, true);
    (void)nb_module_num_params(NULL);
    (void)nb_module_numel(NULL);
    (void)nb_module_param(NULL, 0);
    (void)nb_module_state(NULL, &nt);
    (void)nb_module_state(mod, NULL);
    (void)nb_module_parameters(NULL, outs, 2);
    (void)nb_module_parameters(mod, NULL, 2);
    (void)nb_module_find(NULL, "x");
    (void)nb_module_find(mod, NULL);
    (void)nb_module_repr(NULL, buf, 2);
    (void)nb_module_repr(mod, NULL, 2);
    (void)nb_module_zero_grad(NULL, true);
    nb_module_free(nb_linear_new(2, 2, true, NULL));
    (void)nb_module_child(NULL, 0);
    nb_module_free(nb_dropout_new(0.5, NULL));
    nb_module_free(nb_embedding_new(2, 2, 0, NULL));
    nb_module_free(nb_rnn_new(2, 2, NULL, &rng));
    nb_module_free(nb_rnn_new(2, 2, &ro, NULL));
    nb_module_free(nb_lstm_new(2, 2, NULL, &rng));
    nb_module_free(nb_lstm_new(2, 2, &ro, NULL));
    nb_module_free(nb_gru_new(2, 2, NULL, &rng));
    nb_module_free(nb_gru_new(2, 2, &ro, NULL));
    (void)nb_rnn_forward(NULL, ar, x, x, x, outs, outs);
    (void)nb_rnn_forward(mod, NULL, x, x, x, outs, outs);
    (void)nb_rnn_forward(mod, ar, NULL, x, x, outs, outs);
    (void)nb_rnn_forward(mod, ar, x, NULL, x, outs, outs);
    (void)nb_rnn_forward(mod, ar, x, x, NULL, outs, outs);
    (void)nb_rnn_forward(mod, ar, x, x, x, NULL, outs);
    (void)nb_rnn_forward(mod, ar, x, x, x, outs, NULL);
    nb_module_free(nb_rnn_cell_new(2, 2, true, true, NULL));
    nb_module_free(nb_lstm_cell_new(2, 2, true, NULL));
    nb_module_free(nb_gru_cell_new(2, 2, true, NULL));
    (void)nb_rnn_cell_forward(NULL, ar, x, x, x, outs);
    (void)nb_rnn_cell_forward(mod, NULL, x, x, x, outs);
    (void)nb_rnn_cell_forward(mod, ar, NULL, x, x, outs);
    (void)nb_rnn_cell_forward(mod, ar, x, NULL, x, outs);
    (void)nb_rnn_cell_forward(mod, ar, x, x, NULL, outs);
    (void)nb_rnn_cell_forward(mod, ar, x, x, x, NULL);
    nb_module_free(nb_conv2d_new(2, 2, 2, 2, NULL, true, &rng));
    nb_module_free(nb_conv2d_new(2, 2, 2, 2, &co, true, NULL));
    nb_module_free(nb_conv1d_new(2, 2, 2, NULL, true, &rng));
    nb_module_free(nb_conv1d_new(2, 2, 2, &co, true, NULL));
    nb_module_free(nb_max_pool2d_new(2, 2, NULL));
    nb_module_free(nb_avg_pool2d_new(2, 2, NULL));
    nb_module_free(nb_batchnorm1d_new(2, NULL));
    nb_module_free(nb_batchnorm2d_new(2, NULL));
    nb_module_free(nb_layernorm_new(2, NULL, 0.5, true));
    nb_module_free(nb_dropout2d_new(0.5, NULL));
    (void)nb_calculate_gain(NULL, 0.5);
    (void)nb_init_uniform(NULL, 0.5, 0.5, &rng);
    (void)nb_init_uniform(x, 0.5, 0.5, NULL);
    (void)nb_init_normal(NULL, 0.5, 0.5, &rng);
    (void)nb_init_normal(x, 0.5, 0.5, NULL);
    (void)nb_init_constant(NULL, 0.5);
    (void)nb_init_zeros(NULL);
    (void)nb_init_ones(NULL);
    (void)nb_init_xavier_uniform(NULL, 0.5, &rng);
    (void)nb_init_xavier_uniform(x, 0.5, NULL);
    (void)nb_init_xavier_normal(NULL, 0.5, &rng);
    (void)nb_init_xavier_normal(x, 0.5, NULL);
    (void)nb_init_kaiming_uniform(NULL, 0.5, NB_FAN_IN, "x", &rng);
    (void)nb_init_kaiming_uniform(x, 0.5, NB_FAN_IN, NULL, &rng);
    (void)nb_init_kaiming_uniform(x, 0.5, NB_FAN_IN, "x", NULL);
    (void)nb_init_kaiming_normal(NULL, 0.5, NB_FAN_IN, "x", &rng);
    (void)nb_init_kaiming_normal(x, 0.5, NB_FAN_IN, NULL, &rng);
    (void)nb_init_kaiming_normal(x, 0.5, NB_FAN_IN, "x", NULL);
    (void)nb_init_orthogonal(NULL, 0.5, &rng);
    (void)nb_init_orthogonal(x, 0.5, NULL);
    nb_module_free(nb_module_alloc(2, NULL));
    (void)nb_module_pack(NULL);
    /* optim.h */
    (void)nb_num(NULL, 0.5);
    (void)nb_int(NULL, 0);
    (void)nb_bool(NULL, true);
    (void)nb_pair(NULL, 0.5, 0.5);
    (void)nb_str(NULL, "x");
    (void)nb_str("x", NULL);
    (void)nb_none(NULL);
    (void)nb_value_elems(NULL);
    (void)nb_optim_type(NULL);
    (void)nb_optim_add_param_group(NULL, xs, 2, &val, 2);
    (void)nb_optim_add_param_group(opt, NULL, 2, &val, 2);
    (void)nb_optim_add_param_group(opt, xs, 2, NULL, 0); /* NULL with a count: UB in optimizer.c */
    (void)nb_optim_num_groups(NULL);
    (void)nb_optim_group_size(NULL, 0);
    (void)nb_optim_group_param(NULL, 0, 0);
    (void)nb_optim_get(NULL, 0, "x");
    (void)nb_optim_get(opt, 0, NULL);
    (void)nb_optim_get_value(NULL, 0, "x");
    (void)nb_optim_get_value(opt, 0, NULL);
    (void)nb_optim_set(NULL, 0, "x", 0.5);
    (void)nb_optim_set(opt, 0, NULL, 0.5);
    (void)nb_optim_set_elem(NULL, 0, "x", 0, 0.5);
    (void)nb_optim_set_elem(opt, 0, NULL, 0, 0.5);
    (void)nb_optim_put(NULL, 0, &val);
    (void)nb_optim_put(opt, 0, NULL);
    (void)nb_optim_has_default(NULL, "x");
    (void)nb_optim_has_default(opt, NULL);
    (void)nb_optim_zero_grad(NULL, true);
    (void)nb_optim_step(NULL);
    (void)nb_optim_step_closure(NULL, zero_fn, buf, dbl);
    (void)nb_optim_step_closure(opt, NULL, buf, dbl);
    (void)nb_optim_step_closure(opt, zero_fn, NULL, dbl);
    (void)nb_optim_step_closure(opt, zero_fn, buf, NULL);
    nb_optim_dict_free(nb_optim_state_dict(NULL));
    (void)nb_optim_load_state_dict(NULL, od);
    (void)nb_optim_load_state_dict(opt, NULL);
    (void)nb_clip_grad_norm(NULL, 2, 0.5, 0.5, true, dbl);
    (void)nb_clip_grad_norm(xs, 2, 0.5, 0.5, true, NULL);
    (void)nb_clip_grad_value(NULL, 2, 0.5);
    nb_optim_free(nb_sgd(NULL, 2, &so));
    nb_optim_free(nb_sgd(xs, 2, NULL));
    nb_optim_free(nb_adam(NULL, 2, &ao));
    nb_optim_free(nb_adam(xs, 2, NULL));
    (void)nb_optim_set_value(NULL, 0, &val);
    (void)nb_optim_set_value(opt, 0, NULL);
    nb_optim_free(nb_adamw(NULL, 2, &adw));
    nb_optim_free(nb_adamw(xs, 2, NULL));
    nb_optim_free(nb_rmsprop(NULL, 2, &rms));
    nb_optim_free(nb_rmsprop(xs, 2, NULL));
    nb_optim_free(nb_adagrad(NULL, 2, &agr));
    nb_optim_free(nb_adagrad(xs, 2, NULL));
    nb_optim_free(nb_adadelta(NULL, 2, &add));
    nb_optim_free(nb_adadelta(xs, 2, NULL));
    nb_optim_free(nb_adamax(NULL, 2, &amx));
    nb_optim_free(nb_adamax(xs, 2, NULL));
    nb_optim_free(nb_nadam(NULL, 2, &nad));
    nb_optim_free(nb_nadam(xs, 2, NULL));
    nb_optim_free(nb_radam(NULL, 2, &rad));
    nb_optim_free(nb_radam(xs, 2, NULL));
    nb_optim_free(nb_asgd(NULL, 2, &asg));
    nb_optim_free(nb_asgd(xs, 2, NULL));
    (void)nb_asgd_average(NULL, x);
    (void)nb_asgd_average(opt, NULL);
    nb_optim_free(nb_rprop(NULL, 2, &rpr));
    nb_optim_free(nb_rprop(xs, 2, NULL));
    nb_optim_free(nb_lbfgs(NULL, 2, &lbf));
    nb_optim_free(nb_lbfgs(xs, 2, NULL));
    nb_optim_free(nb_adafactor(NULL, 2, &afa));
    nb_optim_free(nb_adafactor(xs, 2, NULL));
    /* sched.h */
    (void)nb_sched_step(NULL);
    (void)nb_sched_step_epoch(NULL, 0.5);
    (void)nb_sched_step_metric(NULL, 0.5);
    (void)nb_sched_last_lr(NULL, 0);
    (void)nb_sched_num_groups(NULL);
    (void)nb_sched_last_epoch(NULL);
    (void)nb_sched_type(NULL);
    (void)nb_sched_optimizer(NULL);
    nb_sched_dict_free(nb_sched_state_dict(NULL));
    (void)nb_sched_load_state_dict(NULL, sd);
    (void)nb_sched_load_state_dict(sch, NULL);
    nb_sched_free(nb_step_lr(NULL, 2, 0.5));
    nb_sched_free(nb_multistep_lr(NULL, shape, 2, 0.5));
    nb_sched_free(nb_multistep_lr(opt, NULL, 2, 0.5));
    nb_sched_free(nb_constant_lr(NULL, 0.5, 2));
    nb_sched_free(nb_linear_lr(NULL, 0.5, 0.5, 2));
    nb_sched_free(nb_exponential_lr(NULL, 0.5));
    nb_sched_free(nb_polynomial_lr(NULL, 2, 0.5));
    nb_sched_free(nb_cosine_annealing_lr(NULL, 2, 0.5));
    nb_sched_free(nb_cosine_annealing_warm_restarts(NULL, 2, 2, 0.5));
    nb_sched_free(nb_lambda_lr(NULL, one_fn, buf));
    nb_sched_free(nb_lambda_lr(opt, NULL, buf));
    nb_sched_free(nb_lambda_lr(opt, one_fn, NULL));
    nb_sched_free(nb_multiplicative_lr(NULL, one_fn, buf));
    nb_sched_free(nb_multiplicative_lr(opt, NULL, buf));
    nb_sched_free(nb_multiplicative_lr(opt, one_fn, NULL));
    nb_sched_free(nb_onecycle_lr(NULL, &oc));
    nb_sched_free(nb_onecycle_lr(opt, NULL));
    nb_sched_free(nb_cyclic_lr(NULL, &cy));
    nb_sched_free(nb_cyclic_lr(opt, NULL));
    nb_sched_free(nb_reduce_lr_on_plateau(NULL, &pl));
    nb_sched_free(nb_reduce_lr_on_plateau(opt, NULL));
    nb_sched_free(nb_swalr(NULL, &sw));
    nb_sched_free(nb_swalr(opt, NULL));
    nb_averaged_free(nb_averaged_new(NULL, 2, &avo));
    nb_averaged_free(nb_averaged_new(xs, 2, NULL));
    (void)nb_averaged_update(NULL, xs, 2);
    (void)nb_averaged_update(avg, NULL, 2);
    (void)nb_averaged_count(NULL);
    (void)nb_averaged_set_count(NULL, 0);
    (void)nb_averaged_num(NULL);
    (void)nb_averaged_tensor(NULL, 0);
    (void)nb_averaged_swap(NULL, xs, 2);
    (void)nb_averaged_swap(avg, NULL, 2);
    (void)nb_averaged_copy_to(NULL, xs, 2);
    (void)nb_averaged_copy_to(avg, NULL, 2);
    nb_averaged_dict_free(nb_averaged_state_dict(NULL));
    (void)nb_averaged_load_state_dict(NULL, ad);
    (void)nb_averaged_load_state_dict(avg, NULL);
    /* tensor.h */
    nb_tensor_free(nb_empty(NULL, NB_FLOAT32, 2, shape));
    nb_tensor_free(nb_empty(ar, NB_FLOAT32, 2, NULL));
    nb_tensor_free(nb_zeros(NULL, 2, shape));
    nb_tensor_free(nb_zeros(ar, 2, NULL));
    nb_tensor_free(nb_ones(NULL, 2, shape));
    nb_tensor_free(nb_ones(ar, 2, NULL));
    nb_tensor_free(nb_full(NULL, 2, shape, 0.5));
    nb_tensor_free(nb_full(ar, 2, NULL, 0.5));
    nb_tensor_free(nb_from_array(NULL, NB_FLOAT32, 2, shape, buf));
    nb_tensor_free(nb_from_array(ar, NB_FLOAT32, 2, NULL, buf));
    nb_tensor_free(nb_from_array(ar, NB_FLOAT32, 2, shape, NULL));
    nb_tensor_free(nb_arange(NULL, 0.5, 0.5, 0.5));
    nb_tensor_free(nb_uniform(NULL, 2, shape, 0.5, 0.5, &rng));
    nb_tensor_free(nb_uniform(ar, 2, NULL, 0.5, 0.5, &rng));
    nb_tensor_free(nb_uniform(ar, 2, shape, 0.5, 0.5, NULL));
    nb_tensor_free(nb_normal(NULL, 2, shape, 0.5, 0.5, &rng));
    nb_tensor_free(nb_normal(ar, 2, NULL, 0.5, 0.5, &rng));
    nb_tensor_free(nb_normal(ar, 2, shape, 0.5, 0.5, NULL));
    nb_tensor_free(nb_kaiming_uniform(NULL, 2, shape, 0.5, &rng));
    nb_tensor_free(nb_kaiming_uniform(ar, 2, NULL, 0.5, &rng));
    nb_tensor_free(nb_kaiming_uniform(ar, 2, shape, 0.5, NULL));
    nb_tensor_free(nb_scalar(NULL, 0.5));
    nb_tensor_free(nb_clone(NULL, x));
    nb_tensor_free(nb_clone(ar, NULL));
    nb_tensor_free(nb_to_dtype(NULL, x, NB_BF16));
    (void)nb_to_dtype(ar, NULL, NB_BF16);
    (void)nb_to_dtype(ar, x, (nb_dtype)99);
    (void)nb_item(NULL);
    (void)nb_same_shape(NULL, x);
    (void)nb_same_shape(x, NULL);
    (void)nb_shape_str(NULL, buf, 2);
    (void)nb_shape_str(x, NULL, 2);
    (void)nb_fill(NULL, 0.5);
    (void)nb_copy(NULL, x);
    (void)nb_copy(x, NULL);
    (void)nb_reshape(NULL, x, 2, shape);
    (void)nb_reshape(ar, NULL, 2, shape);
    (void)nb_reshape(ar, x, 2, NULL);
    (void)nb_view(NULL, x, 2, shape);
    (void)nb_view(ar, NULL, 2, shape);
    (void)nb_view(ar, x, 2, NULL);
    (void)nb_flatten(NULL, x, 0, 0);
    (void)nb_flatten(ar, NULL, 0, 0);
    (void)nb_add(NULL, x, x);
    (void)nb_add(ar, NULL, x);
    (void)nb_add(ar, x, NULL);
    (void)nb_sub(NULL, x, x);
    (void)nb_sub(ar, NULL, x);
    (void)nb_sub(ar, x, NULL);
    (void)nb_mul(NULL, x, x);
    (void)nb_mul(ar, NULL, x);
    (void)nb_mul(ar, x, NULL);
    (void)nb_div(NULL, x, x);
    (void)nb_div(ar, NULL, x);
    (void)nb_div(ar, x, NULL);
    (void)nb_add_scalar(NULL, x, 0.5);
    (void)nb_add_scalar(ar, NULL, 0.5);
    (void)nb_mul_scalar(NULL, x, 0.5);
    (void)nb_mul_scalar(ar, NULL, 0.5);
    (void)nb_neg(NULL, x);
    (void)nb_neg(ar, NULL);
    (void)nb_exp(NULL, x);
    (void)nb_exp(ar, NULL);
    (void)nb_log(NULL, x);
    (void)nb_log(ar, NULL);
    (void)nb_sqrt(NULL, x);
    (void)nb_sqrt(ar, NULL);
    (void)nb_abs(NULL, x);
    (void)nb_abs(ar, NULL);
    (void)nb_pow(NULL, x, 0.5);
    (void)nb_pow(ar, NULL, 0.5);
    (void)nb_clamp(NULL, x, 0.5, 0.5);
    (void)nb_clamp(ar, NULL, 0.5, 0.5);
    (void)nb_relu(NULL, x);
    (void)nb_relu(ar, NULL);
    (void)nb_leaky_relu(NULL, x, 0.5);
    (void)nb_leaky_relu(ar, NULL, 0.5);
    (void)nb_tanh(NULL, x);
    (void)nb_tanh(ar, NULL);
    (void)nb_sigmoid(NULL, x);
    (void)nb_sigmoid(ar, NULL);
    (void)nb_gelu(NULL, x);
    (void)nb_gelu(ar, NULL);
    (void)nb_elu(NULL, x, 0.5);
    (void)nb_elu(ar, NULL, 0.5);
    (void)nb_silu(NULL, x);
    (void)nb_silu(ar, NULL);
    (void)nb_softmax(NULL, x, 0);
    (void)nb_softmax(ar, NULL, 0);
    (void)nb_log_softmax(NULL, x, 0);
    (void)nb_log_softmax(ar, NULL, 0);
    (void)nb_dropout(NULL, x, 0.5, true, &rng);
    (void)nb_dropout(ar, NULL, 0.5, true, &rng);
    (void)nb_dropout(ar, x, 0.5, true, NULL);
    (void)nb_dropout2d(NULL, x, 0.5, true, &rng);
    (void)nb_dropout2d(ar, NULL, 0.5, true, &rng);
    (void)nb_dropout2d(ar, x, 0.5, true, NULL);
    (void)nb_conv2d(NULL, x, x, x, &co);
    (void)nb_conv2d(ar, NULL, x, x, &co);
    (void)nb_conv2d(ar, x, NULL, x, &co);
    (void)nb_conv2d(ar, x, x, NULL, &co);
    (void)nb_conv2d(ar, x, x, x, NULL);
    (void)nb_conv1d(NULL, x, x, x, &co);
    (void)nb_conv1d(ar, NULL, x, x, &co);
    (void)nb_conv1d(ar, x, NULL, x, &co);
    (void)nb_conv1d(ar, x, x, NULL, &co);
    (void)nb_conv1d(ar, x, x, x, NULL);
    (void)nb_max_pool2d(NULL, x, 2, 2, &po);
    (void)nb_max_pool2d(ar, NULL, 2, 2, &po);
    (void)nb_max_pool2d(ar, x, 2, 2, NULL);
    (void)nb_avg_pool2d(NULL, x, 2, 2, &po);
    (void)nb_avg_pool2d(ar, NULL, 2, 2, &po);
    (void)nb_avg_pool2d(ar, x, 2, 2, NULL);
    (void)nb_adaptive_avg_pool2d(NULL, x, 2, 2);
    (void)nb_adaptive_avg_pool2d(ar, NULL, 2, 2);
    (void)nb_batch_norm(NULL, x, x, x, x, x, true, 0.5, 0.5);
    (void)nb_batch_norm(ar, NULL, x, x, x, x, true, 0.5, 0.5);
    (void)nb_batch_norm(ar, x, NULL, x, x, x, true, 0.5, 0.5);
    (void)nb_batch_norm(ar, x, x, NULL, x, x, true, 0.5, 0.5);
    (void)nb_batch_norm(ar, x, x, x, NULL, x, true, 0.5, 0.5);
    (void)nb_batch_norm(ar, x, x, x, x, NULL, true, 0.5, 0.5);
    (void)nb_layer_norm(NULL, x, 2, shape, x, x, 0.5);
    (void)nb_layer_norm(ar, NULL, 2, shape, x, x, 0.5);
    (void)nb_layer_norm(ar, x, 2, NULL, x, x, 0.5);
    (void)nb_layer_norm(ar, x, 2, shape, NULL, x, 0.5);
    (void)nb_layer_norm(ar, x, 2, shape, x, NULL, 0.5);
    (void)nb_matmul(NULL, x, x);
    (void)nb_matmul(ar, NULL, x);
    (void)nb_matmul(ar, x, NULL);
    (void)nb_transpose(NULL, x, 0, 0);
    (void)nb_transpose(ar, NULL, 0, 0);
    (void)nb_linear(NULL, x, x, x);
    (void)nb_linear(ar, NULL, x, x);
    (void)nb_linear(ar, x, NULL, x);
    (void)nb_linear(ar, x, x, NULL);
    (void)nb_sum(NULL, x);
    (void)nb_sum(ar, NULL);
    (void)nb_mean(NULL, x);
    (void)nb_mean(ar, NULL);
    (void)nb_sum_dim(NULL, x, 0, true);
    (void)nb_sum_dim(ar, NULL, 0, true);
    (void)nb_mean_dim(NULL, x, 0, true);
    (void)nb_mean_dim(ar, NULL, 0, true);
    (void)nb_max_dim(NULL, x, 0, true);
    (void)nb_max_dim(ar, NULL, 0, true);
    (void)nb_max(NULL, x);
    (void)nb_max(ar, NULL);
    (void)nb_argmax(NULL, x, 0, true);
    (void)nb_argmax(ar, NULL, 0, true);
    (void)nb_index_select(NULL, x, x);
    (void)nb_index_select(ar, NULL, x);
    (void)nb_index_select(ar, x, NULL);
    (void)nb_gather(NULL, x, x);
    (void)nb_gather(ar, NULL, x);
    (void)nb_gather(ar, x, NULL);
    (void)nb_select(NULL, x, 0, 0);
    (void)nb_select(ar, NULL, 0, 0);
    (void)nb_embedding(NULL, x, x, 0);
    (void)nb_embedding(ar, NULL, x, 0);
    (void)nb_embedding(ar, x, NULL, 0);
    (void)nb_cat(NULL, 2, xs, 0);
    (void)nb_cat(ar, 2, NULL, 0);
    (void)nb_stack(NULL, 2, xs, 0);
    (void)nb_stack(ar, 2, NULL, 0);
    (void)nb_slice(NULL, x, 0, 0, 0);
    (void)nb_slice(ar, NULL, 0, 0, 0);
    (void)nb_split(NULL, x, 0, 0, outs, 2);
    (void)nb_split(ar, NULL, 0, 0, outs, 2);
    (void)nb_split(ar, x, 0, 0, NULL, 2);
    /* the objects survived all of it */
    ck_assert_int_eq(nb_module_num_params(mod), 2);
    ck_assert_int_eq(nb_optim_num_groups(opt), 2); /* add_param_group(opt, xs, ...) added one */
    ck_assert_int_eq(nb_loader_num_batches(ld), 1);
    ck_assert_int_eq(nb_ckpt_num_tensors(ck), 2);
    objects_free();
}
END_TEST

/* ---- every op given a NULL arena fails cleanly ------------------------------------------
 * Ops write their output (and autograd node) in an arena: with NULL they fail with an error
 * naming the arena, also when nothing needs a gradient. */
#define NO_ARENA(e)                                                                          \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        ck_assert_msg((e) == NULL, "%s accepted a NULL arena", #e);                          \
        ck_assert_msg(nb_last_status() == NB_EINVAL && strstr(nb_last_error(), "arena"),     \
                      "%s: %s", #e, nb_last_error());                                        \
    } while (0)

START_TEST(test_ops_null_arena) {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_tensor *x = nb_uniform(NULL, 2, (int64_t[]){2, 3}, 0.1f, 0.9f, &rng);
    nb_tensor *y = nb_uniform(NULL, 2, (int64_t[]){2, 3}, 0.1f, 0.9f, &rng);
    nb_tensor *img = nb_uniform(NULL, 4, (int64_t[]){1, 1, 4, 4}, 0, 1, &rng);
    nb_tensor *w4 = nb_ones(NULL, 4, (int64_t[]){1, 1, 2, 2});
    nb_tensor *seq = nb_ones(NULL, 3, (int64_t[]){2, 1, 3}), *w3 = nb_ones(NULL, 3, (int64_t[]){2, 1, 2});
    nb_tensor *w = nb_ones(NULL, 2, (int64_t[]){4, 3}), *wt = nb_ones(NULL, 2, (int64_t[]){3, 4});
    nb_tensor *idx = nb_from_array(NULL, NB_INT32, 1, (int64_t[]){2}, (int32_t[]){1, 0});
    nb_tensor *idx2 = nb_from_array(NULL, NB_INT32, 2, (int64_t[]){1, 3}, (int32_t[]){1, 0, 1});
    nb_tensor *two[2] = {x, y}, *chunks[2];
    nb_module *lin = nb_linear_new(3, 4, true, &rng), *gru = nb_gru_new(3, 2, NULL, &rng);
    nb_module *cell = nb_lstm_cell_new(3, 2, true, &rng);
    nb_tensor *images = nb_empty(NULL, NB_UINT8, 2, (int64_t[]){2, 3}), *labels = nb_empty(NULL, NB_UINT8, 1, (int64_t[]){2});
    memset(images->data, 0, 6);
    memset(labels->data, 0, 2);
    nb_loader *ld = nb_loader_new(images, labels, NULL);
    for (int grad = 0; grad < 2; grad++) { /* inputs that need no gradient, then inputs that do */
        nb_requires_grad(x, grad);
        nb_requires_grad(img, grad);
        nb_requires_grad(seq, grad);
        NO_ARENA(nb_reshape(NULL, x, 1, (int64_t[]){6}));
        NO_ARENA(nb_view(NULL, x, 2, (int64_t[]){3, 2}));
        NO_ARENA(nb_flatten(NULL, x, 0, -1));
        NO_ARENA(nb_add(NULL, x, y));
        NO_ARENA(nb_sub(NULL, x, y));
        NO_ARENA(nb_mul(NULL, x, y));
        NO_ARENA(nb_div(NULL, x, y));
        NO_ARENA(nb_add_scalar(NULL, x, 1));
        NO_ARENA(nb_mul_scalar(NULL, x, 2));
        NO_ARENA(nb_neg(NULL, x));
        NO_ARENA(nb_exp(NULL, x));
        NO_ARENA(nb_log(NULL, x));
        NO_ARENA(nb_sqrt(NULL, x));
        NO_ARENA(nb_abs(NULL, x));
        NO_ARENA(nb_pow(NULL, x, 2));
        NO_ARENA(nb_clamp(NULL, x, 0, 1));
        NO_ARENA(nb_relu(NULL, x));
        NO_ARENA(nb_leaky_relu(NULL, x, 0.1f));
        NO_ARENA(nb_tanh(NULL, x));
        NO_ARENA(nb_sigmoid(NULL, x));
        NO_ARENA(nb_gelu(NULL, x));
        NO_ARENA(nb_elu(NULL, x, 1));
        NO_ARENA(nb_silu(NULL, x));
        NO_ARENA(nb_softmax(NULL, x, 1));
        NO_ARENA(nb_log_softmax(NULL, x, 1));
        NO_ARENA(nb_dropout(NULL, x, 0.5f, true, &rng));
        NO_ARENA(nb_dropout2d(NULL, img, 0.5f, true, &rng));
        NO_ARENA(nb_conv2d(NULL, img, w4, NULL, NULL));
        NO_ARENA(nb_conv1d(NULL, seq, w3, NULL, NULL));
        NO_ARENA(nb_max_pool2d(NULL, img, 2, 2, NULL));
        NO_ARENA(nb_avg_pool2d(NULL, img, 2, 2, NULL));
        NO_ARENA(nb_adaptive_avg_pool2d(NULL, img, 1, 1));
        NO_ARENA(nb_batch_norm(NULL, x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5));
        NO_ARENA(nb_layer_norm(NULL, x, 1, (int64_t[]){3}, NULL, NULL, 1e-5));
        NO_ARENA(nb_matmul(NULL, x, wt));
        ck_assert_ptr_null(nb_matmul(NULL, x, x)); /* and shapes that do not match: NULL too */
        NO_ARENA(nb_add(NULL, x, x));
        NO_ARENA(nb_transpose(NULL, x, 0, 1));
        NO_ARENA(nb_linear(NULL, x, w, NULL));
        NO_ARENA(nb_sum(NULL, x));
        NO_ARENA(nb_mean(NULL, x));
        NO_ARENA(nb_sum_dim(NULL, x, 0, false));
        NO_ARENA(nb_mean_dim(NULL, x, 1, true));
        NO_ARENA(nb_max_dim(NULL, x, 1, false));
        NO_ARENA(nb_max(NULL, x));
        NO_ARENA(nb_argmax(NULL, x, 1, false));
        NO_ARENA(nb_index_select(NULL, x, idx));
        NO_ARENA(nb_gather(NULL, x, idx2));
        NO_ARENA(nb_select(NULL, x, 0, 1));
        NO_ARENA(nb_embedding(NULL, idx, x, -1));
        NO_ARENA(nb_cat(NULL, 2, two, 0));
        NO_ARENA(nb_stack(NULL, 2, two, 0));
        NO_ARENA(nb_slice(NULL, x, 1, 0, 2));
        nb_clear_error();
        ck_assert_int_eq(nb_split(NULL, x, 2, 1, chunks, 2), NB_EINVAL);
        ck_assert_msg(strstr(nb_last_error(), "arena"), "split: %s", nb_last_error());
        NO_ARENA(nb_cross_entropy(NULL, x, idx, NULL));
        NO_ARENA(nb_nll_loss(NULL, x, idx, NULL));
        NO_ARENA(nb_mse_loss(NULL, x, y, NB_REDUCTION_MEAN));
        NO_ARENA(nb_l1_loss(NULL, x, y, NB_REDUCTION_SUM));
        NO_ARENA(nb_smooth_l1_loss(NULL, x, y, NB_REDUCTION_MEAN, 1.0));
        NO_ARENA(nb_huber_loss(NULL, x, y, NB_REDUCTION_MEAN, 1.0));
        NO_ARENA(nb_binary_cross_entropy(NULL, x, y, NULL, NB_REDUCTION_MEAN));
        NO_ARENA(nb_binary_cross_entropy_with_logits(NULL, x, y, NULL, NULL, NB_REDUCTION_MEAN));
        NO_ARENA(nb_kl_div(NULL, x, y, NB_REDUCTION_MEAN, false));
        NO_ARENA(nb_forward(lin, NULL, x));
        NO_ARENA(nb_rnn_forward(gru, NULL, seq, NULL, NULL, NULL, NULL));
        NO_ARENA(nb_rnn_cell_forward(cell, NULL, x, NULL, NULL, NULL));
        nb_tensor *bx = NULL, *by = NULL;
        nb_clear_error();
        ck_assert_int_eq(nb_loader_next(ld, NULL, &bx, &by), NB_EINVAL);
        ck_assert_ptr_null(bx);
    }
    nb_loader_free(ld);
    nb_tensor *ts[] = {x, y, img, w4, seq, w3, w, wt, idx, idx2, images, labels};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) nb_tensor_free(ts[i]);
    nb_module_free(lin);
    nb_module_free(gru);
    nb_module_free(cell);
}
END_TEST

/* ---- messages name the cause ------------------------------------------------------------ */
#define MESSAGE(e, msg)                                                                      \
    do {                                                                                     \
        nb_clear_error();                                                                    \
        (void)(e);                                                                           \
        ck_assert_str_eq(nb_last_error(), msg);                                              \
    } while (0)

START_TEST(test_messages_name_the_cause) {
    nb_arena *a = nb_arena_new(0);
    nb_tensor *img = nb_empty(NULL, NB_UINT8, 2, (int64_t[]){2, 3}), *lab = nb_empty(NULL, NB_UINT8, 1, (int64_t[]){2});
    nb_tensor *f = nb_zeros(NULL, 2, (int64_t[]){2, 3}), *y, *t = NULL;
    nb_loader *ld = nb_loader_new(img, lab, NULL);
    MESSAGE(nb_loader_next(ld, NULL, &y, &t), "loader_next: the arena (batches are written in an arena) is NULL");
    MESSAGE(nb_loader_next(ld, a, &y, NULL), "loader_next: y is NULL");
    MESSAGE(nb_loader_set_state(ld, NULL), "loader_set_state: the state is NULL");
    MESSAGE(nb_loader_new(NULL, lab, NULL), "loader: images is NULL");
    MESSAGE(nb_loader_new(f, lab, NULL), "loader: images must be uint8 [N, ...], got float32 [2, 3]");
    MESSAGE(nb_mnist_load("/tmp", NULL, NULL), "mnist_load: prefix is NULL");
    MESSAGE(nb_copy(f, NULL), "copy: src is NULL");
    MESSAGE(nb_batch_norm(a, f, NULL, NULL, NULL, NULL, true, 0.1, -1.0),
            "batch_norm: eps must be a number >= 0, got -1.0");
    MESSAGE(nb_sched_load_state_dict(NULL, NULL), "load_state_dict: the scheduler is NULL");
    nb_averaged *avg = nb_averaged_new((nb_tensor *[]){f}, 1, NULL);
    MESSAGE(nb_averaged_set_count(avg, -2), "averaged_set_count: n_averaged must be >= 0, got -2");
    MESSAGE(nb_averaged_update(NULL, (nb_tensor *[]){f}, 1), "averaged_update: the averaged copy is NULL");
    MESSAGE(nb_averaged_update(avg, (nb_tensor *[]){img}, 1), "averaged: tensor 0 must be float32, got uint8");
    MESSAGE(nb_averaged_new(NULL, 0, NULL), "averaged: expected a non-empty list of tensors, got 0 (params is NULL)");
    MESSAGE(nb_averaged_state_dict(NULL), "averaged_state_dict: the averaged copy is NULL");
    MESSAGE(nb_averaged_load_state_dict(avg, NULL), "averaged_load_state_dict: the state dict is NULL");
    nb_averaged_free(avg);
    nb_loader_free(ld);
    nb_tensor_free(img);
    nb_tensor_free(lab);
    nb_tensor_free(f);
    nb_arena_free(a);
}
END_TEST

/* ---- lifetimes (include/nabla/optim.h, sched.h, nn.h): misuse fails safely -----------------
 * Under ASan (tools/nabla test) any touch of freed memory here is a failure: the misuse must
 * be detected without reading what was freed. */
static nb_module *two_layers(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    return nb_sequential(2, (nb_module *[]){nb_linear_new(3, 2, true, &rng),
                                            nb_batchnorm1d_new(2, NULL)});
}

/* A gradient on every parameter, so a step has work to do. */
static void give_grads(nb_module *m) {
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_ones(ar, 2, (int64_t[]){4, 3});
    ck_assert_int_eq(nb_backward(nb_sum(ar, nb_forward(m, ar, x))), NB_OK);
    nb_arena_free(ar);
}

START_TEST(test_optimizer_outlives_its_module) {
    nb_module *m = two_layers();
    nb_tensor *p[8];
    int n = nb_module_parameters(m, p, 8);
    nb_adam_opts ao = nb_adam_defaults();
    nb_optim *opt = nb_adam(p, n, &ao);
    give_grads(m);
    ck_assert_int_eq(nb_optim_step(opt), NB_OK);
    nb_optim_dict *sd = nb_optim_state_dict(opt);
    ck_assert_ptr_nonnull(sd);
    nb_module_free(m); /* too early: the optimizer still holds its parameters */
    ck_assert_int_eq(nb_optim_step(opt), NB_ESTATE);
    ck_assert_str_eq(nb_last_error(), "step: the module that owns this Adam optimizer's parameters "
                     "was freed (free the optimizer before its module)");
    nb_clear_error();
    nb_optim_zero_grad(opt, true);
    ck_assert_int_eq(nb_last_status(), NB_ESTATE);
    nb_optim_zero_grad(opt, false);
    ck_assert_int_eq(nb_optim_step_closure(opt, NULL, NULL, NULL), NB_ESTATE);
    ck_assert_int_eq(nb_optim_load_state_dict(opt, sd), NB_ESTATE);
    ck_assert_ptr_null(nb_optim_state_dict(opt));
    ck_assert_int_eq(nb_last_status(), NB_ESTATE);
    /* a checkpoint of it, saved or loaded with another model, reads no freed parameter either */
    nb_module *m2 = two_layers();
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    snprintf(path, sizeof path, "%s/w.ckpt", dir);
    ck_assert_int_eq(nb_weights_save(path, m2, NULL, 0), NB_OK);
    nb_train_state st = {.model = m2, .optim = opt};
    ck_assert_int_eq(nb_checkpoint_save(path, &st), NB_ESTATE);
    ck_assert_int_eq(nb_checkpoint_load(path, &st), NB_ESTATE);
    ck_assert_str_eq(nb_last_error(), "checkpoint: the module that owns this Adam optimizer's parameters "
                     "was freed (free the optimizer before its module)");
    unlink(path);
    rmdir(dir);
    nb_module_free(m2);
    nb_optim_dict_free(sd);
    nb_optim_free(opt); /* freeing it afterwards is fine */
}
END_TEST

START_TEST(test_scheduler_outlives_its_optimizer) {
    nb_module *m = two_layers();
    nb_tensor *p[8];
    int n = nb_module_parameters(m, p, 8);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 0.1;
    so.momentum = 0.9;
    nb_optim *opt = nb_sgd(p, n, &so);
    nb_sched *steps = nb_step_lr(opt, 1, 0.5);
    nb_onecycle_opts oo = nb_onecycle_defaults();
    oo.max_lr = 0.5;
    oo.total_steps = 10;
    nb_sched *cycle = nb_onecycle_lr(opt, &oo);
    nb_plateau_opts po = nb_plateau_defaults();
    nb_sched *plateau = nb_reduce_lr_on_plateau(opt, &po);
    nb_sched *seq = nb_sequential_lr(opt, (nb_sched *[]){nb_constant_lr(opt, 0.5, 2), nb_exponential_lr(opt, 0.9)},
                                     2, (int64_t[]){2}, 1);
    ck_assert(steps && cycle && plateau && seq);
    ck_assert_int_eq(nb_sched_step(steps), NB_OK);
    nb_sched_dict *sd = nb_sched_state_dict(steps);
    nb_optim_free(opt); /* too early: four schedulers still drive it */
    ck_assert_int_eq(nb_sched_step(steps), NB_ESTATE);
    ck_assert_str_eq(nb_last_error(), "StepLR: its optimizer was freed (free the scheduler before its optimizer)");
    ck_assert_int_eq(nb_sched_step_epoch(steps, 3), NB_ESTATE);
    ck_assert_int_eq(nb_sched_step(cycle), NB_ESTATE);
    ck_assert_int_eq(nb_sched_step_metric(plateau, 1.0), NB_ESTATE);
    ck_assert_int_eq(nb_sched_step(seq), NB_ESTATE);
    ck_assert_int_eq(nb_sched_load_state_dict(steps, sd), NB_ESTATE);
    nb_sched_dict_free(sd);
    nb_sched_free(steps);
    nb_sched_free(cycle);
    nb_sched_free(plateau);
    nb_sched_free(seq);
    nb_module_free(m);
}
END_TEST

START_TEST(test_tensor_free_refuses_module_tensors) {
    nb_module *m = two_layers();
    nb_tensor *w = nb_module_find(m, "0.weight"), *rv = nb_module_find(m, "1.running_var");
    nb_clear_error();
    nb_tensor_free(w); /* refused: the module frees it (a second free otherwise) */
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    ck_assert_str_eq(nb_last_error(), "tensor_free: the tensor is a parameter or buffer of a module, "
                     "which frees it with nb_module_free");
    nb_clear_error();
    nb_tensor_free(rv);
    ck_assert_int_eq(nb_last_status(), NB_EINVAL);
    ck_assert_float_eq(nb_f32(rv)[0], 1.0f); /* untouched */
    give_grads(m);
    nb_module_free(m);
    /* in the right order nothing is reported */
    m = two_layers();
    nb_tensor *p[8];
    int n = nb_module_parameters(m, p, 8);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = 0.1;
    nb_optim *opt = nb_sgd(p, n, &so);
    nb_sched *s = nb_step_lr(opt, 1, 0.5);
    give_grads(m);
    ck_assert_int_eq(nb_optim_step(opt), NB_OK);
    ck_assert_int_eq(nb_sched_step(s), NB_OK);
    nb_sched_free(s);
    nb_optim_free(opt);
    nb_module_free(m);
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
    tcase_add_test(tc, test_null_everywhere);
    tcase_add_test(tc, test_null_one_at_a_time);
    tcase_add_test(tc, test_ops_null_arena);
    tcase_add_test(tc, test_messages_name_the_cause);
    tcase_add_test(tc, test_optimizer_outlives_its_module);
    tcase_add_test(tc, test_scheduler_outlives_its_optimizer);
    tcase_add_test(tc, test_tensor_free_refuses_module_tensors);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
