/* test_docs.c - the teaching material is code that runs:
 * - the worked op of docs/internals.md (docs/examples/softplus.c) passes nb_gradcheck and
 *   matches PyTorch's formula;
 * - every ```c block of docs/internals.md and docs/pytorch.md appears verbatim in a compiled
 *   file (docs/examples/, include/, src/, tests/, models/, tools/), so the docs cannot drift;
 *   every one of docs/tutorial.md in docs/examples/tutorial.c, which runs as doc_tutorial, of
 *   docs/data.md in docs/examples/data.c, which runs as doc_data, and of docs/distributed.md
 *   in docs/examples/distributed.c, which runs as doc_distributed (and under mpirun in
 *   test_dist);
 * - models/backprop converges on XOR, agrees with its hand-written chain rule and writes DOT;
 * - `nabla graph` writes the DOT of a model's forward and loss.
 * The other programs of docs/examples/ run as their own tests (suite docs). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"
#include "../docs/examples/softplus.h"

/* ---- the worked op -------------------------------------------------------------------------- */
static double softplus_ref(double x, double beta, double threshold) {
    return x * beta > threshold ? x : log1p(exp(x * beta)) / beta;
}

START_TEST(test_softplus_forward) {
    float xs[] = {-30, -4, -1, -0.25f, 0, 0.5f, 1, 3, 19.9f, 20.5f, 40};
    float params[][2] = {{1, 20}, {2, 20}, {0.5f, 5}, {10, 20}};
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x = nb_from_array(ar, NB_FLOAT32, 1, (int64_t[]){11}, xs);
    for (int k = 0; k < 4; k++) {
        nb_tensor *y = ex_softplus(ar, x, params[k][0], params[k][1]);
        ck_assert_ptr_nonnull(y);
        ck_assert_ptr_null(y->internal.node); /* x does not require grad: nothing recorded */
        for (int i = 0; i < 11; i++) {
            double want = softplus_ref(xs[i], params[k][0], params[k][1]);
            ck_assert_msg(fabs(nb_f32(y)[i] - want) <= 1e-6 * fmax(1.0, fabs(want)),
                          "softplus(%g, beta %g, threshold %g) = %.9g, want %.9g", xs[i],
                          params[k][0], params[k][1], nb_f32(y)[i], want);
        }
    }
    /* PyTorch 1.13.1: F.softplus(x, beta=2, threshold=5) and its gradient (sum().backward()) */
    float px[] = {-4, -0.25f, 0.5f, 2.4f, 2.6f};
    float py[] = {0.000167703183f, 0.237038493f, 0.656630814f, 2.40409803f, 2.5999999f};
    float pg[] = {0.000335350138f, 0.377540678f, 0.731058598f, 0.991837442f, 1};
    nb_tensor *x2 = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){5}, px);
    nb_requires_grad(x2, true);
    nb_tensor *y2 = ex_softplus(ar, x2, 2, 5);
    ck_assert_int_eq(nb_backward(nb_sum(ar, y2)), NB_OK);
    assert_close("softplus vs PyTorch", nb_f32(y2), py, 5, 1e-6, 0);
    assert_close("softplus grad vs PyTorch", nb_f32(x2->grad), pg, 5, 1e-6, 0);
    nb_tensor_free(x2);
    nb_arena_free(ar);
}
END_TEST

/* What gradcheck differentiates: softplus with (beta, threshold) from user. */
static nb_tensor *softplus_fn(nb_arena *ar, nb_tensor *const *in, void *user) {
    const float *bt = user;
    return ex_softplus(ar, in[0], bt[0], bt[1]);
}

/* x reaches the output three ways, so x's gradient buffer is written once and added to twice. */
static nb_tensor *softplus_twice_fn(nb_arena *ar, nb_tensor *const *in, void *user) {
    const float *bt = user;
    nb_tensor *a = ex_softplus(ar, in[0], bt[0], bt[1]);
    nb_tensor *b = ex_softplus(ar, in[0], bt[0], bt[1]);
    return nb_add(ar, a, nb_mul(ar, b, in[0]));
}

