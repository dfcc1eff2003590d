/* test_cli.c - the nabla command as a user meets it: build/nabla is run as a child process.
 * Bad flags, bad values and bad data files get a clear message and a non-zero exit (2 for
 * usage errors), never a crash; --metrics writes one JSON object per epoch; --limit and the
 * tiny fixtures (datasets/tiny) keep every run short. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pty.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

#define NABLA NB_BUILD_DIR "/nabla"

typedef struct run {
    int code;     /* exit code; -1 if killed by a signal */
    int signal;   /* the signal, if any */
    char out[1 << 16], err[1 << 16];
} run;

static run R;

static void slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = '\0';
    if (f) fclose(f);
}

/* Run build/nabla with the given arguments (NULL-terminated); output in R. */
static run *nabla(const char *arg, ...) {
    const char *argv[64] = {NABLA};
    int argc = 1;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 63; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char out[4096], err[4096];
    const char *dir = temp_dir();
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
        execv(NABLA, (char *const *)argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    R.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    R.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    slurp(out, R.out, sizeof R.out);
    slurp(err, R.err, sizeof R.err);
    ck_assert_msg(R.code != 127 && R.code != 126, "cannot run %s", NABLA);
    return &R;
}

/* The last run failed cleanly: exit code code (or any non-zero code if code < 0), no signal,
 * and stderr contains want. */
#define expect_fail(code_, want)                                                                   \
    do {                                                                                           \
        ck_assert_msg(R.signal == 0, "crashed with signal %d; stderr: %s", R.signal, R.err);        \
        if ((code_) >= 0) ck_assert_msg(R.code == (code_), "exit %d, expected %d; stderr: %s", R.code, (code_), R.err); \
        else ck_assert_msg(R.code > 0, "exit %d, expected a failure; stdout: %s", R.code, R.out);   \
        ck_assert_msg(strstr(R.err, (want)) != NULL, "stderr lacks '%s': %s", (want), R.err);      \
    } while (0)

#define expect_ok()                                                                                \
    ck_assert_msg(R.code == 0 && R.signal == 0, "exit %d signal %d; stderr: %s", R.code, R.signal, R.err)

static const char *tiny(void) { return fixture("tiny"); }

/* A copy of the tiny raw fixtures in a fresh folder, with one file replaced by buf[0..n). */
static const char *data_with(const char *file, const void *buf, size_t n) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s", temp_dir());
    const char *names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        char src[4200], dst[4200];
        snprintf(src, sizeof src, "tiny/raw/%s", names[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        FILE *in = fopen(fixture(src), "rb"), *out = fopen(dst, "wb");
        ck_assert(in && out);
        char b[1 << 16];
        size_t k;
        while ((k = fread(b, 1, sizeof b, in)) > 0) ck_assert_uint_eq(fwrite(b, 1, k, out), k);
        fclose(in);
        fclose(out);
    }
    if (file) {
        char dst[4200];
        snprintf(dst, sizeof dst, "%s/%s", dir, file);
        FILE *f = fopen(dst, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(buf, 1, n, f), n);
        fclose(f);
    }
    return dir;
}

static unsigned char *fixture_bytes(const char *name, size_t *n) {
    FILE *f = fopen(fixture(name), "rb");
    ck_assert_ptr_nonnull(f);
    static unsigned char buf[1 << 17];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* ---- commands and help -------------------------------------------------------------------- */

START_TEST(test_commands) {
    nabla("version", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "nabla " NB_VERSION_STRING), "%s", R.out);
    nabla("--help", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "usage: nabla"), "%s", R.out);
    nabla(NULL);
    ck_assert_int_eq(R.code, 2);
    ck_assert_msg(strstr(R.out, "usage: nabla"), "%s", R.out);
    nabla("predict", "--help", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "--input") && strstr(R.out, "--out") && strstr(R.out, "--load"), "%s", R.out);
    nabla("eval", "--help", NULL);
    ck_assert_msg(strstr(R.out, "--confusion"), "%s", R.out);
    nabla("frobnicate", NULL);
    expect_fail(2, "nabla: unknown command 'frobnicate'");
    nabla("train", "--help", NULL);
    expect_ok();
    const char *flags[] = {"--data", "--model", "--hidden", "--optim", "--lr", "--momentum", "--nesterov",
                           "--weight-decay", "--batch", "--epochs", "--seed", "--threads", "--sched",
                           "--step-size", "--gamma", "--metrics", "--limit", "--train", "--test", "--target-col",
                           "--skip-rows", "--delimiter", "--task", "--test-split", "--val-split", "--normalize",
                           "--early-stop", "--save-best", "--precision"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        ck_assert_msg(strstr(R.out, flags[i]), "train --help does not list %s", flags[i]);
}
END_TEST

START_TEST(test_version) {
    nabla("--version", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "nabla " NB_VERSION_STRING " (gemm: "), "%s", R.out);
    static char first[sizeof R.out];
    memcpy(first, R.out, sizeof first);
    nabla("version", NULL);
    expect_ok();
    ck_assert_str_eq(R.out, first);
}
END_TEST

/* ---- usage errors: exit 2 ----------------------------------------------------------------- */

START_TEST(test_unknown_and_malformed_flags) {
    nabla("train", "--foo", NULL);
    expect_fail(2, "nabla train: unknown option '--foo' (see --help)");
    nabla("train", "--lr=0.1", "--bogus=3", NULL);
    expect_fail(2, "unknown option '--bogus'");
    nabla("train", "-lr", "0.1", NULL);
    expect_fail(2, "unexpected argument '-lr'");
    nabla("train", "extra", NULL);
    expect_fail(2, "unexpected argument 'extra'");
    nabla("train", "--epochs", NULL);
    expect_fail(2, "option --epochs needs a value");
    nabla("train", "--nesterov=maybe", NULL);
    expect_fail(2, "invalid value 'maybe' for --nesterov (expected true, false, 1 or 0)");
}
END_TEST

START_TEST(test_bad_values) {
    struct {
        const char *flag, *value, *want;
    } cases[] = {
        {"--hidden", "abc", "--hidden must be a comma list of up to 16 sizes, got 'abc'"},
        {"--hidden", "", "--hidden must be a comma list"},
        {"--hidden", "128,", "--hidden must be a comma list"},
        {"--hidden", "0", "hidden size 0 is not an integer in 1..1000000"},
        {"--hidden", "12.5", "hidden size 12.5 is not an integer in 1..1000000"},
        {"--hidden", "-3", "hidden size -3 is not an integer in 1..1000000"},
        {"--batch", "0", "--batch must be positive"},
        {"--batch", "abc", "invalid value 'abc' for --batch (expected an integer)"},
        {"--batch", "1.5", "invalid value '1.5' for --batch (expected an integer)"},
        {"--epochs", "-1", "--epochs and --limit not negative"},
        {"--limit", "-5", "--epochs and --limit not negative"},
        {"--threads", "0", "--threads must be between 1 and 64, got 0"},
        {"--threads", "99999999999", "--threads must be between 1 and 64, got 99999999999"},
        {"--lr", "nan", "invalid value 'nan' for --lr (NaN is not allowed)"},
        {"--lr", "0.1x", "invalid value '0.1x' for --lr (expected a number)"},
        {"--seed", "1e999", "invalid value '1e999' for --seed (expected an integer)"},
        {"--epochs", "99999999999999999999", "invalid value '99999999999999999999' for --epochs (out of range)"},
        {"--lr", "1e999", "invalid value '1e999' for --lr (out of range)"},
        {"--model", "resnet", "unknown model 'resnet' (mlp, cnn, rnn, lstm, gru)"},
        {"--dropout", "1", "--dropout must be in [0, 1), got 1"},
        {"--dropout", "-0.1", "--dropout must be in [0, 1), got -0.1"},
        {"--precision", "fp16", "--precision must be fp32 or bf16, not fp16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nabla("train", "--data", tiny(), cases[i].flag, cases[i].value, NULL);
        expect_fail(2, cases[i].want);
    }
}
END_TEST

/* A list or name that does not parse is a malformed value (exit 2), in every command that takes
 * it, and the message names the command; nothing is trained. */
START_TEST(test_malformed_lists) {
    struct {
        const char *a[4], *want;
    } cases[] = {
        {{"--optim", "adam", "--betas", "0.9"}, "--betas expects X,Y (got '0.9')"},
        {{"--optim", "adam", "--betas", "0.9,0.99,0.999"}, "--betas expects X,Y (got '0.9,0.99,0.999')"},
        {{"--optim", "adamw", "--betas", "0.9,x"}, "--betas expects X,Y (got '0.9,x')"},
        {{"--optim", "adam", "--eps", "1e-8,1"}, "invalid value '1e-8,1' for --eps (expected a number)"},
        {{"--optim", "adafactor", "--eps", "1e-3"}, "--eps expects X,Y (got '1e-3')"},
        {{"--optim", "rprop", "--etas", "0.5"}, "--etas expects X,Y (got '0.5')"},
        {{"--optim", "rprop", "--step-sizes", "1e-6,50,3"}, "--step-sizes expects X,Y (got '1e-6,50,3')"},
        {{"--sched", "multistep", "--milestones", "2,x"}, "--milestones: a list of epochs like 30,80, got '2,x'"},
        {{"--sched", "multistep", "--milestones", "1.5"}, "--milestones: a list of epochs like 30,80, got '1.5'"},
        {{"--sched", "multistep", "--milestones", "-1"}, "--milestones: a list of epochs like 30,80, got '-1'"},
        {{"--optim", "adamz"}, "unknown optimizer 'adamz'"},
        {{"--sched", "bogus"}, "unknown schedule 'bogus'"},
    };
    char svg[4200], want[256];
    snprintf(svg, sizeof svg, "%s/lr.svg", temp_dir());
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *const *a = cases[i].a;
        nabla("train", "--data", tiny(), a[0], a[1], a[2], a[3], NULL);
        snprintf(want, sizeof want, "nabla train: %s", cases[i].want);
        expect_fail(2, want);
        ck_assert_ptr_null(strstr(R.out, "epoch 1/"));
        nabla("lr-plot", "--steps", "5", "--out", svg, a[0], a[1], a[2], a[3], NULL);
        snprintf(want, sizeof want, "nabla lr-plot: %s", cases[i].want);
        expect_fail(2, want);
    }
    nabla("graph", "--hidden", "16,x", NULL);
    expect_fail(2, "nabla graph: --hidden must be a comma list of up to 16 sizes, got '16,x'");
}
END_TEST

