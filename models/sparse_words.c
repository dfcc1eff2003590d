/* sparse_words.c - a text-classification task with sparse features, for comparing optimizers
 * where Adagrad is said to shine: most words are rare, and the rare ones carry the label.
 *
 * A synthetic corpus: a vocabulary of 784 words whose frequencies follow Zipf's law (word r
 * has probability ~ 1/(r+1)^1.1), 10 topics. A document of topic c has 24 words drawn from the
 * background distribution, in which topic c's 20 favourite common words (ranks 40-239) are 1.5
 * times as likely, plus 1-3 of topic c's 40 rare keywords (ranks 384-783). Each document is a
 * bag of words: a 784-element multi-hot vector, word w present or not.
 *
 * The model is PyTorch's EmbeddingBag(784, 64, mode='sum') over a document's word ids, ReLU,
 * Linear(64, 10). On a multi-hot vector that EmbeddingBag is exactly Linear(784, 64) (its
 * weight's column w is word w's embedding; the bias is one more embedding every document
 * has), so `nabla train --hidden 64` trains it from IDX files: this program writes the corpus
 * as 28x28 "images" (255 where a word is present) with IDX labels, and checks on a batch that
 * nabla's Embedding summed over the word ids equals the Linear on the multi-hot rows, forward
 * and gradient. A batch's gradient touches only the columns of the words it contains: most of
 * the first layer's gradient is zero, step after step (the sparse gradients of Duchi et al.'s
 * Adagrad paper).
 *
 * Usage: sparse_words OUTDIR [--train N] [--test N] [--seed S]
 *        nabla compare --data OUTDIR --hidden 64 --optim sgd,adam,rmsprop,adagrad --out cmp */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "nabla.h"

enum { VOCAB = 784, TOPICS = 10, BACKGROUND = 24, FAVOURITES = 20, KEYWORDS = 40, DIM = 64, MAXLEN = 32 };

static int die(const char *what) {
    fprintf(stderr, "sparse_words: %s: %s\n", what, nb_last_error());
    return 1;
}

/* A word drawn from the cumulative distribution cdf[VOCAB]. */
static int draw(const double *cdf, nb_rng *rng) {
    double u = nb_rng_uniform_double(rng) * cdf[VOCAB - 1];
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Document i of topic label into ids (its distinct words, sorted); returns how many. */
static int document(int label, double cdf[TOPICS][VOCAB], nb_rng *rng, int *ids) {
    unsigned char seen[VOCAB] = {0};
    int n = 0;
    for (int k = 0; k < BACKGROUND; k++) seen[draw(cdf[label], rng)] = 1;
    int keys = 1 + (int)nb_rng_below(rng, 3);
    for (int k = 0; k < keys; k++) seen[384 + label * KEYWORDS + (int)nb_rng_below(rng, KEYWORDS)] = 1;
    for (int w = 0; w < VOCAB; w++)
        if (seen[w] && n < MAXLEN) ids[n++] = w;
    return n;
}

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* IDX files <dir>/<prefix>-images-idx3-ubyte ([n, 28, 28] multi-hot) and -labels-idx1-ubyte. */
static int write_split(const char *dir, const char *prefix, long n, double cdf[TOPICS][VOCAB], nb_rng *rng,
                       double *words) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fl = fopen(path, "wb");
    if (!fi || !fl) {
        fprintf(stderr, "sparse_words: cannot write %s: %s\n", path, strerror(errno));
        if (fi) fclose(fi);
        if (fl) fclose(fl);
        return -1;
    }
    unsigned char h[16];
    be32(h, 0x803);
    be32(h + 4, (uint32_t)n);
    be32(h + 8, 28);
    be32(h + 12, 28);
    fwrite(h, 1, 16, fi);
    be32(h, 0x801);
    be32(h + 4, (uint32_t)n);
    fwrite(h, 1, 8, fl);
    *words = 0;
    for (long i = 0; i < n; i++) {
        int label = (int)nb_rng_below(rng, TOPICS), ids[MAXLEN], len = document(label, cdf, rng, ids);
        unsigned char row[VOCAB] = {0}, lab = (unsigned char)label;
        for (int k = 0; k < len; k++) row[ids[k]] = 255;
        fwrite(row, 1, VOCAB, fi);
        fwrite(&lab, 1, 1, fl);
        *words += len;
    }
    *words /= (double)n;
    int bad = ferror(fi) | ferror(fl);
    bad |= fclose(fi) | fclose(fl);
    if (bad) fprintf(stderr, "sparse_words: error writing %s/%s-*\n", dir, prefix);
    return bad ? -1 : 0;
}

/* EmbeddingBag(sum) over the word ids of x's rows == Linear on x, forward and gradient; and
 * the gradient of the Linear's weight is zero in every column of a word the batch lacks. */