START_TEST(test_softplus_gradcheck) {
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_tensor *x = nb_uniform(NULL, 2, (int64_t[]){3, 5}, -4, 4, &rng);
    nb_requires_grad(x, true);
    float bt[2] = {1, 20}; /* PyTorch's defaults: beta 1, threshold 20 */
    ck_assert_msg(nb_gradcheck(softplus_fn, 1, &x, bt, NULL) == NB_OK, "%s", nb_last_error());
    nb_tensor_free(x);
}
END_TEST

START_TEST(test_softplus_gradcheck_more) {
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    nb_tensor *x = nb_uniform(NULL, 2, (int64_t[]){4, 6}, -4, 4, &rng);
    nb_requires_grad(x, true);
    /* beta 10, threshold 20: the linear branch above x = 2 (value and slope are continuous
     * there to 1e-9); beta 0.5: a wide soft region */
    float cases[][2] = {{10, 20}, {0.5f, 20}, {1, 20}};
    for (int k = 0; k < 3; k++) {
        ck_assert_msg(nb_gradcheck(softplus_fn, 1, &x, cases[k], NULL) == NB_OK, "%s",
                      nb_last_error());
        ck_assert_msg(nb_gradcheck(softplus_twice_fn, 1, &x, cases[k], NULL) == NB_OK, "%s",
                      nb_last_error());
    }
    ck_assert_ptr_null(x->grad); /* gradcheck leaves the input's grad as it found it */
    nb_tensor_free(x);
}
END_TEST

/* The op follows nabla's contract: NULL in, NULL out (error untouched); wrong dtype named;
 * no node in no-grad mode; gradients accumulate across backward calls. */
START_TEST(test_softplus_contract) {
    nb_arena *ar = nb_arena_new(0);
    nb_clear_error();
    ck_assert_ptr_null(ex_softplus(ar, NULL, 1, 20));
    ck_assert_int_eq(nb_last_status(), NB_OK);
    nb_tensor *i = nb_empty(ar, NB_INT32, 1, (int64_t[]){2});
    ck_assert_ptr_null(ex_softplus(ar, i, 1, 20));
    ck_assert_str_eq(nb_last_error(), "softplus: input must be float32, got int32");
    nb_tensor *x = nb_from_array(NULL, NB_FLOAT32, 1, (int64_t[]){2}, (float[]){0, 1});
    nb_requires_grad(x, true);
    bool prev = nb_set_grad_enabled(false);
    ck_assert_ptr_null(ex_softplus(ar, x, 1, 20)->internal.node);
    nb_set_grad_enabled(prev);
    for (int k = 1; k <= 2; k++) {
        nb_arena_reset(ar);
        ck_assert_int_eq(nb_backward(nb_sum(ar, ex_softplus(ar, x, 1, 20))), NB_OK);
        ck_assert_float_eq_tol(nb_f32(x->grad)[0], k * 0.5f, 1e-7f);            /* sigmoid(0) */
        ck_assert_float_eq_tol(nb_f32(x->grad)[1], k / (1 + expf(-1)), 1e-6f);  /* sigmoid(1) */
    }
    nb_arena_free(ar);
    nb_tensor_free(x);
}
END_TEST

/* ---- every ```c block of the docs is compiled code ------------------------------------------ */
typedef struct corpus {
    char **text;
    char **path;
    int n, cap;
} corpus;

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

static void add_tree(corpus *c, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            add_tree(c, path);
            continue;
        }
        size_t len = strlen(path);
        if (len < 2 || (strcmp(path + len - 2, ".c") && strcmp(path + len - 2, ".h"))) continue;
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 256;
            c->text = realloc(c->text, sizeof *c->text * (size_t)c->cap);
            c->path = realloc(c->path, sizeof *c->path * (size_t)c->cap);
        }
        c->text[c->n] = read_all(path);
        c->path[c->n++] = strdup(path);
    }
    closedir(d);
}

/* Check every ```c block of one doc is in a compiled file (whose path ends with only, when
 * only is not NULL); returns the number of blocks. */