/* ---- invalid hyperparameters: PyTorch's messages ------------------------------------------- */

START_TEST(test_invalid_hyperparameters) {
    nabla("train", "--data", tiny(), "--lr", "-0.1", NULL);
    expect_fail(-1, "Invalid learning rate: -0.1");
    nabla("train", "--data", tiny(), "--optim", "adam", "--lr", "-1e-3", NULL);
    expect_fail(-1, "Invalid learning rate: -0.001");
    /* the CLI has no --dampening: nesterov needs a momentum (and zero dampening) */
    nabla("train", "--data", tiny(), "--momentum", "0", "--nesterov", NULL);
    expect_fail(-1, "Nesterov momentum requires a momentum and zero dampening");
    nabla("train", "--data", tiny(), "--momentum", "-0.5", NULL);
    expect_fail(-1, "Invalid momentum value: -0.5");
    nabla("train", "--data", tiny(), "--weight-decay", "-1", NULL);
    expect_fail(-1, "Invalid weight_decay value: -1.0");
    /* the registry's optimizers that cannot train these models alone are not offered */
    nabla("train", "--data", tiny(), "--optim", "muon", NULL);
    expect_fail(2, "--optim muon is not offered here: it takes only 2-D parameters");
    nabla("train", "--data", tiny(), "--optim", "sparseadam", NULL);
    expect_fail(2, "--optim sparseadam is not offered here: it takes only row-sparse gradients");
    nabla("train", "--data", tiny(), "--optim", "adam", "--betas", "1.0,0.999", NULL);
    expect_fail(-1, "Invalid beta parameter at index 0: 1.0");
    nabla("train", "--data", tiny(), "--optim", "rmsprop", "--alpha", "-0.5", NULL);
    expect_fail(-1, "Invalid alpha value: -0.5");
    nabla("train", "--data", tiny(), "--amsgrad", NULL); /* an option of another optimizer */
    expect_fail(2, "--amsgrad does not apply to sgd (it is an option of adam, adamw)");
    nabla("train", "--data", tiny(), "--optim", "lbfgs", "--line-search", "armijo", NULL);
    expect_fail(-1, "only 'strong_wolfe' is supported");
    nabla("train", "--data", tiny(), "--sched", "onecycle", NULL);
    expect_fail(1, "OneCycleLR.__init__() missing 1 required positional argument: 'max_lr'");
    nabla("train", "--data", tiny(), "--sched", "multistep", "--milestones", "8,3", NULL);
    expect_fail(-1, "MultiStepLR: milestones must be increasing, got 3 after 8");
    nabla("train", "--data", tiny(), "--sched", "cosine-restarts", "--T-0", "0", NULL);
    expect_fail(-1, "Expected positive integer T_0, but got 0");
    nabla("train", "--data", tiny(), "--sched", "plateau", "--factor", "1.5", NULL);
    expect_fail(-1, "Factor should be < 1.0.");
    nabla("train", "--data", tiny(), "--ema", "1.5", NULL);
    expect_fail(-1, "Invalid decay value 1.5 provided. Please provide a value in [0,1] range.");
    nabla("train", "--data", tiny(), "--sched", "step", "--step-size", "0", NULL);
    expect_fail(-1, "step_size");
    nabla("train", "--data", tiny(), "--sched", "step", "--gamma", "-1", NULL);
    expect_fail(-1, "gamma");
    /* nothing was trained: no epoch line */
    ck_assert_ptr_null(strstr(R.out, "epoch 1/"));
}
END_TEST

/* ---- a flag that does not belong to the chosen optimizer or schedule is refused ------------ */
START_TEST(test_flags_that_do_not_apply) {
    nabla("train", "--data", tiny(), "--sched", "cosine", "--gamma", "0.5", NULL);
    expect_fail(2, "--gamma does not apply to cosine (it is an option of step, multistep, exponential, cyclic)");
    nabla("train", "--data", tiny(), "--sched", "step", "--T-0", "5", "--mode", "x", NULL);
    expect_fail(2, "--T-0 does not apply to step (it is an option of cosine-restarts)");
    nabla("train", "--data", tiny(), "--gamma", "0.5", NULL);
    expect_fail(2, "--gamma is an option of a schedule (--sched step, multistep, exponential, cyclic)");
    nabla("train", "--data", tiny(), "--sched", "onecycle", "--max-lr", "0.1", "--warmup", "1", NULL);
    expect_fail(2, "--warmup does not apply to onecycle");
    nabla("train", "--data", tiny(), "--sched", "plateau", "--mode", "sideways", NULL); /* applies: PyTorch's check */
    expect_fail(1, "mode sideways is unknown!");
    nabla("train", "--data", tiny(), "--optim", "adam", "--momentum", "0.9", NULL);
    expect_fail(2, "--momentum does not apply to adam (it is an option of sgd, rmsprop)");
    nabla("train", "--data", tiny(), "--optim", "Adam", "--betas", "0.9", NULL);
    expect_fail(2, "--betas expects X,Y (got '0.9')");
    nabla("train", "--data", tiny(), "--optim", "adafactor", "--eps", "1e-3", NULL);
    expect_fail(2, "--eps expects X,Y (got '1e-3')");
    nabla("train", "--data", tiny(), "--optim", "lbfgs", "--max-iter", "-1", NULL);
    expect_fail(1, "Invalid max_iter value: -1");
    ck_assert_ptr_null(strstr(R.out, "epoch 1/"));
    /* help lists what applies: everything, or the chosen optimizer's and schedule's options */
    nabla("train", "--help", NULL);
    expect_ok();
    ck_assert(strstr(R.out, "--nesterov") && strstr(R.out, "--amsgrad") && strstr(R.out, "--T-max"));
    ck_assert_msg(strstr(R.out, "--amsgrad              AMSGrad variant [adam, adamw]"), "%s", R.out);
    nabla("train", "--optim", "adam", "--sched", "step", "--help", NULL);
    expect_ok();
    ck_assert(strstr(R.out, "--amsgrad") && strstr(R.out, "--gamma") && strstr(R.out, "--clip"));
    ck_assert(!strstr(R.out, "--nesterov") && !strstr(R.out, "--T-max") && !strstr(R.out, "--rho"));
    nabla("lr-plot", "--help", NULL);
    expect_ok();
    ck_assert_msg(!strstr(R.out, "--clip") && !strstr(R.out, "--ema") && strstr(R.out, "--swa-lr"), "%s", R.out);
    nabla("lr-plot", "--sched", "step", "--ema", "0.9", "--out", "x.svg", NULL);
    expect_fail(2, "unknown option '--ema'");
}
END_TEST

/* ---- bad data ----------------------------------------------------------------------------- */

