/* char_rnn.c - a character-level LSTM language model on any text file, printing samples as it
 * learns (Karpathy's char-rnn, in C on nabla).
 *
 *   model = nn.Sequential(nn.Embedding(V, E), nn.LSTM(E, H, num_layers=L, batch_first=True),
 *                         nn.Linear(H, V))                 # V = distinct bytes of the text
 *   for step in ...:
 *       x, y = random windows of the text, y shifted by one byte
 *       loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
 *       opt.zero_grad(); loss.backward(); clip_grad_norm_(params, 5); opt.step()
 *
 * Sampling feeds one byte at a time through the same modules, carrying the LSTM's (h, c).
 *
 * Usage: char_rnn [--text FILE] [--hidden 128] [--layers 2] [--embed 32] [--seq 64]
 *                 [--batch 32] [--optim adam|rmsprop] [--lr 2e-3] [--clip 5] [--seconds 60]
 *                 [--steps 0] [--sample-every 100] [--sample-len 200] [--temperature 0.8]
 *                 [--seed 0] [--threads 1]
 * Default text: /usr/share/dict/words (Debian: apt-get install wamerican). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nabla.h"

typedef struct opts {
    const char *text, *optim;
    long hidden, layers, embed, seq, batch, steps, sample_every, sample_len, seed, threads;
    double lr, clip, seconds, temperature;
} opts;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what) {
    fprintf(stderr, "char_rnn: %s: %s\n", what, nb_last_error());
    return 1;
}

/* A whole string as a number (false for "", "12x", out of range). */
static bool int_arg(const char *v, long *out) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno) return false;
    *out = n;
    return true;
}

static bool num_arg(const char *v, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno) return false;
    *out = d;
    return true;
}

static int parse(int argc, char **argv, opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (!v || strncmp(a, "--", 2)) {
            fprintf(stderr, "char_rnn: bad argument '%s' (see --help)\n", a);
            return -1;
        }
        i++;
        bool bad = false;
        if (!strcmp(a, "--text")) o->text = v;
        else if (!strcmp(a, "--optim")) o->optim = v;
        else if (!strcmp(a, "--hidden")) bad = !int_arg(v, &o->hidden);
        else if (!strcmp(a, "--layers")) bad = !int_arg(v, &o->layers);
        else if (!strcmp(a, "--embed")) bad = !int_arg(v, &o->embed);
        else if (!strcmp(a, "--seq")) bad = !int_arg(v, &o->seq);
        else if (!strcmp(a, "--batch")) bad = !int_arg(v, &o->batch);
        else if (!strcmp(a, "--steps")) bad = !int_arg(v, &o->steps);
        else if (!strcmp(a, "--sample-every")) bad = !int_arg(v, &o->sample_every);
        else if (!strcmp(a, "--sample-len")) bad = !int_arg(v, &o->sample_len);
        else if (!strcmp(a, "--seed")) bad = !int_arg(v, &o->seed);
        else if (!strcmp(a, "--threads")) bad = !int_arg(v, &o->threads);
        else if (!strcmp(a, "--lr")) bad = !num_arg(v, &o->lr);
        else if (!strcmp(a, "--clip")) bad = !num_arg(v, &o->clip);
        else if (!strcmp(a, "--seconds")) bad = !num_arg(v, &o->seconds);
        else if (!strcmp(a, "--temperature")) bad = !num_arg(v, &o->temperature);
        else {
            fprintf(stderr, "char_rnn: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (bad) { /* atol/atof made "abc" a silent 0 */
            fprintf(stderr, "char_rnn: %s: '%s' is not a number\n", a, v);
            return -1;
        }
    }
    if (o->hidden < 1 || o->layers < 1 || o->embed < 1 || o->seq < 1 || o->batch < 1 ||
        o->steps < 0 || o->sample_len < 0 || o->threads < 1 || !(o->lr > 0) || !(o->temperature > 0)) {
        fprintf(stderr, "char_rnn: sizes, --lr and --temperature must be positive\n");
        return -1;
    }
    return 0;
}

/* Whole file in memory; NULL (and a message) on failure. */
static unsigned char *read_file(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *b = realloc(buf, cap *= 2);
        if (!b) free(buf);
        buf = b;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    *len = (long)n;
    return buf;
}