static int check_blocks(const corpus *c, const char *doc, const char *only) {
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/%s", NB_SOURCE_DIR, doc);
    char *md = read_all(path);
    ck_assert_msg(md != NULL, "cannot read %s", path);
    int blocks = 0, line = 1;
    for (char *p = md; *p;) {
        char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len == 4 && !strncmp(p, "```c", 4)) {
            int first = line + 1;
            char *body = eol + 1, *end = body;
            for (;;) { /* the closing fence: a line that is exactly ``` */
                ck_assert_msg(*end, "%s:%d: unterminated ```c block", doc, first - 1);
                if (!strncmp(end, "```\n", 4) || !strcmp(end, "```")) break;
                char *nl = strchr(end, '\n');
                end = nl ? nl + 1 : end + strlen(end);
                line++;
            }
            char save = *end;
            *end = '\0';
            bool found = false;
            for (int i = 0; i < c->n && !found; i++) {
                size_t pl = strlen(c->path[i]), ol = only ? strlen(only) : 0;
                if (only && (pl < ol || strcmp(c->path[i] + pl - ol, only))) continue;
                found = c->text[i] && strstr(c->text[i], body);
            }
            ck_assert_msg(found, "%s:%d: this ```c block is not (verbatim) in %s:\n%s", doc, first,
                          only ? only : "any compiled file under docs/examples, include, src, tests, "
                                        "models or tools", body);
            *end = save;
            blocks++;
            p = end;
            line++;
            continue;
        }
        if (!eol) break;
        p = eol + 1;
        line++;
    }
    free(md);
    return blocks;
}

START_TEST(test_doc_blocks_are_compiled_code) {
    corpus c = {0};
    const char *dirs[] = {"docs/examples", "include", "src", "tests", "models", "tools"};
    for (int i = 0; i < 6; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", NB_SOURCE_DIR, dirs[i]);
        add_tree(&c, path);
    }
    ck_assert_int_gt(c.n, 50);
    ck_assert_int_ge(check_blocks(&c, "internals.md", NULL), 10);
    ck_assert_int_ge(check_blocks(&c, "pytorch.md", NULL), 10);
    /* the tutorial's blocks are pieces of the program that runs as the test doc_tutorial */
    ck_assert_int_ge(check_blocks(&c, "tutorial.md", "/docs/examples/tutorial.c"), 11);
    ck_assert_int_ge(check_blocks(&c, "data.md", "/docs/examples/data.c"), 1);
    /* the loop test_dist runs under mpirun */
    ck_assert_int_ge(check_blocks(&c, "distributed.md", "/docs/examples/distributed.c"), 4);
    for (int i = 0; i < c.n; i++) {
        free(c.text[i]);
        free(c.path[i]);
    }
    free(c.text);
    free(c.path);
}
END_TEST

/* ---- the programs --------------------------------------------------------------------------- */
typedef struct run {
    int code;
    char out[1 << 16], err[1 << 14];
} run;

static run R;

static void slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = '\0';
    if (f) fclose(f);
}