START_TEST(test_bad_data) {
    nabla("train", "--data", "/nonexistent", NULL);
    expect_fail(-1, "cannot open /nonexistent/train-images-idx3-ubyte: No such file or directory");

    size_t n;
    unsigned char *img = fixture_bytes("tiny/raw/train-images-idx3-ubyte", &n);
    nabla("train", "--data", data_with("train-images-idx3-ubyte", img, n - 100), NULL);
    expect_fail(-1, "truncated: header promises 78400 data bytes, file has 78300");
    nabla("train", "--data", data_with("train-images-idx3-ubyte", img, 10), NULL);
    expect_fail(-1, "truncated header (10 of 16 bytes)");
    nabla("train", "--data", data_with("t10k-images-idx3-ubyte", "garbage!", 8), NULL);
    expect_fail(-1, "bad magic");

    /* a gzip file cut short: the .gz is picked over the raw file */
    size_t gn;
    unsigned char *gz = fixture_bytes("tiny/train-images-idx3-ubyte.gz", &gn);
    nabla("train", "--data", data_with("train-images-idx3-ubyte.gz", gz, gn - 4), NULL);
    expect_fail(-1, "truncated gzip file");

    /* images and labels disagree; labels that are not classes 0..9 */
    size_t ln;
    unsigned char *lab = fixture_bytes("tiny/raw/t10k-labels-idx1-ubyte", &ln);
    nabla("train", "--data", data_with("train-labels-idx1-ubyte", lab, ln), NULL);
    expect_fail(-1, "has 100 images but");
    unsigned char bad[64];
    memcpy(bad, lab, ln);
    bad[8 + 5] = 12;
    nabla("train", "--data", data_with("t10k-labels-idx1-ubyte", bad, ln), NULL);
    expect_fail(-1, "test label 12 at sample 5 is not a class index 0..9");

    /* test images of another size than the training ones: refused before training, not when the
     * first epoch is over and the model meets them */
    unsigned char *small = malloc(16 + 40 * 14 * 14);
    const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 40, 0, 0, 0, 14, 0, 0, 0, 14};
    memcpy(small, hdr, 16);
    memset(small + 16, 7, 40 * 14 * 14);
    nabla("train", "--data", data_with("t10k-images-idx3-ubyte", small, 16 + 40 * 14 * 14), "--epochs", "1", NULL);
    expect_fail(1, "nabla train: data: the test images are 14x14, the training images 28x28");
    ck_assert_msg(!strstr(R.out, "epoch 1/1"), "%s", R.out);
    free(small);

    /* a .gz that cannot be opened is reported by its name and cause, not as a missing plain file */
    const char *dir = data_with(NULL, NULL, 0);
    char link[4200], want[4300];
    snprintf(link, sizeof link, "%s/train-images-idx3-ubyte.gz", dir);
    ck_assert_int_eq(symlink("train-images-idx3-ubyte.gz", link), 0); /* a loop */
    snprintf(want, sizeof want, "cannot open %s: Too many levels of symbolic links", link);
    nabla("train", "--data", dir, NULL);
    expect_fail(1, want);
}
END_TEST

/* ---- training and --metrics --------------------------------------------------------------- */

/* Value of "key": in a JSON line (NAN if absent); checks the key is followed by a number. */
static double json_get(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    if (!p) return NAN;
    char *end;
    double v = strtod(p + strlen(pat), &end);
    return end == p + strlen(pat) ? NAN : v;
}

/* The number printed right after key in text (NAN if absent). */
static double value_after_key(const char *text, const char *key) {
    const char *k = strstr(text, key);
    return k ? strtod(k + strlen(key), NULL) : NAN;
}

/* samples_per_sec x seconds of a metrics line is the epoch's sample count, up to the rounding
 * of the two printed values (%.1f and %.6f), whatever the machine's speed. */
static void assert_samples(const char *line, double n) {
    double sps = json_get(line, "samples_per_sec"), secs = json_get(line, "seconds");
    ck_assert_msg(fabs(sps * secs - n) <= 0.05 * secs + 5e-7 * sps + 1e-9,
                  "%.1f samples/s x %.6f s is not %g samples: %s", sps, secs, n, line);
}

/* Read the epoch lines of a metrics FILE into lines[] (at most max); returns the count. The
 * header ({"flags": ...}) and the per-step lines of --log-every are skipped. */
static int read_lines(const char *path, char lines[][512], int max) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    static char line[1 << 14];
    while (n < max && fgets(line, sizeof line, f)) {
        if (strncmp(line, "{\"epoch\": ", 10)) continue;
        ck_assert_uint_lt(strlen(line), 512);
        strcpy(lines[n++], line);
    }
    fclose(f);
    return n;
}

START_TEST(test_metrics_file) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", temp_dir());
    nabla("train", "--data", tiny(), "--epochs", "3", "--batch", "16", "--sched", "step", "--step-size", "1",
          "--gamma", "0.5", "--metrics", path, NULL);
    expect_ok();
    static char lines[8][512];
    ck_assert_int_eq(read_lines(path, lines, 8), 3);
    const char *keys[] = {"epoch", "step", "train_loss", "test_loss", "test_acc", "lr", "seconds", "samples_per_sec"};
    for (int e = 0; e < 3; e++) {
        const char *l = lines[e];
        size_t len = strlen(l);
        ck_assert_msg(l[0] == '{' && len >= 3 && l[len - 2] == '}' && l[len - 1] == '\n', "line: %s", l);
        for (int k = 0; k < 8; k++)
            ck_assert_msg(isfinite(json_get(l, keys[k])), "line %d lacks a number for %s: %s", e + 1, keys[k], l);
        /* the keys in the documented order, and nothing else */
        const char *at = l;
        for (int k = 0; k < 8; k++) {
            char pat[64];
            snprintf(pat, sizeof pat, "\"%s\": ", keys[k]);
            const char *q = strstr(at, pat);
            ck_assert_msg(q != NULL, "key %s out of order: %s", keys[k], l);
            at = q;
        }
        int quotes = 0;
        for (const char *c = l; *c; c++) quotes += *c == '"';
        ck_assert_int_eq(quotes, 16);
        ck_assert_double_eq(json_get(l, "epoch"), e + 1);
        ck_assert_double_eq(json_get(l, "step"), 7 * (e + 1)); /* optimizer steps so far: 7 batches an epoch */
        ck_assert_double_eq_tol(json_get(l, "lr"), 0.1 * pow(0.5, e), 1e-12); /* StepLR */
        double acc = json_get(l, "test_acc"), secs = json_get(l, "seconds"), sps = json_get(l, "samples_per_sec");
        ck_assert(acc >= 0 && acc <= 1);
        ck_assert(secs > 0 && sps > 0);
        assert_samples(l, 100); /* 100 training samples per epoch */
        ck_assert(json_get(l, "train_loss") > 0 && json_get(l, "test_loss") > 0);
    }
    ck_assert(json_get(lines[2], "train_loss") < json_get(lines[0], "train_loss"));
    /* stdout: a header line and one line per epoch */
    ck_assert_msg(strstr(R.out, "100 train / 40 test samples"), "%s", R.out);
    ck_assert_msg(strstr(R.out, "epoch 1/3") && strstr(R.out, "epoch 3/3"), "%s", R.out);
    ck_assert_msg(strstr(R.out, "samples/s"), "%s", R.out);

    nabla("train", "--data", tiny(), "--metrics", "/nonexistent/dir/m.jsonl", NULL);
    expect_fail(-1, "cannot write /nonexistent/dir/m.jsonl");
    /* nothing but the per-epoch lines when stderr is not a terminal: no progress bar */
    ck_assert_msg(!strchr(R.err, '\r'), "%s", R.err);
}
END_TEST

/* The first line of a metrics file: the run's flags and a checksum of its initial weights. */
static void read_header(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(buf, (int)n, f));
    fclose(f);
    ck_assert_msg(!strncmp(buf, "{\"flags\": {", 11), "%s", buf);
}

