/* dist_worker.c - the MPI program of the distributed tests (test_dist.c runs it under mpirun).
 *
 *   dist_worker train MODEL OPTIM STEPS GLOBAL_BATCH OUT [BUCKET_BYTES [ACCUM [mpi]]]
 *       MODEL mlp|lenet|bn, OPTIM sgd|adam. A fixed synthetic data set is walked in order,
 *       GLOBAL_BATCH samples a step; rank r of W trains on rows [r B/W, (r+1) B/W) of each
 *       global batch (with ACCUM > 1, in ACCUM micro-batches, the first ACCUM-1 of them without
 *       gradient sync; with "mpi", MPI's allreduce rather than shared memory). Every rank builds its model from the seed 100 + rank: the wrapper must
 *       replace it with rank 0's. Before each step every rank also computes the gradient of the
 *       whole global batch alone and checks the averaged one against it (1e-5 of each tensor's
 *       largest element; not for bn, whose batch statistics are each process's). Rank 0
 *       writes the weights to OUT; every rank checks that its weights and buffers equal rank
 *       0's ("same on every rank" on stdout, from rank 0).
 *   dist_worker unused            rank 0's loss uses the first layer only, the others' the
 *       whole model: the last layer's gradient is averaged with zeros, never left out
 *   dist_worker buffers on|off    BatchNorm running statistics with and without broadcast
 *   dist_worker mismatch model|optim   rank 1 differs; every rank must refuse
 *   dist_worker timeout           rank 1 never joins the allreduce; rank 0 must time out
 *   dist_worker collectives       broadcast, allreduce_sum, barrier, check_same
 *   dist_worker comm              the application owns MPI and gives nabla half of its processes
 * Failures print "rank R: ..." on stderr and exit 3. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef NB_HAVE_MPI
#include <mpi.h> /* before nabla.h: nb_dist_init_comm(MPI_Comm) is declared then */
#endif
#include "nabla.h"

static nb_dist *D;
static int rank_, world;

static int die(const char *what) {
    fprintf(stderr, "rank %d: %s: %s\n", rank_, what, nb_last_error());
    fflush(stderr);
    return 3;
}

#define FEATURES 784
#define CLASSES 10

static nb_module *build(const char *model, uint64_t seed, int64_t hidden) {
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    if (!strcmp(model, "mlp"))
        return nb_sequential(3, (nb_module *[]){nb_linear_new(FEATURES, hidden, true, &rng), nb_relu_new(),
                                                nb_linear_new(hidden, CLASSES, true, &rng)});
    if (!strcmp(model, "bn"))
        return nb_sequential(4, (nb_module *[]){nb_linear_new(FEATURES, hidden, true, &rng),
                                                nb_batchnorm1d_new(hidden, NULL), nb_relu_new(),
                                                nb_linear_new(hidden, CLASSES, true, &rng)});
    nb_conv_opts pad2 = nb_conv_defaults();
    pad2.padding[0] = pad2.padding[1] = 2;
    return nb_sequential(12, (nb_module *[]){
        nb_conv2d_new(1, 6, 5, 5, &pad2, true, &rng), nb_relu_new(), nb_max_pool2d_new(2, 2, NULL),
        nb_conv2d_new(6, 16, 5, 5, NULL, true, &rng), nb_relu_new(), nb_max_pool2d_new(2, 2, NULL),
        nb_flatten_new(1, -1), nb_linear_new(400, 120, true, &rng), nb_relu_new(),
        nb_linear_new(120, 84, true, &rng), nb_relu_new(), nb_linear_new(84, CLASSES, true, &rng)});
}

/* The synthetic data: x in [0, 1), labels from a fixed random linear map of x (learnable). */
static float *make_x(int64_t n) {
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    float *x = malloc(sizeof(float) * (size_t)(n * FEATURES));
    for (int64_t i = 0; i < n * FEATURES; i++) x[i] = nb_rng_uniform(&rng);
    return x;
}