static int check_bag(const char *dir) {
    nb_mnist train;
    if (nb_mnist_load(dir, "train", &train)) return die("data");
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *lin = nb_linear_new(VOCAB, DIM, true, &rng);
    nb_arena *ar = nb_arena_new(0);
    nb_loader_opts lo = nb_loader_defaults();
    lo.flatten = true;
    lo.shuffle = false;
    nb_loader *ld = nb_loader_new(train.images, train.labels, &lo);
    nb_tensor *x, *y;
    if (!lin || !ar || !ld || nb_loader_next(ld, ar, &x, &y) <= 0) return die("setup");
    int64_t B = x->shape[0];
    /* the word ids of each document, padded with word VOCAB (the bias, which every document has)
     * up to MAXLEN + 1 ids; the embedding table is the Linear's weight transposed plus the bias */
    nb_tensor *ids = nb_empty(ar, NB_INT32, 2, (int64_t[]){B, MAXLEN + 1});
    nb_tensor *table = nb_zeros(ar, 2, (int64_t[]){VOCAB + 2, DIM}); /* + the bias row, + padding */
    const nb_tensor *w = nb_module_param(lin, 0).tensor, *b = nb_module_param(lin, 1).tensor;
    for (int64_t j = 0; j < DIM; j++) {
        for (int64_t v = 0; v < VOCAB; v++) nb_f32(table)[v * DIM + j] = nb_f32(w)[j * VOCAB + v];
        nb_f32(table)[VOCAB * DIM + j] = nb_f32(b)[j];
    }
    for (int64_t i = 0; i < B; i++) {
        int n = 0;
        for (int v = 0; v < VOCAB; v++)
            if (nb_f32(x)[i * VOCAB + v] != 0) nb_i32(ids)[i * (MAXLEN + 1) + n++] = v;
        nb_i32(ids)[i * (MAXLEN + 1) + n++] = VOCAB;
        while (n < MAXLEN + 1) nb_i32(ids)[i * (MAXLEN + 1) + n++] = VOCAB + 1; /* padding_idx */
    }
    if (nb_requires_grad(table, true)) return die("table");
    nb_tensor *bag = nb_sum_dim(ar, nb_embedding(ar, ids, table, VOCAB + 1), 1, false); /* EmbeddingBag(sum) */
    nb_tensor *dense = nb_forward(lin, ar, x);                                          /* Linear(multi-hot) */
    nb_tensor *loss = nb_cross_entropy(ar, nb_relu(ar, dense), y, NULL);
    nb_tensor *bag_loss = nb_cross_entropy(ar, nb_relu(ar, bag), y, NULL);
    if (!loss || !bag_loss || nb_backward(loss) || nb_backward(bag_loss)) return die("forward");
    double worst = 0, worst_grad = 0;
    for (int64_t k = 0; k < bag->numel; k++)
        worst = fmax(worst, fabs((double)nb_f32(bag)[k] - nb_f32(dense)[k]) / fmax(0.05, fabs((double)nb_f32(dense)[k])));
    const nb_tensor *g = nb_module_param(lin, 0).tensor->grad;
    for (int64_t j = 0; j < DIM; j++)
        for (int64_t v = 0; v < VOCAB; v++) {
            double a = nb_f32(table->grad)[v * DIM + j], d = nb_f32(g)[j * VOCAB + v];
            worst_grad = fmax(worst_grad, fabs(a - d) / fmax(1e-4, fabs(d)));
        }
    int zero_cols = 0, absent = 0;
    for (int64_t v = 0; v < VOCAB; v++) {
        bool present = false, zero = true;
        for (int64_t i = 0; i < B && !present; i++) present = nb_f32(x)[i * VOCAB + v] != 0;
        for (int64_t j = 0; j < DIM && zero; j++) zero = nb_f32(g)[j * VOCAB + v] == 0;
        absent += !present;
        zero_cols += zero;
        if (!present && !zero) {
            fprintf(stderr, "sparse_words: word %lld is in no document of the batch, yet has a gradient\n",
                    (long long)v);
            return 1;
        }
    }
    printf("EmbeddingBag(sum) over the word ids = Linear on the multi-hot rows (largest relative difference "
           "%.2g forward, %.2g in the gradient)\n", worst, worst_grad);
    printf("a batch of %lld documents: %d of %d words absent, %d zero columns in the first layer's gradient "
           "(%.0f%%)\n", (long long)B, absent, VOCAB, zero_cols, 100.0 * zero_cols / VOCAB);
    nb_loader_free(ld);
    nb_arena_free(ar);
    nb_module_free(lin);
    nb_mnist_free(&train);
    return worst <= 1e-5 && worst_grad <= 1e-4 ? 0 : 1;
}

static long number(const char *flag, const char *s, long min) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > 10000000) {
        fprintf(stderr, "sparse_words: %s: '%s' is not a number in %ld..10000000\n", flag, s, min);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    long ntrain = 20000, ntest = 5000, seed = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--train") && i + 1 < argc) ntrain = number("--train", argv[++i], 1);
        else if (!strcmp(argv[i], "--test") && i + 1 < argc) ntest = number("--test", argv[++i], 1);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = number("--seed", argv[++i], 0);
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else {
            fprintf(stderr, "usage: sparse_words OUTDIR [--train N] [--test N] [--seed S]\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: sparse_words OUTDIR [--train N] [--test N] [--seed S]\n");
        return 2;
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "sparse_words: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    /* word probabilities per topic: Zipf, topic c's favourite common words 1.5x */
    static double cdf[TOPICS][VOCAB];
    for (int c = 0; c < TOPICS; c++) {
        double acc = 0;
        for (int w = 0; w < VOCAB; w++) {
            double p = 1.0 / pow(w + 1, 1.1);
            if (w >= 40 && w < 240 && (w - 40) / FAVOURITES == c) p *= 1.5;
            cdf[c][w] = acc += p;
        }
    }
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)seed);
    double wtrain, wtest;
    if (write_split(dir, "train", ntrain, cdf, &rng, &wtrain) || write_split(dir, "t10k", ntest, cdf, &rng, &wtest))
        return 1;
    printf("wrote %ld + %ld documents to %s: %.1f distinct words each on average (%.1f%% of the %d features)\n",
           ntrain, ntest, dir, wtrain, 100 * wtrain / VOCAB, VOCAB);
    return check_bag(dir);
}