static nb_optim *make_optimizer(const opts *o, nb_tensor *const *params, int n) {
    if (!strcmp(o->optim, "adam")) {
        nb_adam_opts a = nb_adam_defaults();
        a.lr = o->lr;
        return nb_adam(params, n, &a);
    }
    if (!strcmp(o->optim, "rmsprop")) {
#ifdef CHAR_RNN_HAVE_RMSPROP
        nb_rmsprop_opts r = nb_rmsprop_defaults();
        r.lr = o->lr;
        return nb_rmsprop(params, n, &r);
#else
        fprintf(stderr, "char_rnn: this build of nabla has no RMSprop yet (use --optim adam)\n");
        return NULL;
#endif
    }
    fprintf(stderr, "char_rnn: unknown optimizer '%s' (adam, rmsprop)\n", o->optim);
    return NULL;
}

/* Generate len bytes starting after `start`, one step at a time with the LSTM's state carried
 * over; softmax(logits / temperature) sampled with rng. Printed with newlines as " / ". */
static int sample(nb_module *model, const unsigned char *vocab, int V, int start, long len,
                  double temperature, nb_rng *rng, nb_arena *ar) {
    nb_module *emb = nb_module_child(model, 0), *lstm = nb_module_child(model, 1),
              *fc = nb_module_child(model, 2);
    bool prev = nb_set_grad_enabled(false);
    nb_module_train(model, false);
    nb_tensor *h = NULL, *c = NULL;
    int id = start;
    double *p = malloc(sizeof(double) * (size_t)V);
    int rc = 0;
    printf("    | ");
    for (long i = 0; i < len && p; i++) {
        nb_tensor *x = nb_from_array(ar, NB_INT32, 2, (int64_t[]){1, 1}, (int32_t[]){id});
        nb_tensor *out = nb_rnn_forward(lstm, ar, nb_forward(emb, ar, x), h, c, &h, &c);
        nb_tensor *logits = nb_forward(fc, ar, out);
        if (!logits) {
            rc = -1;
            break;
        }
        double m = -INFINITY, s = 0, u = nb_rng_uniform_double(rng);
        for (int k = 0; k < V; k++) m = fmax(m, nb_f32(logits)[k] / temperature);
        for (int k = 0; k < V; k++) s += p[k] = exp(nb_f32(logits)[k] / temperature - m);
        for (id = 0; id < V - 1 && (u -= p[id] / s) > 0; id++) {}
        if (vocab[id] == '\n') printf(" / ");
        else putchar(vocab[id]);
    }
    printf("\n");
    free(p);
    nb_arena_reset(ar);
    nb_module_train(model, true);
    nb_set_grad_enabled(prev);
    return rc;
}