static int32_t *make_y(const float *x, int64_t n) {
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    float *w = malloc(sizeof(float) * FEATURES * CLASSES);
    for (int i = 0; i < FEATURES * CLASSES; i++) w[i] = nb_rng_uniform(&rng) - 0.5f;
    int32_t *y = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        float best = -INFINITY;
        for (int c = 0; c < CLASSES; c++) {
            float s = 0;
            for (int k = 0; k < FEATURES; k++) s += w[c * FEATURES + k] * x[i * FEATURES + k];
            if (s > best) best = s, y[i] = c;
        }
    }
    free(w);
    return y;
}

/* Every rank's parameters and buffers must be rank 0's, bit for bit. */
static int check_same_everywhere(nb_module *m) {
    const nb_named_tensor *st;
    int n = nb_module_state(m, &st);
    size_t cap = 600 * (size_t)(n + 1), at = 0; /* names are at most 512 bytes */
    char *text = malloc(cap);
    if (!text) return NB_ENOMEM;
    for (int i = 0; i < n; i++) {
        uint64_t h = 1469598103934665603u;
        const unsigned char *p = st[i].tensor->data;
        size_t bytes = (size_t)st[i].tensor->numel * nb_dtype_size(st[i].tensor->dtype);
        for (size_t k = 0; k < bytes; k++) h = (h ^ p[k]) * 1099511628211u;
        at += (size_t)snprintf(text + at, cap - at, "%s %016llx\n", st[i].name, (unsigned long long)h);
    }
    int rc = nb_dist_check_same(D, "trained model", text);
    free(text);
    return rc;
}

static nb_tensor *rows(nb_arena *ar, const float *x, int64_t first, int64_t n, bool image) {
    int64_t shape[4] = {n, 1, 28, 28};
    if (!image) shape[1] = FEATURES;
    return nb_from_array(ar, NB_FLOAT32, image ? 4 : 2, shape, x + first * FEATURES);
}

/* The averaged gradient must be the gradient of the whole global batch: compute that here
 * (sync off, this process alone) and compare, relative to each tensor's largest element. */
static int check_grads(nb_ddp *dp, nb_module *model, nb_arena *ar, nb_tensor *xb, nb_tensor *yb) {
    nb_tensor *params[16];
    int np = nb_module_parameters(model, params, 16);
    float *avg[16];
    for (int i = 0; i < np; i++) {
        avg[i] = malloc(sizeof(float) * (size_t)params[i]->numel);
        memcpy(avg[i], params[i]->grad->data, sizeof(float) * (size_t)params[i]->numel);
    }
    nb_module_zero_grad(model, true);
    bool prev = nb_ddp_set_sync(dp, false);
    int rc = nb_backward(nb_cross_entropy(ar, nb_forward(model, ar, xb), yb, NULL));
    nb_ddp_set_sync(dp, prev);
    for (int i = 0; i < np && !rc; i++) {
        const float *full = nb_f32(params[i]->grad);
        double big = 0, worst = 0;
        for (int64_t k = 0; k < params[i]->numel; k++) big = fmax(big, fabs(full[k]));
        for (int64_t k = 0; k < params[i]->numel; k++) worst = fmax(worst, fabs(full[k] - avg[i][k]));
        if (worst > 1e-5 * big) {
            fprintf(stderr, "rank %d: the averaged gradient of parameter %d is %.3g (relative) away from "
                    "the global batch's\n", rank_, i, worst / big);
            rc = 3;
        }
        memcpy(params[i]->grad->data, avg[i], sizeof(float) * (size_t)params[i]->numel);
    }
    for (int i = 0; i < np; i++) free(avg[i]);
    return rc;
}