START_TEST(test_metrics_header_and_log_every) {
    char a[4200], b[4200], c[4200];
    const char *dir = temp_dir();
    snprintf(a, sizeof a, "%s/a.jsonl", dir);
    snprintf(b, sizeof b, "%s/b.jsonl", dir);
    snprintf(c, sizeof c, "%s/c.jsonl", dir);
    nabla("train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--log-every", "1", "--metrics", a, NULL);
    expect_ok();
    nabla("train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--optim", "adam", "--lr", "0.003",
          "--metrics", b, NULL);
    expect_ok();
    nabla("train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--seed", "5", "--metrics", c, NULL);
    expect_ok();
    static char ha[1 << 14], hb[1 << 14], hc[1 << 14];
    read_header(a, ha, sizeof ha);
    read_header(b, hb, sizeof hb);
    read_header(c, hc, sizeof hc);
    /* every flag that changes the numbers, with its value (null: the default); not the outputs */
    ck_assert_msg(strstr(ha, "\"optim\": \"sgd\", \"lr\": null, ") && strstr(hb, "\"optim\": \"adam\", \"lr\": 0.003, "),
                  "%s\n%s", ha, hb);
    ck_assert_msg(strstr(ha, "\"batch\": 16, \"epochs\": 2, \"seed\": 0, "), "%s", ha);
    ck_assert_msg(strstr(ha, "\"data\": \"") && !strstr(ha, "\"metrics\"") && !strstr(ha, "\"log-every\""), "%s", ha);
    /* the same seed, the same initial weights, whatever the optimizer; another seed, others */
    const char *ca = strstr(ha, "\"init_weights_crc32\": \""), *cb = strstr(hb, "\"init_weights_crc32\": \""),
               *cc = strstr(hc, "\"init_weights_crc32\": \"");
    ck_assert(ca && cb && cc);
    ck_assert(!strncmp(ca, cb, 32) && strncmp(ca, cc, 32));
    /* --log-every 1: a line per step with that batch's loss; their mean, weighted by batch
     * size (6 of 16, one of 4), is the epoch's train_loss */
    FILE *f = fopen(a, "r");
    ck_assert_ptr_nonnull(f);
    static char line[1 << 14];
    int steps = 0, epochs = 0;
    double sum = 0, loss[14];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "{\"step\": ", 9)) {
            ck_assert_int_lt(steps, 14);
            loss[steps] = json_get(line, "loss");
            steps++;
            ck_assert_double_eq(json_get(line, "step"), steps);
            ck_assert_double_eq(json_get(line, "epoch"), (steps - 1) / 7 + 1);
            ck_assert_double_eq_tol(json_get(line, "lr"), 0.1, 1e-12);
            sum += json_get(line, "loss") * (steps % 7 == 0 ? 4 : 16);
        } else if (!strncmp(line, "{\"epoch\": ", 10)) {
            epochs++;
            ck_assert_int_eq(steps, 7 * epochs);
            ck_assert_double_eq(json_get(line, "step"), steps);
            ck_assert_double_eq_tol(json_get(line, "train_loss"), sum / 100, 2e-6);
            sum = 0;
        }
    }
    fclose(f);
    ck_assert_int_eq(epochs, 2);
    /* the numbers do not depend on the logging */
    static char la[4][512], lc[4][512];
    nabla("train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--metrics", c, NULL);
    expect_ok();
    ck_assert_int_eq(read_lines(a, la, 4), 2);
    ck_assert_int_eq(read_lines(c, lc, 4), 2);
    for (int e = 0; e < 2; e++) ck_assert_double_eq(json_get(la[e], "test_loss"), json_get(lc[e], "test_loss"));
    /* --log-every 3 over 14 steps: steps 3, 6, ..., 12, each the mean of its 3 batches */
    nabla("train", "--data", tiny(), "--epochs", "2", "--batch", "16", "--log-every", "3", "--metrics", c, NULL);
    expect_ok();
    f = fopen(c, "r");
    steps = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "{\"step\": ", 9)) {
            ck_assert_double_eq(json_get(line, "step"), 3 * ++steps);
            double mean = (loss[3 * steps - 3] + loss[3 * steps - 2] + loss[3 * steps - 1]) / 3;
            ck_assert_msg(fabs(json_get(line, "loss") - mean) <= 2e-6, "step %d: %s, want %.6f", 3 * steps, line, mean);
        }
    fclose(f);
    ck_assert_int_eq(steps, 4); /* step 9's window spans the end of epoch 1 */
    nabla("train", "--data", tiny(), "--log-every", "5", NULL);
    expect_fail(2, "--log-every N needs N >= 0 and --metrics FILE");
    nabla("train", "--data", tiny(), "--log-every", "-1", "--metrics", c, NULL);
    expect_fail(2, "--log-every N needs N >= 0 and --metrics FILE");
}
END_TEST

/* On a terminal: one progress line per update with the epoch, samples/s and the time left. */
START_TEST(test_progress_bar_on_a_terminal) {
    int master, slave;
    ck_assert_msg(openpty(&master, &slave, NULL, NULL, NULL) == 0, "openpty: %s", strerror(errno));
    char out[4200];
    snprintf(out, sizeof out, "%s/stdout", temp_dir());
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fo < 0 || dup2(fo, 1) < 0 || dup2(slave, 2) < 0) _exit(126);
        close(master);
        execl(NABLA, NABLA, "train", "--data", tiny(), "--epochs", "2", "--batch", "16", (char *)NULL);
        _exit(127);
    }
    close(slave);
    static char tty[1 << 14];
    size_t n = 0;
    for (ssize_t k; n + 1 < sizeof tty && (k = read(master, tty + n, sizeof tty - 1 - n)) > 0;) n += (size_t)k;
    tty[n] = '\0';
    close(master);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    ck_assert_msg(strstr(tty, "\r  epoch 1/2 [########################] 100%  loss ") &&
                  strstr(tty, "\r  epoch 2/2 [") && strstr(tty, " samples/s  ETA 0:00:00"), "%s", tty);
    static char text[1 << 14];
    slurp(out, text, sizeof text);
    ck_assert_msg(strstr(text, "epoch 2/2  train_loss") && !strchr(text, '\r'), "%s", text);
}
END_TEST

/* Schedules as the user meets them: per-epoch ones step after each epoch, onecycle after each
 * batch; SWA/EMA evaluate the averaged weights. (The numbers are tested in test_sched.c.) */
START_TEST(test_schedules_and_averaging) {
    char path[4200];
    static char lines[8][512];
    snprintf(path, sizeof path, "%s/m.jsonl", temp_dir());
    nabla("train", "--data", tiny(), "--epochs", "3", "--sched", "multistep", "--milestones", "1,2", "--metrics",
          path, NULL);
    expect_ok();
    ck_assert_int_eq(read_lines(path, lines, 8), 3);
    for (int e = 0; e < 3; e++) ck_assert_double_eq_tol(json_get(lines[e], "lr"), 0.1 * pow(0.1, e), 1e-15);
    /* onecycle: the lr printed for epoch 1 is its initial lr, max_lr / 25 */
    nabla("train", "--data", tiny(), "--epochs", "2", "--sched", "onecycle", "--max-lr", "0.5", "--metrics", path,
          NULL);
    expect_ok();
    ck_assert_int_eq(read_lines(path, lines, 8), 2);
    ck_assert_double_eq_tol(json_get(lines[0], "lr"), 0.02, 1e-12);
    ck_assert(json_get(lines[1], "lr") > 0.02);
    nabla("train", "--data", tiny(), "--epochs", "2", "--sched", "cosine", "--warmup", "1", "--metrics", path, NULL);
    expect_ok();
    ck_assert_int_eq(read_lines(path, lines, 8), 2);
    ck_assert_double_eq_tol(json_get(lines[0], "lr"), 0.01, 1e-12); /* 0.1 x warmup factor 0.1 */
    nabla("train", "--data", tiny(), "--epochs", "3", "--sched", "plateau", "--patience", "0", NULL);
    expect_ok();
    nabla("train", "--data", tiny(), "--epochs", "3", "--swa-start", "2", "--swa-lr", "0.05", "--metrics", path, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "averaging: SWA from the end of epoch 2"), "%s", R.out);
    ck_assert_int_eq(read_lines(path, lines, 8), 3);
    double alpha = (1 - cos(M_PI / 10)) / 2; /* SWALR's first step: anneal 1/10 of the way to 0.05 */
    ck_assert_double_eq_tol(json_get(lines[1], "lr"), 0.1, 1e-12);
    ck_assert_double_eq_tol(json_get(lines[2], "lr"), 0.05 * alpha + 0.1 * (1 - alpha), 1e-9);
    nabla("train", "--data", tiny(), "--epochs", "2", "--ema", "0.9", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "averaging: EMA with decay 0.9"), "%s", R.out);
    nabla("train", "--data", tiny(), "--swa-lr", "0.05", NULL);
    expect_fail(2, "--swa-lr needs --swa-start");
    nabla("lr-plot", "--sched", "step", NULL);
    expect_fail(2, "--out FILE.svg is required");
    nabla("lr-plot", "--out", path, NULL);
    expect_fail(2, "choose a schedule with --sched");
}
END_TEST