int main(int argc, char **argv) {
    opts o = {.text = "/usr/share/dict/words", .optim = "adam", .hidden = 128, .layers = 2,
              .embed = 32, .seq = 64, .batch = 32, .steps = 0, .sample_every = 100,
              .sample_len = 200, .seed = 0, .threads = 1, .lr = 2e-3, .clip = 5.0,
              .seconds = 60, .temperature = 0.8};
    int pr = parse(argc, argv, &o);
    if (pr) {
        if (pr > 0)
            printf("usage: char_rnn [--text FILE] [--hidden 128] [--layers 2] [--embed 32] [--seq 64]\n"
                   "                [--batch 32] [--optim adam|rmsprop] [--lr 2e-3] [--clip 5]\n"
                   "                [--seconds 60] [--steps 0 (no limit)] [--sample-every 100]\n"
                   "                [--sample-len 200] [--temperature 0.8] [--seed 0] [--threads 1]\n");
        return pr > 0 ? 0 : 2;
    }
    long n;
    unsigned char *text = read_file(o.text, &n);
    if (!text) {
        fprintf(stderr, "char_rnn: cannot read %s%s\n", o.text,
                strcmp(o.text, "/usr/share/dict/words") ? "" : " (apt-get install wamerican, or give --text FILE)");
        return 1;
    }
    if (n < o.seq + 2) {
        fprintf(stderr, "char_rnn: %s has %ld bytes, fewer than --seq + 2\n", o.text, n);
        return 1;
    }
    /* vocabulary: the distinct bytes of the text, in byte order */
    int id_of[256], V = 0;
    unsigned char vocab[256];
    bool seen[256] = {false};
    for (long i = 0; i < n; i++) seen[text[i]] = true;
    for (int b = 0; b < 256; b++) {
        id_of[b] = seen[b] ? V : -1;
        if (seen[b]) vocab[V++] = (unsigned char)b;
    }
    if (nb_set_num_threads((int)o.threads)) return die("threads");

    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)o.seed);
    nb_rnn_opts lo = nb_rnn_defaults();
    lo.num_layers = o.layers;
    lo.batch_first = true;
    nb_module *model = nb_sequential(3, (nb_module *[]){
        nb_embedding_new(V, o.embed, NB_NO_PADDING, &rng),
        nb_lstm_new(o.embed, o.hidden, &lo, &rng),
        nb_linear_new(o.hidden, V, true, &rng)});
    if (!model) return die("model");
    int np = nb_module_num_params(model);
    nb_tensor **params = malloc(sizeof *params * (size_t)np);
    nb_module_parameters(model, params, np);
    nb_optim *opt = make_optimizer(&o, params, np);
    nb_arena *ar = nb_arena_new(0);
    int32_t *xb = malloc(sizeof(int32_t) * (size_t)(o.batch * o.seq));
    int32_t *yb = malloc(sizeof(int32_t) * (size_t)(o.batch * o.seq));
    if (!opt) return nb_last_status() ? die("optimizer") : 2;
    if (!ar || !xb || !yb) return die("setup");

    double uniform = log((double)V);
    printf("char_rnn: %s, %ld bytes, %d symbols (uniform-guess loss %.3f)\n", o.text, n, V, uniform);
    printf("model: Embedding(%d, %ld) -> LSTM(%ld, %ld, num_layers=%ld) -> Linear(%ld, %d), "
           "%lld parameters; %s lr %g, batch %ld x %ld bytes\n", V, o.embed, o.embed, o.hidden,
           o.layers, o.hidden, V, (long long)nb_module_numel(model), o.optim, o.lr, o.batch, o.seq);
    int start = id_of['\n'] >= 0 ? id_of['\n'] : 0;
    double t0 = now(), avg = 0, first = 0;
    long step = 0;
    for (;; step++) {
        double elapsed = now() - t0;
        bool done = (o.steps && step >= o.steps) || (!o.steps && elapsed >= o.seconds);
        if (step && (step % o.sample_every == 0 || done)) {
            printf("step %5ld  %6.1fs  loss %.3f  (uniform %.3f)  %.0f bytes/s\n", step, elapsed, avg,
                   uniform, (double)(step * o.batch * o.seq) / elapsed);
            if (sample(model, vocab, V, start, o.sample_len, o.temperature, &rng, ar)) return die("sample");
            fflush(stdout);
        }
        if (done) break;
        nb_arena_reset(ar);
        for (long b = 0; b < o.batch; b++) { /* a random window, and the same shifted by one */
            long s = (long)nb_rng_below(&rng, (uint32_t)(n - o.seq - 1));
            for (long t = 0; t < o.seq; t++) {
                xb[b * o.seq + t] = id_of[text[s + t]];
                yb[b * o.seq + t] = id_of[text[s + t + 1]];
            }
        }
        nb_tensor *x = nb_from_array(ar, NB_INT32, 2, (int64_t[]){o.batch, o.seq}, xb);
        nb_tensor *y = nb_from_array(ar, NB_INT32, 1, (int64_t[]){o.batch * o.seq}, yb);
        nb_tensor *logits = nb_reshape(ar, nb_forward(model, ar, x), 2, (int64_t[]){-1, V});
        nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);
        if (!loss) return die("forward");
        nb_optim_zero_grad(opt, true);
        double norm;
        if (nb_backward(loss) || (o.clip > 0 && nb_clip_grad_norm(params, np, o.clip, 2.0, false, &norm)) ||
            nb_optim_step(opt))
            return die("step");
        double l = nb_item(loss);
        if (step == 0) first = avg = l;
        avg = 0.95 * avg + 0.05 * l; /* smoothed, as char-rnn prints it */
    }
    printf("loss %.3f -> %.3f in %ld steps (uniform guess %.3f)\n", first, avg, step, uniform);
    free(xb);
    free(yb);
    free(params);
    free(text);
    nb_arena_free(ar);
    nb_optim_free(opt);
    nb_module_free(model);
    return 0;
}
