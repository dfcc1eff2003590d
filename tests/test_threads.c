/* test_threads.c - separate models on separate threads: two training runs at the same time
 * give bit for bit what they give one after the other. Each run has its own generator (init,
 * dropout), DataLoader (shuffle), arena, optimizer, schedule and checkpoint file; the library's
 * only shared state is thread-local (errors, grad mode) or the thread pool. The runs cover
 * Dropout, an LSTM with dropout between layers, a conv net with BatchNorm, SGD and Adam, two
 * schedules, gradient clipping, an evaluation in no-grad mode, a failing call (its error stays
 * on its thread) and a checkpoint save + load. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

enum { N = 96, EPOCHS = 3, KINDS = 3 };

typedef struct run {
    int kind;       /* 0: MLP + Dropout, 1: 2-layer LSTM with dropout, 2: conv + BatchNorm */
    uint64_t seed;
    const char *ckpt; /* its own checkpoint file */
    /* results */
    int ok;
    char err[256];
    double losses[EPOCHS];
    int64_t correct[EPOCHS];
    int nparams;
    float *params; /* every parameter value at the end, concatenated */
    int64_t nvalues;
} run;

static nb_tensor *g_images, *g_labels; /* read-only, shared by every run */

static nb_module *build(int kind, nb_rng *rng) {
    if (kind == 0)
        return nb_sequential(5, (nb_module *[]){nb_flatten_new(1, -1), nb_linear_new(36, 24, true, rng),
                                                nb_relu_new(), nb_dropout_new(0.3f, rng),
                                                nb_linear_new(24, 4, true, rng)});
    if (kind == 1) {
        nb_rnn_opts o = nb_rnn_defaults();
        o.num_layers = 2;
        o.batch_first = true;
        o.dropout = 0.25f;
        o.dropout_rng = rng;
        return nb_sequential(3, (nb_module *[]){nb_lstm_new(6, 8, &o, rng), nb_select_new(1, -1),
                                                nb_linear_new(8, 4, true, rng)});
    }
    nb_conv_opts co = nb_conv_defaults();
    co.padding[0] = co.padding[1] = 1;
    return nb_sequential(6, (nb_module *[]){nb_conv2d_new(1, 3, 3, 3, &co, true, rng),
                                            nb_batchnorm2d_new(3, NULL), nb_relu_new(),
                                            nb_max_pool2d_new(2, 2, NULL), nb_flatten_new(1, -1),
                                            nb_linear_new(27, 4, true, rng)});
}

static int failed(run *r, const char *what) {
    snprintf(r->err, sizeof r->err, "%s: %s", what, nb_last_error());
    return 1;
}

static int train(run *r) {
    nb_rng rng;
    nb_rng_seed(&rng, r->seed);
    nb_module *model = build(r->kind, &rng);
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = 16;
    lo.seed = r->seed + 1;
    nb_loader *ld = nb_loader_new(g_images, g_labels, &lo);
    nb_loader_opts eo = nb_loader_defaults();
    eo.batch_size = 32;
    eo.shuffle = false;
    nb_loader *eval = nb_loader_new(g_images, g_labels, &eo);
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *params[32];
    int np = nb_module_parameters(model, params, 32);
    nb_optim *opt = NULL;
    nb_sched *sched = NULL;
    if (r->kind == 1) {
        nb_adam_opts ao = nb_adam_defaults();
        ao.lr = 1e-2;
        opt = nb_adam(params, np, &ao);
        sched = opt ? nb_cosine_annealing_lr(opt, EPOCHS, 1e-4) : NULL;
    } else {
        nb_sgd_opts so = nb_sgd_defaults();
        so.lr = 0.05;
        so.momentum = 0.9;
        opt = nb_sgd(params, np, &so);
        sched = opt ? nb_step_lr(opt, 1, 0.5) : NULL;
    }
    int rc = 0;
    if (!model || !ld || !eval || !ar || !opt || !sched) rc = failed(r, "setup");
    nb_tensor *x, *y;
    for (int e = 0; e < EPOCHS && !rc; e++) {
        nb_module_train(model, true);
        double total = 0;
        while (!rc && (nb_arena_reset(ar), nb_loader_next(ld, ar, &x, &y)) > 0) {
            if (r->kind == 1) x = nb_reshape(ar, x, 3, (int64_t[]){x->shape[0], 6, 6}); /* 6 steps */
            else if (r->kind == 2) x = nb_reshape(ar, x, 4, (int64_t[]){x->shape[0], 1, 6, 6});
            nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, x), y, NULL);
            nb_optim_zero_grad(opt, true);
            if (!loss || nb_backward(loss)) rc = failed(r, "backward");
            else if (nb_clip_grad_norm(params, np, 1.0, 2.0, false, NULL) || nb_optim_step(opt))
                rc = failed(r, "step");
            else total += nb_item(loss);
        }
        r->losses[e] = total;
        if (!rc && nb_sched_step(sched)) rc = failed(r, "sched");
        /* an evaluation pass without the tape, then a call that fails on purpose */
        nb_module_train(model, false);
        bool prev = nb_set_grad_enabled(false);
        int64_t correct = 0;
        while (!rc && (nb_arena_reset(ar), nb_loader_next(eval, ar, &x, &y)) > 0) {
            if (r->kind == 1) x = nb_reshape(ar, x, 3, (int64_t[]){x->shape[0], 6, 6});
            else if (r->kind == 2) x = nb_reshape(ar, x, 4, (int64_t[]){x->shape[0], 1, 6, 6});
            nb_tensor *pred = nb_argmax(ar, nb_forward(model, ar, x), 1, false);
            if (!pred) rc = failed(r, "eval");
            for (int64_t i = 0; !rc && i < pred->numel; i++) correct += nb_i32(pred)[i] == nb_i32(y)[i];
        }
        nb_set_grad_enabled(prev);
        r->correct[e] = correct;
        nb_tensor *six = nb_zeros(ar, 1, (int64_t[]){6});
        if (!rc && (nb_reshape(ar, six, 1, (int64_t[]){7}) != NULL || !strstr(nb_last_error(), "reshape")))
            rc = failed(r, "the error of a failing reshape");
    }
    /* a checkpoint of this run, read back into the live objects */
    nb_train_state st = {.model = model, .optim = opt, .sched = sched, .rng = &rng, .loader = ld,
                         .epoch = EPOCHS, .step = 3};
    if (!rc && nb_checkpoint_save(r->ckpt, &st)) rc = failed(r, "checkpoint save");
    if (!rc && nb_checkpoint_load(r->ckpt, &st)) rc = failed(r, "checkpoint load");
    if (!rc) {
        r->nparams = np;
        r->nvalues = nb_module_numel(model);
        r->params = malloc(sizeof(float) * (size_t)r->nvalues);
        int64_t off = 0;
        for (int i = 0; i < np; i++) {
            memcpy(r->params + off, params[i]->data, sizeof(float) * (size_t)params[i]->numel);
            off += params[i]->numel;
        }
    }
    nb_sched_free(sched);
    nb_optim_free(opt);
    nb_arena_free(ar);
    nb_loader_free(ld);
    nb_loader_free(eval);
    nb_module_free(model);
    return rc;
}