START_TEST(test_limit_seed_and_threads) {
    char a[4200], b[4200], c[4200];
    const char *dir = temp_dir();
    snprintf(a, sizeof a, "%s/a.jsonl", dir);
    snprintf(b, sizeof b, "%s/b.jsonl", dir);
    snprintf(c, sizeof c, "%s/c.jsonl", dir);
    nabla("train", "--data", tiny(), "--limit", "30", "--epochs", "2", "--batch", "8", "--seed", "3",
          "--metrics", a, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "30 train / 40 test samples"), "%s", R.out);
    static char la[4][512], lb[4][512], lc[4][512];
    ck_assert_int_eq(read_lines(a, la, 4), 2);
    assert_samples(la[0], 30);
    /* same seed, same run (bit for bit); another seed, another run */
    nabla("train", "--data", tiny(), "--limit", "30", "--epochs", "2", "--batch", "8", "--seed", "3",
          "--metrics", b, NULL);
    expect_ok();
    nabla("train", "--data", tiny(), "--limit", "30", "--epochs", "2", "--batch", "8", "--seed", "4",
          "--metrics", c, NULL);
    expect_ok();
    read_lines(b, lb, 4);
    read_lines(c, lc, 4);
    for (int e = 0; e < 2; e++) {
        ck_assert_double_eq(json_get(la[e], "train_loss"), json_get(lb[e], "train_loss"));
        ck_assert_double_eq(json_get(la[e], "test_loss"), json_get(lb[e], "test_loss"));
    }
    ck_assert(json_get(la[0], "train_loss") != json_get(lc[0], "train_loss"));
    nabla("train", "--data", tiny(), "--epochs", "1", "--threads", "2", NULL);
    expect_ok();
    /* --epochs 0: nothing to do, and that is fine */
    nabla("train", "--data", tiny(), "--epochs", "0", NULL);
    expect_ok();
}
END_TEST

/* ---- every optimizer trains from the command line, with its options ------------------------ */
START_TEST(test_every_optimizer) {
    static const char *runs[][8] = {
        {"sgd", "--nesterov", "--dampening", "0", "--weight-decay", "1e-4"},
        {"adam", "--amsgrad", "--betas", "0.8,0.99", "--eps", "1e-6", "--maximize"},
        {"adamw", "--weight-decay", "0.05"},
        {"rmsprop", "--centered", "--momentum", "0.5", "--alpha", "0.9"},
        {"adagrad", "--lr-decay", "0.01", "--initial-accumulator-value", "0.1"},
        {"adadelta", "--rho", "0.95"},
        {"adamax", "--betas", "0.9,0.99"},
        {"nadam", "--momentum-decay", "0.005", "--decoupled-weight-decay", "--weight-decay", "0.01"},
        {"radam", "--decoupled-weight-decay", "--weight-decay", "0.01"},
        {"asgd", "--lambd", "1e-3", "--t0", "5", "--alpha", "0.7"},
        {"rprop", "--etas", "0.4,1.3", "--step-sizes", "1e-6,1"},
        {"lbfgs", "--line-search", "strong_wolfe", "--max-iter", "3", "--history-size", "5"},
        {"adafactor", "--eps", "none,1e-3", "--beta2-decay", "-0.7", "--d", "1.5"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        const char **r = runs[i];
        nabla("train", "--data", tiny(), "--epochs", "1", "--batch", "16", "--clip", "1.0", "--optim",
              r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], NULL);
        expect_ok();
        ck_assert_msg(strstr(R.out, "epoch 1/1") && !strstr(R.out, "nan"), "%s: %s", r[0], R.out);
    }
}
END_TEST

/* --model cnn (LeNet-5 on [B, 1, 28, 28]) and the --batchnorm / --dropout variants train. */
START_TEST(test_cnn_and_layer_options) {
    char m[4200], ck[4200];
    snprintf(m, sizeof m, "%s/m.jsonl", temp_dir());
    snprintf(ck, sizeof ck, "%s/cnn.ckpt", temp_dir());
    nabla("train", "--data", tiny(), "--model", "cnn", "--optim", "adam", "--epochs", "3", "--batch", "16",
          "--metrics", m, "--save", ck, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "cnn LeNet-5 (28x28), adam lr 0.001, batch 16"), "%s", R.out);
    /* nabla eval feeds the CNN [B, 1, 28, 28] as train does (it gave it [B, 28, 28]) */
    nabla("eval", "--data", tiny(), "--load", ck, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "test_acc") && strstr(R.out, "(40 samples)"), "%s", R.out);
    static char l[4][512];
    ck_assert_int_eq(read_lines(m, l, 4), 3);
    ck_assert(json_get(l[2], "train_loss") < json_get(l[0], "train_loss"));
    /* bfloat16 autocast (--precision bf16), training and evaluation */
    nabla("train", "--data", tiny(), "--model", "cnn", "--optim", "adam", "--epochs", "3", "--batch", "16",
          "--precision", "bf16", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, ", bf16 autocast (") && strstr(R.out, "epoch 3/3") && !strstr(R.out, "nan"),
                  "%s", R.out);
    nabla("eval", "--data", tiny(), "--load", ck, "--precision", "bf16", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "test_acc") && strstr(R.out, "(40 samples)"), "%s", R.out);
    const char *models[] = {"mlp", "cnn"};
    for (int i = 0; i < 2; i++) {
        nabla("train", "--data", tiny(), "--model", models[i], "--batchnorm", "--dropout", "0.3",
              "--epochs", "1", "--batch", "16", NULL);
        expect_ok();
        ck_assert_msg(strstr(R.out, "+batchnorm +dropout 0.3"), "%s", R.out);
    }
}
END_TEST

START_TEST(test_real_data_short_run) {
    if (!fashion_mnist_dir()) NB_SKIP("no Fashion-MNIST training images in %s (NABLA_DATA)", nb_default_data_dir());
    char m[4200];
    snprintf(m, sizeof m, "%s/m.jsonl", temp_dir());
    nabla("train", "--limit", "6000", "--epochs", "1", "--metrics", m, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "mlp 784-128-10, sgd lr 0.1, batch 64"), "%s", R.out);
    ck_assert_msg(strstr(R.out, "6000 train / 10000 test samples"), "%s", R.out);
    static char l[2][512];
    ck_assert_int_eq(read_lines(m, l, 2), 1);
    ck_assert_msg(json_get(l[0], "test_acc") > 0.6, "%s", l[0]);
}
END_TEST

/* ---- your own data: CSV and .npy files ------------------------------------------------------ */

static const char *sk(const char *name) {
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s", fixture(name));
    return b;
}

/* Every line of a text file into lines[] (at most max); returns the count. */
static int text_lines(const char *path, char lines[][512], int max) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    while (n < max && fgets(lines[n], 512, f)) n++;
    fclose(f);
    return n;
}

/* Every key of a metrics line, in order: keys[0..n), and nothing else. */
static void expect_keys(const char *line, const char *const *keys, int n) {
    const char *at = line;
    for (int k = 0; k < n; k++) {
        char pat[64];
        snprintf(pat, sizeof pat, "\"%s\": ", keys[k]);
        const char *q = strstr(at, pat);
        ck_assert_msg(q != NULL, "key %s missing or out of order: %s", keys[k], line);
        ck_assert_msg(isfinite(json_get(line, keys[k])), "no number for %s: %s", keys[k], line);
        at = q;
    }
    int quotes = 0;
    for (const char *c = line; *c; c++) quotes += *c == '"';
    ck_assert_msg(quotes == 2 * n, "other keys in: %s", line);
}

/* scikit-learn's iris.csv as published (a first line of counts and class names, the label
 * last): test and validation parts held out, standardised; it learns (the run is seeded, so
 * the figure is the same on every machine). */
START_TEST(test_csv_iris) {
    char m[4200];
    snprintf(m, sizeof m, "%s/iris.jsonl", temp_dir());
    nabla("train", "--train", sk("sklearn/iris.csv"), "--skip-rows", "1", "--test-split", "0.2", "--val-split", "0.1",
          "--normalize", "--optim", "adam", "--lr", "0.01", "--batch", "16", "--epochs", "30", "--metrics", m, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "mlp 4-128-3, adam lr 0.01, batch 16, 30 epochs, 108 train / 12 val / 30 test samples "
                         "(normalized)"), "%s", R.out);
    static char l[32][512];
    ck_assert_int_eq(read_lines(m, l, 32), 30);
    const char *keys[] = {"epoch", "step", "train_loss", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
                          "seconds", "samples_per_sec"};
    for (int e = 0; e < 30; e++) expect_keys(l[e], keys, 10);
    ck_assert_msg(json_get(l[29], "test_acc") >= 0.9, "%s", l[29]);
    ck_assert_msg(json_get(l[29], "val_acc") >= 0.8, "%s", l[29]);
    ck_assert(json_get(l[29], "train_loss") < json_get(l[0], "train_loss"));
    /* the same run gives the same numbers */
    char m2[4200];
    snprintf(m2, sizeof m2, "%s/iris2.jsonl", temp_dir());
    nabla("train", "--train", sk("sklearn/iris.csv"), "--skip-rows", "1", "--test-split", "0.2", "--val-split", "0.1",
          "--normalize", "--optim", "adam", "--lr", "0.01", "--batch", "16", "--epochs", "30", "--metrics", m2, NULL);
    static char l2[32][512];
    read_lines(m2, l2, 32);
    ck_assert_double_eq(json_get(l[29], "test_loss"), json_get(l2[29], "test_loss"));
}
END_TEST