static int train(int argc, char **argv) {
    if (argc < 7) return fprintf(stderr, "usage: dist_worker train MODEL OPTIM STEPS B OUT [BUCKET [ACCUM]]\n"), 2;
    const char *model_name = argv[2], *optim = argv[3], *out = argv[6];
    int steps = atoi(argv[4]), accum = argc > 8 ? atoi(argv[8]) : 1;
    int64_t gb = atoll(argv[5]), b = gb / world, mb = b / accum;
    bool image = !strcmp(model_name, "lenet");
    nb_ddp_opts o = nb_ddp_defaults();
    if (argc > 7) o.bucket_bytes = (size_t)atoll(argv[7]);
    o.shared_memory = !(argc > 9 && !strcmp(argv[9], "mpi"));
    int64_t n = (int64_t)steps * gb;
    float *x = make_x(n);
    int32_t *y = make_y(x, n);
    nb_module *model = build(model_name, 100 + (uint64_t)rank_, 32);
    nb_ddp *dp = model ? nb_ddp_new(D, model, &o) : NULL;
    if (!dp) return die("ddp");
    nb_tensor *params[16];
    int np = nb_module_parameters(model, params, 16);
    nb_optim *opt;
    if (!strcmp(optim, "sgd")) {
        nb_sgd_opts so = nb_sgd_defaults();
        so.lr = 0.05; /* at 0.1, LeNet on these noise images is chaotic enough that a rounding
                         difference flips a ReLU within 20 steps: beyond what 1e-5 can absorb */
        so.momentum = 0.9;
        opt = nb_sgd(params, np, &so);
    } else {
        nb_adam_opts ao = nb_adam_defaults();
        opt = nb_adam(params, np, &ao);
    }
    nb_arena *ar = nb_arena_new(0);
    if (!opt || nb_dist_check_optim(D, opt)) return die("optimizer");
    for (int s = 0; s < steps; s++) {
        nb_optim_zero_grad(opt, true);
        for (int a = 0; a < accum; a++) {
            nb_arena_reset(ar);
            int64_t first = s * gb + rank_ * b + a * mb;
            nb_tensor *xb = rows(ar, x, first, mb, image);
            nb_tensor *yb = nb_from_array(ar, NB_INT32, 1, (int64_t[]){mb}, y + first);
            nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, xb), yb, NULL);
            if (accum > 1) loss = nb_mul_scalar(ar, loss, 1.0f / (float)accum);
            nb_ddp_set_sync(dp, a == accum - 1);
            if (!loss || nb_backward(loss)) return die("backward");
        }
        if (strcmp(model_name, "bn")) { /* BatchNorm normalises each process's batch alone */
            nb_arena_reset(ar);
            nb_tensor *xg = rows(ar, x, s * gb, gb, image);
            nb_tensor *yg = nb_from_array(ar, NB_INT32, 1, (int64_t[]){gb}, y + s * gb);
            int rc = check_grads(dp, model, ar, xg, yg);
            if (rc) return rc > 0 ? rc : die("checking the gradients");
        }
        if (nb_optim_step(opt)) return die("step");
    }
    if (check_same_everywhere(model)) return die("after training");
    if (rank_ == 0) {
        if (nb_weights_save(out, model, NULL, 0)) return die("save");
        nb_ddp_stats st = nb_ddp_get_stats(dp);
        printf("same on every rank; %lld backwards, %lld allreduces, %lld bytes\n", (long long)st.backwards,
               (long long)st.allreduces, (long long)st.bytes);
    }
    nb_arena_free(ar);
    nb_optim_free(opt);
    nb_ddp_free(dp);
    nb_module_free(model);
    free(x);
    free(y);
    return 0;
}

/* Rank 0's loss leaves the last layer out, the others' use it: the last layer's averaged
 * gradient is (world - 1) / world of the whole model's (every rank has the same data), and
 * rank 0 has it too. */