/* Run a program of the build tree (argv NULL-terminated); output in R. */
static void run_prog(const char *const *argv) {
    char out[4096], err[4096];
    const char *dir = temp_dir();
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    int st = run_program(argv, out, err);
    ck_assert_msg(WIFEXITED(st), "%s was killed by signal %d", argv[0], WTERMSIG(st));
    R.code = WEXITSTATUS(st);
    ck_assert_msg(R.code != 126 && R.code != 127, "cannot run %s", argv[0]);
    slurp(out, R.out, sizeof R.out);
    slurp(err, R.err, sizeof R.err);
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

START_TEST(test_backprop_converges_and_writes_dot) {
    char dot[4096];
    snprintf(dot, sizeof dot, "%s/xor.dot", temp_dir());
    run_prog((const char *[]){NB_BUILD_DIR "/models/backprop", "--dot", dot, NULL});
    ck_assert_msg(R.code == 0, "exit %d\n%s\n%s", R.code, R.out, R.err);
    ck_assert_msg(strstr(R.out, "\nconverged after "), "%s", R.out);
    ck_assert_msg(strstr(R.out, "largest |autograd - by hand| = "), "%s", R.out);
    ck_assert_int_eq(count(R.out, "      autograd  "), 8); /* every gradient of step 1 */
    ck_assert_int_eq(count(R.out, "      by hand   "), 8);
    static char s[1 << 14];
    slurp(dot, s, sizeof s);
    ck_assert_msg(!strncmp(s, "digraph nabla {", 15), "%s", s);
    ck_assert_int_eq(count(s, "shape=box"), 5); /* linear, tanh, linear, sigmoid, mse_loss */
    ck_assert_int_eq(count(s, "fillcolor"), 4); /* the 4 parameters */
    ck_assert_msg(strstr(s, "label=\"mse_loss\\n[]\", shape=box, peripheries=2"), "%s", s);
    ck_assert_msg(strstr(s, "label=\"tanh\\n[4, 2]\""), "%s", s);

    /* more hidden units; a bad flag is a usage error */
    run_prog((const char *[]){NB_BUILD_DIR "/models/backprop", "--hidden", "4", NULL});
    ck_assert_msg(R.code == 0 && strstr(R.out, "2-4-1 network"), "%d %s", R.code, R.out);
    run_prog((const char *[]){NB_BUILD_DIR "/models/backprop", "--hidden", "9", NULL});
    ck_assert_int_eq(R.code, 2);
    ck_assert_msg(strstr(R.err, "--hidden 1..8"), "%s", R.err);
    /* a seed that ends in XOR's local minimum says so and fails */
    run_prog((const char *[]){NB_BUILD_DIR "/models/backprop", "--seed", "0", "--steps", "300",
                              NULL});
    ck_assert_int_eq(R.code, 1);
    ck_assert_msg(strstr(R.out, "did not converge in 300 steps"), "%s", R.out);
}
END_TEST

/* models/char_rnn refuses a value that is not a number (atol made it a silent 0). */
START_TEST(test_char_rnn_flags) {
    run_prog((const char *[]){NB_BUILD_DIR "/models/char_rnn", "--steps", "abc", NULL});
    ck_assert_int_eq(R.code, 2);
    ck_assert_msg(strstr(R.err, "char_rnn: --steps: 'abc' is not a number"), "%s", R.err);
    run_prog((const char *[]){NB_BUILD_DIR "/models/char_rnn", "--lr", "0.1x", NULL});
    ck_assert_int_eq(R.code, 2);
    ck_assert_msg(strstr(R.err, "char_rnn: --lr: '0.1x' is not a number"), "%s", R.err);
}
END_TEST

/* models/sparse_words writes a bag-of-words corpus that nabla train reads, and shows that
 * EmbeddingBag(sum) over word ids is the Linear on multi-hot rows, with sparse gradients. */
START_TEST(test_sparse_words) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", temp_dir()); /* run_prog makes temp dirs of its own */
    run_prog((const char *[]){NB_BUILD_DIR "/models/sparse_words", dir, "--train", "300", "--test", "100", NULL});
    ck_assert_msg(R.code == 0, "exit %d\n%s\n%s", R.code, R.out, R.err);
    ck_assert_msg(strstr(R.out, "wrote 300 + 100 documents to "), "%s", R.out);
    ck_assert_msg(strstr(R.out, "EmbeddingBag(sum) over the word ids = Linear on the multi-hot rows"), "%s", R.out);
    ck_assert_msg(strstr(R.out, " zero columns in the first layer's gradient"), "%s", R.out);
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "train", "--data", dir, "--hidden", "64", "--epochs", "1",
                              NULL});
    ck_assert_msg(R.code == 0 && strstr(R.out, "300 train / 100 test samples"), "%s %s", R.out, R.err);
    run_prog((const char *[]){NB_BUILD_DIR "/models/sparse_words", dir, "--train", "0", NULL});
    ck_assert_int_eq(R.code, 2);
    ck_assert_msg(strstr(R.err, "--train: '0' is not a number in 1..10000000"), "%s", R.err);
    run_prog((const char *[]){NB_BUILD_DIR "/models/sparse_words", "/nonexistent/dir", NULL});
    ck_assert_int_eq(R.code, 1);
}
END_TEST