/* Regression from two gzip'd files separated by spaces: MSE, and RMSE and MAE reported. */
START_TEST(test_csv_regression) {
    char m[4200], ck[4200], pred[4200];
    snprintf(m, sizeof m, "%s/dia.jsonl", temp_dir());
    snprintf(ck, sizeof ck, "%s/dia.ckpt", temp_dir());
    snprintf(pred, sizeof pred, "%s/dia.csv", temp_dir());
    char xy[8200];
    snprintf(xy, sizeof xy, "%s,%s", sk("sklearn/diabetes_data_raw.csv.gz"), sk("sklearn/diabetes_target.csv.gz"));
    nabla("train", "--train", xy, "--delimiter", "ws", "--task", "regress", "--test-split", "0.2", "--normalize",
          "--optim", "adam", "--lr", "0.01", "--hidden", "32", "--batch", "32", "--epochs", "60", "--metrics", m,
          "--save", ck, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "mlp 10-32-1"), "%s", R.out);
    static char l[64][512];
    ck_assert_int_eq(read_lines(m, l, 64), 60);
    const char *keys[] = {"epoch", "step", "train_loss", "test_loss", "test_rmse", "test_mae", "lr", "seconds",
                          "samples_per_sec"};
    expect_keys(l[59], keys, 9);
    double rmse = json_get(l[59], "test_rmse");
    ck_assert_msg(rmse < 65 && json_get(l[0], "test_rmse") > 100, "%s", l[59]); /* the targets' spread is ~77 */
    ck_assert_double_eq_tol(rmse * rmse, json_get(l[59], "test_loss"), 1e-3 * rmse * rmse);
    /* eval takes the same held-out part out of the same file, normalised as in training */
    nabla("eval", "--load", ck, "--train", xy, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "test_rmse") && strstr(R.out, "(88 samples)"), "%s", R.out);
    double er = value_after_key(R.out, "test_rmse ");
    ck_assert_double_eq_tol(er, rmse, 1e-3);
    nabla("eval", "--load", ck, "--train", xy, "--confusion", NULL);
    expect_fail(2, "--confusion is for classification");
    nabla("predict", "--load", ck, "--input", sk("sklearn/diabetes_data_raw.csv.gz"), "--out", pred, NULL);
    expect_ok();
    static char p[500][512];
    ck_assert_int_eq(text_lines(pred, p, 500), 443);
    ck_assert_str_eq(p[0], "prediction\n");
    ck_assert(isfinite(strtod(p[1], NULL)));
}
END_TEST

/* Early stopping and the best checkpoint on the validation loss; eval --confusion; predict. */
START_TEST(test_csv_early_stop_eval_predict) {
    const char *dir = temp_dir();
    char best[4200], last[4200], m[4200], pred[4200], pred2[4200], x[4200];
    snprintf(best, sizeof best, "%s/best.ckpt", dir);
    snprintf(last, sizeof last, "%s/last.ckpt", dir);
    snprintf(m, sizeof m, "%s/m.jsonl", dir);
    snprintf(pred, sizeof pred, "%s/p.csv", dir);
    snprintf(pred2, sizeof pred2, "%s/p2.csv", dir);
    snprintf(x, sizeof x, "%s/x.csv", dir);
    nabla("train", "--train", sk("sklearn/wine_data.csv"), "--skip-rows", "1", "--test-split", "0.25", "--val-split",
          "0.15", "--normalize", "--optim", "adam", "--lr", "0.01", "--batch", "16", "--epochs", "100", "--early-stop",
          "5", "--save-best", best, "--save", last, "--metrics", m, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "early stopping: the validation loss has not improved for 5 epochs"), "%s", R.out);
    static char l[100][512];
    int n = read_lines(m, l, 100);
    ck_assert_msg(n < 100, "no early stop: %d epochs", n);
    int best_epoch = 0;
    double best_loss = INFINITY;
    for (int e = 0; e < n; e++)
        if (json_get(l[e], "val_loss") < best_loss) best_loss = json_get(l[e], "val_loss"), best_epoch = e + 1;
    ck_assert_int_eq(best_epoch, n - 5); /* stopped 5 epochs after the best */
    char saved[4300];
    snprintf(saved, sizeof saved, "saved %s (epoch %d)", best, best_epoch);
    ck_assert_msg(strstr(R.out, saved), "%s", R.out);
    /* the best checkpoint holds the best epoch's model: eval on the test part gives its figures */
    nabla("eval", "--load", best, "--train", sk("sklearn/wine_data.csv"), "--confusion", NULL);
    expect_ok();
    double acc = value_after_key(R.out, "test_acc ");
    ck_assert_double_eq_tol(acc, json_get(l[best_epoch - 1], "test_acc"), 1e-4);
    ck_assert_msg(acc >= 0.9, "%s", R.out);
    ck_assert_msg(strstr(R.out, "(44 samples)") && strstr(R.out, "confusion matrix") && strstr(R.out, "precision") &&
                  strstr(R.out, "macro avg") && strstr(R.out, "weighted avg"), "%s", R.out);
    /* predict: one row per sample, the class and probabilities summing to 1; the same with a
     * file of the features alone */
    nabla("predict", "--load", best, "--input", sk("sklearn/wine_data.csv"), "--out", pred, NULL);
    expect_ok();
    static char p[200][512];
    ck_assert_int_eq(text_lines(pred, p, 200), 179);
    ck_assert_str_eq(p[0], "class,prob_0,prob_1,prob_2\n");
    for (int i = 1; i < 179; i++) {
        char *e;
        long c = strtol(p[i], &e, 10);
        double sum = 0, top = -1;
        int arg = -1;
        for (int k = 0; k < 3; k++) {
            double v = strtod(e + 1, &e);
            sum += v;
            if (v > top) top = v, arg = k;
        }
        ck_assert_int_eq(c, arg);
        ck_assert_double_eq_tol(sum, 1, 1e-5);
    }
    FILE *in = fopen(sk("sklearn/wine_data.csv"), "r"), *out = fopen(x, "w");
    char line[1024];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, in)); /* the first line is not a sample */
    while (fgets(line, sizeof line, in)) {
        *strrchr(line, ',') = '\0';
        fprintf(out, "%s\n", line);
    }
    fclose(in);
    fclose(out);
    nabla("predict", "--load", best, "--input", x, "--skip-rows", "0", "--out", pred2, NULL);
    expect_ok();
    static char q[200][512];
    ck_assert_int_eq(text_lines(pred2, q, 200), 179);
    for (int i = 0; i < 179; i++) ck_assert_str_eq(p[i], q[i]);
    nabla("predict", "--load", best, "--input", sk("sklearn/iris.csv"), "--out", pred2, NULL);
    expect_fail(1, "has samples of 5 values; the model takes 13 (or one more: the target column)");
}
END_TEST

/* An interrupted run resumes exactly: normalisation statistics, validation part and early
 * stopping state come back, and the checkpoints are byte for byte those of one run. */
START_TEST(test_csv_resume_exact) {
    const char *dir = temp_dir();
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/a.ckpt", dir);
    snprintf(b, sizeof b, "%s/b.ckpt", dir);
    const char *run[] = {"--train", sk("sklearn/iris.csv"), "--skip-rows", "1", "--test-split", "0.2", "--val-split",
                         "0.2", "--normalize", "--early-stop", "50", "--batch", "10", "--sched", "plateau", "--epochs", "4"};
    nabla("train", run[0], run[1], run[2], run[3], run[4], run[5], run[6], run[7], run[8], run[9], run[10], run[11],
          run[12], run[13], run[14], run[15], run[16], "--save", a, NULL);
    expect_ok();
    nabla("train", run[0], run[1], run[2], run[3], run[4], run[5], run[6], run[7], run[8], run[9], run[10], run[11],
          run[12], run[13], run[14], run[15], run[16], "--save", b, "--stop-after", "2", NULL);
    expect_ok();
    /* the file gives how the data were read, split and normalised, never which file: --train again */
    nabla("train", "--resume", b, "--save", b, "--epochs", "4", NULL);
    expect_fail(2, "--test-split goes with --train FILE");
    nabla("train", "--resume", b, "--train", run[1], "--save", b, "--epochs", "4", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "resumed from") && strstr(R.out, "epoch 3/4"), "%s", R.out);
    ck_assert_msg(strstr(R.out, "--test-split=0.2") && strstr(R.out, "--normalize=true") &&
                  strstr(R.out, "not taken from the checkpoint") && strstr(R.out, "--train="), "%s", R.out);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    static unsigned char ba[1 << 20], bb[1 << 20];
    size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
    fclose(fa);
    fclose(fb);
    ck_assert_msg(na == nb && !memcmp(ba, bb, na), "the resumed run's checkpoint differs from the uninterrupted one");
    nabla("ckpt", "inspect", b, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "parts: {\"normalize\":[\"mean\",\"std\"]}") && strstr(R.out, "normalize.mean") &&
                  strstr(R.out, "metadata cli.data:") && strstr(R.out, "metadata cli.early_stop:"), "%s", R.out);
}
END_TEST