static int unused(void) {
    float *x = make_x(8);
    nb_module *model = build("mlp", 1, 16);
    nb_ddp *dp = model ? nb_ddp_new(D, model, NULL) : NULL;
    nb_arena *ar = nb_arena_new(0);
    if (!dp || !ar) return die("ddp");
    nb_tensor *w2 = nb_module_find(model, "2.weight");
    float full[16 * CLASSES];
    nb_ddp_set_sync(dp, false); /* the whole model's gradient, here alone */
    if (nb_backward(nb_sum(ar, nb_forward(model, ar, rows(ar, x, 0, 8, false))))) return die("backward");
    memcpy(full, w2->grad->data, sizeof full);
    nb_module_zero_grad(model, true);
    nb_ddp_set_sync(dp, true);
    nb_arena_reset(ar);
    nb_tensor *h = nb_forward(nb_module_child(model, 0), ar, rows(ar, x, 0, 8, false));
    nb_tensor *logits = rank_ == 0 ? h : nb_forward(nb_module_child(model, 2), ar, nb_relu(ar, h));
    if (!logits || nb_backward(nb_sum(ar, logits))) return die("backward");
    if (!w2->grad) return fprintf(stderr, "rank %d: 2.weight has no gradient\n", rank_), 3;
    for (int i = 0; i < 16 * CLASSES; i++)
        if (fabsf(nb_f32(w2->grad)[i] - full[i] * (float)(world - 1) / (float)world) > 1e-6f * (1 + fabsf(full[i])))
            return fprintf(stderr, "rank %d: 2.weight's gradient [%d] is %g, expected %g\n", rank_, i,
                           nb_f32(w2->grad)[i], full[i] * (world - 1) / world), 3;
    if (check_same_everywhere(model)) return die("weights");
    if (rank_ == 0) printf("unused: averaged with zeros\n");
    nb_arena_free(ar);
    nb_ddp_free(dp);
    nb_module_free(model);
    free(x);
    return 0;
}

/* An Embedding with sparse=true: its row-sparse gradient is not in the flat gradient storage
 * that the processes average, so the backward fails, naming the parameter (on every rank). */
static int sparse(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *model = nb_embedding_sparse_new(10, 4, NB_NO_PADDING, &rng);
    nb_ddp *dp = model ? nb_ddp_new(D, model, NULL) : NULL;
    nb_arena *ar = nb_arena_new(0);
    if (!dp || !ar) return die("ddp");
    int32_t idx[3] = {1, 4, 1};
    nb_tensor *x = nb_from_array(ar, NB_INT32, 1, (int64_t[]){3}, idx);
    if (nb_backward(nb_sum(ar, nb_forward(model, ar, x)))) return die("backward");
    printf("sparse: rank %d averaged a sparse gradient\n", rank_);
    return 0;
}

static int buffers(bool on) {
    float *x = make_x(64);
    nb_module *model = build("bn", 3, 16);
    nb_ddp_opts o = nb_ddp_defaults();
    o.broadcast_buffers = on;
    nb_ddp *dp = model ? nb_ddp_new(D, model, &o) : NULL;
    nb_arena *ar = nb_arena_new(0);
    if (!dp || !ar) return die("ddp");
    for (int s = 0; s < 3; s++) {
        nb_arena_reset(ar);
        nb_tensor *out = nb_forward(model, ar, rows(ar, x, (s * world + rank_) * 8 % 56, 8, false));
        if (!out || nb_backward(nb_sum(ar, out))) return die("backward");
    }
    int rc = check_same_everywhere(model);
    if (rank_ == 0) printf("buffers %s\n", rc ? "differ" : "same");
    nb_arena_free(ar);
    nb_ddp_free(dp);
    nb_module_free(model);
    free(x);
    return 0;
}

static int mismatch(const char *what) {
    bool model_differs = !strcmp(what, "model");
    nb_module *model = build("mlp", 0, model_differs && rank_ == 1 ? 24 : 32);
    nb_ddp *dp = model ? nb_ddp_new(D, model, NULL) : NULL;
    if (!dp) return die("ddp");
    nb_tensor *params[4];
    int np = nb_module_parameters(model, params, 4);
    nb_sgd_opts so = nb_sgd_defaults();
    so.lr = rank_ == 1 ? 0.01 : 0.1;
    nb_optim *opt = nb_sgd(params, np, &so);
    if (nb_dist_check_optim(D, opt)) return die("optimizer");
    nb_optim_free(opt);
    nb_ddp_free(dp);
    nb_module_free(model);
    return 0;
}