static void *thread_main(void *arg) {
    run *r = arg;
    r->ok = train(r) == 0;
    return NULL;
}

static void make_data(void) {
    g_images = nb_empty(NULL, NB_UINT8, 3, (int64_t[]){N, 6, 6});
    g_labels = nb_empty(NULL, NB_UINT8, 1, (int64_t[]){N});
    nb_rng r;
    nb_rng_seed(&r, 7);
    for (int64_t i = 0; i < N; i++) {
        uint8_t c = (uint8_t)nb_rng_below(&r, 4);
        nb_u8(g_labels)[i] = c;
        for (int k = 0; k < 36; k++) /* the class shows as a brighter quarter of the image */
            nb_u8(g_images)[i * 36 + k] = (uint8_t)(nb_rng_below(&r, 100) + ((k % 6) / 3 + 2 * (k / 18) == c ? 120 : 0));
    }
}

static void same(const run *a, const run *b) {
    ck_assert_msg(a->ok && b->ok, "runs failed: %s | %s", a->err, b->err);
    ck_assert_int_eq(a->nvalues, b->nvalues);
    ck_assert_mem_eq(a->losses, b->losses, sizeof a->losses);
    ck_assert_mem_eq(a->correct, b->correct, sizeof a->correct);
    ck_assert_mem_eq(a->params, b->params, sizeof(float) * (size_t)a->nvalues);
}

static run make_run(int kind, uint64_t seed, int slot) {
    static char paths[8][4096];
    snprintf(paths[slot], sizeof paths[slot], "%s/run%d.ckpt", temp_dir(), slot);
    return (run){.kind = kind, .seed = seed, .ckpt = paths[slot]};
}

/* Every kind of run alone, then all of them at once (and two copies of one run at once). */
START_TEST(test_parallel_runs_match_sequential) {
    make_data();
    run seq[KINDS + 1], par[KINDS + 1];
    for (int k = 0; k <= KINDS; k++) {
        seq[k] = make_run(k % KINDS, 100 + (uint64_t)(k % KINDS), k);
        thread_main(&seq[k]);
        ck_assert_msg(seq[k].ok, "run %d: %s", k, seq[k].err);
        ck_assert(isfinite(seq[k].losses[EPOCHS - 1]));
        ck_assert_msg(seq[k].losses[EPOCHS - 1] < seq[k].losses[0], "run %d does not learn", k);
    }
    pthread_t tid[KINDS + 1];
    nb_clear_error();
    for (int k = 0; k <= KINDS; k++) {
        par[k] = make_run(k % KINDS, 100 + (uint64_t)(k % KINDS), 4 + k);
        ck_assert_int_eq(pthread_create(&tid[k], NULL, thread_main, &par[k]), 0);
    }
    for (int k = 0; k <= KINDS; k++) ck_assert_int_eq(pthread_join(tid[k], NULL), 0);
    ck_assert_int_eq(nb_last_status(), NB_OK); /* the threads' errors stayed on their threads */
    for (int k = 0; k <= KINDS; k++) {
        same(&seq[k], &par[k]);
        free(seq[k].params);
        free(par[k].params);
    }
    nb_tensor_free(g_images);
    nb_tensor_free(g_labels);
}
END_TEST

int main(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, test_parallel_runs_match_sequential);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