/* Image-shaped .npy data (x [N, 28, 28] uint8, y [N] int64) train the cnn and the lstm too. */
static void write_npy(const char *path, const char *descr, const char *shape, const void *data, size_t n) {
    char dict[160];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    int pad = (64 - (10 + len + 1) % 64) % 64;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((len + pad + 1) & 0xff, f);
    fputc((len + pad + 1) >> 8, f);
    fwrite(dict, 1, (size_t)len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, n, f);
    fclose(f);
}

START_TEST(test_npy_images) {
    nb_mnist m;
    ck_assert_int_eq(nb_mnist_load(fixture("tiny"), "train", &m), NB_OK);
    const char *dir = temp_dir();
    char x[4200], y[4200], xy[8500], ck[4200], pred[4200];
    snprintf(x, sizeof x, "%s/x.npy", dir);
    snprintf(y, sizeof y, "%s/y.npy", dir);
    snprintf(xy, sizeof xy, "%s,%s", x, y);
    snprintf(ck, sizeof ck, "%s/cnn.ckpt", dir);
    snprintf(pred, sizeof pred, "%s/p.csv", dir);
    int64_t lab[100];
    for (int i = 0; i < 100; i++) lab[i] = nb_u8(m.labels)[i];
    write_npy(x, "|u1", "(100, 28, 28)", m.images->data, 100 * 784);
    write_npy(y, "<i8", "(100,)", lab, sizeof lab);
    nb_mnist_free(&m);
    nabla("train", "--train", xy, "--model", "cnn", "--normalize", "--val-split", "0.2", "--epochs", "2", "--batch", "16",
          "--save", ck, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "cnn LeNet-5 (28x28)") && strstr(R.out, "80 train / 20 val samples"), "%s", R.out);
    nabla("train", "--train", xy, "--model", "lstm", "--hidden", "16", "--epochs", "1", "--batch", "16", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "lstm 28-16-10 over 28 steps"), "%s", R.out);
    nabla("predict", "--load", ck, "--input", x, "--out", pred, NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "100 predictions (class and probabilities)"), "%s", R.out);
    nabla("train", "--train", sk("sklearn/iris.csv"), "--skip-rows", "1", "--model", "cnn", NULL);
    expect_fail(2, "--model cnn takes images [H, W] (e.g. a .npy file of shape [N, H, W]); these samples have shape [4]");
    nabla("train", "--train", sk("sklearn/iris.csv"), "--skip-rows", "1", "--model", "gru", NULL);
    expect_fail(2, "--model gru takes images [H, W]");
}
END_TEST

START_TEST(test_data_flag_errors) {
    const char *iris = sk("sklearn/iris.csv");
    struct {
        const char *a[8], *want;
    } cases[] = {
        {{"--train", iris, "--task", "cluster"}, "--task must be classify or regress, not cluster"},
        {{"--train", iris, "--delimiter", "ab"}, "--delimiter must be one character, tab or ws, not 'ab'"},
        {{"--train", iris, "--test-split", "1.5"}, "--test-split and --val-split are fractions in [0, 1)"},
        {{"--train", iris, "--val-split", "-0.1"}, "--test-split and --val-split are fractions in [0, 1)"},
        {{"--train", iris, "--test", iris, "--test-split", "0.2"}, "--test-split holds out a test part of --train"},
        {{"--test", iris}, "--test goes with --train FILE"},
        {{"--test-split", "0.2"}, "--test-split goes with --train FILE"},
        {{"--task", "regress"}, "--task regress needs --train FILE"},
        {{"--train", iris, "--data", "/x"}, "give --data DIR (IDX files) or --train FILE, not both"},
        {{"--train", iris, "--skip-rows", "1", "--early-stop", "3"}, "--early-stop and --save-best watch the validation loss"},
        {{"--train", iris, "--skip-rows", "-1"}, "--skip-rows must be >= 0"},
        {{"--train", iris, "--early-stop", "-2"}, "--early-stop must be >= 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char **a = cases[i].a;
        nabla("train", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);
        expect_fail(2, cases[i].want);
    }
    /* the reader's messages reach the user with the file, line and column */
    nabla("train", "--train", iris, NULL);
    expect_fail(1, "line 1, column 3: 'setosa' is not a number (a header line? skip it with skip_rows)");
    ck_assert_msg(strstr(R.err, iris), "%s", R.err);
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/bad.csv", temp_dir());
    FILE *f = fopen(bad, "w");
    fputs("1,2,0\n3,4,1\n5,6\n", f);
    fclose(f);
    nabla("train", "--train", bad, NULL);
    expect_fail(1, "line 3 has 2 fields, expected 3: the target (column 3) is missing (ragged row)");
    snprintf(bad, sizeof bad, "%s/data.xlsx", temp_dir());
    nabla("train", "--train", bad, NULL);
    expect_fail(1, "cannot tell the format of");
    nabla("train", "--train", iris, "--skip-rows", "1", "--test", sk("sklearn/wine_data.csv"), NULL);
    expect_fail(1, "has samples of shape [13]");
    nabla("train", "--train", iris, "--skip-rows", "1", "--val-split", "0.001", NULL);
    expect_fail(1, "--val-split 0.001 of 150 samples leaves the held-out part empty");
}
END_TEST


/* ---- the README's example is models/mlp.c, and it runs ----------------------------------- */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    static char buf[2][1 << 17];
    static int k;
    char *b = buf[k++ & 1];
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

START_TEST(test_readme_example_is_mlp_c) {
    /* every line of the README's C block appears, as written, in models/mlp.c */
    char *readme = read_text(NB_SOURCE_DIR "/README.md");
    const char *mlp = read_text(NB_SOURCE_DIR "/models/mlp.c");
    char *block = strstr(readme, "```c\n");
    ck_assert_msg(block != NULL, "README.md has no C block");
    block += 5;
    char *end = strstr(block, "```");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    int lines = 0;
    for (char *line = strtok(block, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ') line++;
        if (!*line) continue;
        ck_assert_msg(strstr(mlp, line) != NULL, "README line not in models/mlp.c: %s", line);
        lines++;
    }
    ck_assert_int_ge(lines, 10);
}
END_TEST

START_TEST(test_models_mlp_runs) {
    /* models/mlp on the tiny fixtures: two epochs, an accuracy line each */
    const char *argv[] = {NB_BUILD_DIR "/models/mlp", fixture("tiny"), NULL};
    char out[4200];
    snprintf(out, sizeof out, "%s/mlp.out", temp_dir());
    int st = run_program(argv, out, NULL);
    const char *text = read_text(out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "models/mlp failed: %s", text);
    ck_assert_msg(strstr(text, "epoch 1: train loss") && strstr(text, "epoch 2: train loss"), "%s", text);
    ck_assert_msg(strstr(text, "test accuracy"), "%s", text);
}
END_TEST

START_TEST(test_models_muon_mlp) {
    /* models/muon_mlp on Fashion-MNIST: Muon on the weights + AdamW on the biases reaches at
     * least AdamW's test accuracy after one epoch (the same initial weights and batches) */
    const char *dir = fashion_mnist_dir();
    if (!dir) NB_SKIP("no Fashion-MNIST training images in %s (NABLA_DATA)", nb_default_data_dir());
    const char *argv[] = {NB_BUILD_DIR "/models/muon_mlp", dir, NULL};
    char out[4200];
    snprintf(out, sizeof out, "%s/muon_mlp.out", temp_dir());
    int st = run_program(argv, out, NULL);
    const char *text = read_text(out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "models/muon_mlp failed: %s", text);
    const char *a = strstr(text, "adamw: 1 epoch"), *m = strstr(text, "muon+adamw: 1 epoch");
    ck_assert_msg(a && m, "%s", text);
    double acc_a = atof(strstr(a, "test accuracy ") + 14), acc_m = atof(strstr(m, "test accuracy ") + 14);
    fprintf(stderr, "muon_mlp: adamw %.4f, muon+adamw %.4f\n", acc_a, acc_m);
    ck_assert_msg(acc_a > 0.8 && acc_m >= acc_a, "%s", text);
}
END_TEST

START_TEST(test_models_tabular_runs) {
    /* models/tabular: the application's arrays, a validation part, early stopping */
    const char *argv[] = {NB_BUILD_DIR "/models/tabular", NULL};
    char out[4200];
    snprintf(out, sizeof out, "%s/tabular.out", temp_dir());
    int st = run_program(argv, out, NULL);
    const char *text = read_text(out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "models/tabular failed: %s", text);
    ck_assert_msg(strstr(text, "epoch 1: train loss") && strstr(text, "early stop: no better validation loss for 5 epochs"),
                  "%s", text);
    double acc = value_after_key(strstr(text, "best: epoch"), "val accuracy ");
    ck_assert_msg(acc >= 0.85, "%s", text);
}
END_TEST

/* ---- nabla ckpt inspect: its help, and RNG states that do not bury the rest --------------- */

START_TEST(test_ckpt_inspect) {
    nabla("ckpt", "inspect", "--help", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "usage: nabla ckpt inspect [--full] FILE...") && strstr(R.out, "--full"), "%s", R.out);
    nabla("ckpt", "--help", NULL);
    expect_ok();
    ck_assert_msg(strstr(R.out, "usage: nabla ckpt inspect"), "%s", R.out);
    nabla("ckpt", "inspect", NULL);
    ck_assert_int_eq(R.code, 2);
    ck_assert_msg(strstr(R.out, "usage: nabla ckpt inspect"), "%s", R.out);
    nabla("ckpt", "inspect", "--bogus", "x.ckpt", NULL);
    expect_fail(2, "nabla ckpt: unknown option '--bogus'");
    nabla("ckpt", "inspect", "/nonexistent/x.ckpt", NULL);
    expect_fail(1, "nabla ckpt: ");

    char ck[4200];
    snprintf(ck, sizeof ck, "%s/run.ckpt", temp_dir());
    nabla("train", "--data", tiny(), "--epochs", "1", "--save", ck, NULL);
    expect_ok();
    nabla("ckpt", "inspect", ck, NULL);
    expect_ok();
    /* the two MT19937 states (624 words: 4,992 hex digits each) are shortened, the rest is there */
    const char *rng = strstr(R.out, "\nrng: {\"kind\":\"mt19937\",\"state\":\"");
    const char *loader = strstr(R.out, "\nloader: {");
    ck_assert_msg(rng && loader && strstr(R.out, "optimizer: SGD") && strstr(R.out, "0.weight"), "%s", R.out);
    ck_assert_msg(strstr(rng, "... (4992 characters; --full shows them)\",\"left\":"), "%s", rng);
    ck_assert_msg(strstr(loader, "... (4992 characters; --full shows them)"), "%s", loader);
    size_t longest = 0;
    for (const char *p = R.out; *p;) {
        size_t len = strcspn(p, "\n");
        longest = len > longest ? len : longest;
        p += len + (p[len] != '\0');
    }
    ck_assert_msg(longest < 200, "a line of %zu characters", longest);
    /* --full prints them whole */
    nabla("ckpt", "inspect", ck, "--full", NULL);
    expect_ok();
    rng = strstr(R.out, "\nrng: {\"kind\":\"mt19937\",\"state\":\"");
    ck_assert_ptr_nonnull(rng);
    rng += strlen("\nrng: {\"kind\":\"mt19937\",\"state\":\"");
    ck_assert_uint_eq(strspn(rng, "0123456789abcdef"), 4992);
    ck_assert_msg(rng[4992] == '"', "%.20s", rng + 4992);
}
END_TEST

/* ---- the manual page: every command and every flag, no more ------------------------------ */

/* The flags of `nabla ... --help` (lines "  --name ..."), into flags[]; returns the count. */
static int help_flags(const char *help, char flags[][48], int max) {
    int n = 0;
    for (const char *p = help; p && *p && n < max; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "  --", 4)) continue;
        int k = 0;
        for (const char *q = p + 4; k < 47 && (isalnum((unsigned char)*q) || *q == '-'); q++) flags[n][k++] = *q;
        flags[n++][k] = '\0';
    }
    return n;
}