static int timeout(void) {
    float *x = make_x(8);
    nb_module *model = build("mlp", 0, 16);
    nb_ddp *dp = model ? nb_ddp_new(D, model, NULL) : NULL;
    nb_arena *ar = nb_arena_new(0);
    if (!dp || !ar || nb_dist_set_timeout(D, rank_ == 0 ? 1 : 0)) return die("ddp");
    if (rank_ != 0) { /* wait for rank 0's word (which the abort below replaces) */
        double v = 0;
        nb_dist_broadcast(D, &v, sizeof v, 0);
        return 0;
    }
    nb_tensor *out = nb_forward(model, ar, rows(ar, x, 0, 8, false));
    if (nb_backward(nb_sum(ar, out))) {
        int rc = die("backward");
        nb_dist_abort(D, rc);
    }
    return 0;
}

static int collectives(void) {
    char buf[16] = "";
    if (rank_ == 0) strcpy(buf, "from rank 0");
    double v[2] = {rank_ + 1, 0.5};
    if (nb_dist_broadcast(D, buf, sizeof buf, 0) || nb_dist_allreduce_sum(D, v, 2) || nb_dist_barrier(D))
        return die("collectives");
    double want = world * (world + 1) / 2.0;
    if (strcmp(buf, "from rank 0") || v[0] != want || v[1] != 0.5 * world)
        return fprintf(stderr, "rank %d: got \"%s\", %g, %g\n", rank_, buf, v[0], v[1]), 3;
    if (nb_dist_check_same(D, "text", "a\nb\n")) return die("check_same");
    if (rank_ == 0) printf("collectives ok on %d processes\n", world);
    return 0;
}

#ifdef NB_HAVE_MPI
/* The embedding case: the application initialises MPI, splits its processes in two halves (even
 * and odd ranks) and gives nabla its half; nabla leaves MPI to it (the application finalises). */
static int app_comm(void) {
    MPI_Init(NULL, NULL);
    int wr, ws;
    MPI_Comm_rank(MPI_COMM_WORLD, &wr);
    MPI_Comm_size(MPI_COMM_WORLD, &ws);
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, wr % 2, wr, &half);
    rank_ = wr;
    if (nb_dist_init_fcomm((int)MPI_Comm_c2f(MPI_COMM_NULL))) return fprintf(stderr, "MPI_COMM_NULL accepted\n"), 3;
    if (!(D = nb_dist_init_comm(half))) return die("init_comm");
    int want_size = (ws - wr % 2 + 1) / 2, rc = 0;
    double v = 1;
    if (nb_dist_rank(D) != wr / 2 || nb_dist_world_size(D) != want_size || nb_dist_allreduce_sum(D, &v, 1) ||
        v != want_size) {
        fprintf(stderr, "rank %d: half rank %d of %d, sum %g\n", wr, nb_dist_rank(D), nb_dist_world_size(D), v);
        rc = 3;
    }
    nb_dist_free(D);
    MPI_Comm_free(&half);
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (finalized) return fprintf(stderr, "rank %d: nabla finalised the application's MPI\n", wr), 3;
    MPI_Barrier(MPI_COMM_WORLD);
    if (!rc && wr == 0) printf("comm: halves of %d processes\n", ws);
    MPI_Finalize();
    return rc;
}
#endif

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: dist_worker MODE ...\n"), 2;
#ifdef NB_HAVE_MPI
    if (!strcmp(argv[1], "comm")) return app_comm();
#endif
    if (!(D = nb_dist_init())) return die("init");
    rank_ = nb_dist_rank(D);
    world = nb_dist_world_size(D);
    int rc = 2;
    if (!strcmp(argv[1], "train")) rc = train(argc, argv);
    else if (!strcmp(argv[1], "unused")) rc = unused();
    else if (!strcmp(argv[1], "sparse")) rc = sparse();
    else if (!strcmp(argv[1], "buffers") && argc > 2) rc = buffers(!strcmp(argv[2], "on"));
    else if (!strcmp(argv[1], "mismatch") && argc > 2) rc = mismatch(argv[2]);
    else if (!strcmp(argv[1], "timeout")) rc = timeout();
    else if (!strcmp(argv[1], "collectives")) rc = collectives();
    else fprintf(stderr, "dist_worker: unknown mode %s\n", argv[1]);
    nb_dist_free(D);
    return rc;
}