START_TEST(test_graph_cli) {
    char dot[4096];
    snprintf(dot, sizeof dot, "%s/g.dot", temp_dir());
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", "--hidden", "32,16", "--batch", "3",
                              "--out", dot, NULL});
    ck_assert_msg(R.code == 0, "exit %d: %s", R.code, R.err);
    static char s[1 << 14];
    slurp(dot, s, sizeof s);
    ck_assert_msg(!strncmp(s, "digraph nabla {", 15), "%s", s);
    ck_assert_msg(strstr(s, "label=\"cross_entropy\\n[]\", shape=box, peripheries=2"), "%s", s);
    ck_assert_msg(strstr(s, "label=\"linear\\n[3, 32]\"") && strstr(s, "label=\"relu\\n[3, 16]\""),
                  "%s", s);
    /* leaves by role and name, and the legend of the colours */
    ck_assert_msg(strstr(s, "label=\"0.weight (parameter)\\n[32, 784]\"") &&
                  strstr(s, "label=\"4.bias (parameter)\\n[10]\"") && strstr(s, "label=\"input\\n[3, 784]\"") &&
                  strstr(s, "label=\"target\\n[3]\\nint32\""), "%s", s);
    ck_assert_int_eq(count(s, "shape=box"), 6 + 2);  /* 3 linear, 2 relu, cross_entropy; legend: 2 */
    ck_assert_int_eq(count(s, "fillcolor=\"lightblue\""), 6); /* 3 weights, 3 biases */
    ck_assert_int_eq(count(s, "subgraph cluster_legend"), 1);
    ck_assert_ptr_null(strstr(s, "|value|"));
    /* --values: the norms of every tensor after backward, on real images (--data) */
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", "--hidden", "32", "--batch", "4", "--values",
                              "--data", NB_SOURCE_DIR "/datasets/tiny", "--no-legend", "--out", dot, NULL});
    ck_assert_msg(R.code == 0, "exit %d: %s", R.code, R.err);
    slurp(dot, s, sizeof s);
    ck_assert_int_eq(count(s, "subgraph cluster_legend"), 0);
    ck_assert_int_eq(count(s, "|value| "), 4 + 4 + 1); /* 4 ops, 4 parameters, the input */
    ck_assert_int_eq(count(s, "|grad| "), 4 + 4);      /* the input and target have none */
    ck_assert_msg(strstr(s, "label=\"input\\n[4, 784]\\n|value| "), "%s", s);
    ck_assert_msg(!strstr(s, "label=\"input\\n[4, 784]\\n|value| 0\""), "%s", s); /* real images */
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", "--data", "/nonexistent", NULL});
    ck_assert_int_eq(R.code, 1);
    ck_assert_msg(strstr(R.err, "nabla graph: data: "), "%s", R.err);
    /* stdout by default */
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", NULL});
    ck_assert_msg(R.code == 0 && strstr(R.out, "label=\"linear\\n[1, 128]\""), "%s", R.out);
    /* the CNN reads [B, 1, 28, 28], as in training (it was given [B, 28, 28]) */
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", "--model", "cnn", "--batch", "2", NULL});
    ck_assert_msg(R.code == 0 && strstr(R.out, "label=\"conv2d\\n[2, 6, 28, 28]\""), "%d %s %s", R.code,
                  R.out, R.err);
    /* errors */
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", "--batch", "0", NULL});
    ck_assert_int_eq(R.code, 2);
    ck_assert_msg(strstr(R.err, "--batch must be between 1 and 65536, got 0"), "%s", R.err);
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", "--hidden", "0", NULL});
    ck_assert_int_eq(R.code, 2);
    run_prog((const char *[]){NB_BUILD_DIR "/nabla", "graph", "--out", "/nonexistent/dir/g.dot",
                              NULL});
    ck_assert_int_eq(R.code, 1);
    ck_assert_msg(strstr(R.err, "cannot write /nonexistent/dir/g.dot"), "%s", R.err);
}
END_TEST

int main(void) {
    Suite *s = suite_create("docs");
    TCase *op = tcase_create("worked op");
    tcase_add_test(op, test_softplus_forward);
    tcase_add_test(op, test_softplus_gradcheck);
    tcase_add_test(op, test_softplus_gradcheck_more);
    tcase_add_test(op, test_softplus_contract);
    suite_add_tcase(s, op);
    TCase *docs = tcase_create("docs");
    tcase_add_test(docs, test_doc_blocks_are_compiled_code);
    suite_add_tcase(s, docs);
    TCase *progs = tcase_create("programs");
    tcase_add_test(progs, test_backprop_converges_and_writes_dot);
    tcase_add_test(progs, test_char_rnn_flags);
    tcase_add_test(progs, test_graph_cli);
    tcase_add_test(progs, test_sparse_words);
    suite_add_tcase(s, progs);
    return run_suite(s) ? 1 : 0;
}