/* The flags that section .SH "NABLA <CMD>" of the man page documents: the \-\-names in the tag
 * line of each .TP paragraph. Returns the count, or -1 without that section. */
static int man_flags(const char *man, const char *cmd, char flags[][48], int max) {
    char head[64];
    int at = snprintf(head, sizeof head, "\n.SH \"NABLA ");
    for (const char *c = cmd; *c && at < 60; c++) head[at++] = (char)toupper((unsigned char)*c);
    snprintf(head + at, sizeof head - (size_t)at, "\"\n");
    const char *p = strstr(man, head);
    if (!p) return -1;
    p += strlen(head);
    const char *end = strstr(p, "\n.SH ");
    int n = 0;
    for (const char *tp = strstr(p, ".TP\n"); tp && (!end || tp < end) && n < max; tp = strstr(tp + 4, ".TP\n")) {
        const char *eol = strchr(tp + 4, '\n');
        for (const char *q = strstr(tp + 4, "\\-\\-"); q && q < eol && n < max; q = strstr(q, "\\-\\-")) {
            int k = 0;
            for (q += 4; k < 47;) {
                if (isalnum((unsigned char)*q)) flags[n][k++] = *q++;
                else if (!strncmp(q, "\\-", 2)) {
                    flags[n][k++] = '-';
                    q += 2;
                } else break;
            }
            flags[n++][k] = '\0';
        }
    }
    return n;
}

static bool has_flag(char flags[][48], int n, const char *f) {
    for (int i = 0; i < n; i++)
        if (!strcmp(flags[i], f)) return true;
    return false;
}

START_TEST(test_man_page) {
    const char *man = read_text(NB_SOURCE_DIR "/docs/nabla.1");
    ck_assert_msg(strstr(man, "\n.TH NABLA 1 ") && strstr(man, "\"nabla " NB_VERSION_STRING "\""),
                  "docs/nabla.1: its .TH line should name nabla " NB_VERSION_STRING);
    static char train[256][48], cmd[256][48], doc[256][48];
    int ntrain = man_flags(man, "train", train, 256);
    nabla("--help", NULL);
    expect_ok();
    static char commands[4096];
    snprintf(commands, sizeof commands, "%s", strstr(R.out, "commands:\n") ? strstr(R.out, "commands:\n") : "");
    int ncommands = 0;
    for (const char *p = strchr(commands, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        char name[32];
        if (sscanf(p + 1, "  %31s", name) != 1) continue;
        ncommands++;
        int ndoc = man_flags(man, name, doc, 256);
        ck_assert_msg(ndoc >= 0, "docs/nabla.1 has no section for the command %s (.SH \"NABLA ...\")", name);
        nabla(name, "--help", NULL);
        expect_ok();
        int ncmd = help_flags(R.out, cmd, 256);
        /* a flag shared with train (the model's, the optimizer's, ...) may be documented there */
        for (int i = 0; i < ncmd; i++)
            ck_assert_msg(has_flag(doc, ndoc, cmd[i]) || has_flag(train, ntrain, cmd[i]),
                          "docs/nabla.1 does not document --%s of nabla %s", cmd[i], name);
        for (int i = 0; i < ndoc; i++)
            ck_assert_msg(has_flag(cmd, ncmd, doc[i]),
                          "docs/nabla.1 documents --%s for nabla %s, which its --help does not list", doc[i], name);
    }
    ck_assert_int_ge(ncommands, 6);
    ck_assert_int_ge(ntrain, 80);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, test_commands);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_man_page);
    tcase_add_test(tc, test_ckpt_inspect);
    tcase_add_test(tc, test_malformed_lists);
    tcase_add_test(tc, test_unknown_and_malformed_flags);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_invalid_hyperparameters);
    tcase_add_test(tc, test_flags_that_do_not_apply);
    tcase_add_test(tc, test_bad_data);
    tcase_add_test(tc, test_metrics_file);
    tcase_add_test(tc, test_metrics_header_and_log_every);
    tcase_add_test(tc, test_progress_bar_on_a_terminal);
    tcase_add_test(tc, test_schedules_and_averaging);
    tcase_add_test(tc, test_limit_seed_and_threads);
    tcase_add_test(tc, test_every_optimizer);
    tcase_add_test(tc, test_cnn_and_layer_options);
    tcase_add_test(tc, test_real_data_short_run);
    tcase_add_test(tc, test_csv_iris);
    tcase_add_test(tc, test_csv_regression);
    tcase_add_test(tc, test_csv_early_stop_eval_predict);
    tcase_add_test(tc, test_csv_resume_exact);
    tcase_add_test(tc, test_npy_images);
    tcase_add_test(tc, test_data_flag_errors);
    tcase_add_test(tc, test_readme_example_is_mlp_c);
    tcase_add_test(tc, test_models_mlp_runs);
    tcase_add_test(tc, test_models_muon_mlp);
    tcase_add_test(tc, test_models_tabular_runs);
    suite_add_tcase(s, tc);
    return run_suite(s) ? 1 : 0;
}
