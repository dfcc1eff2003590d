/* fuzz_ckpt.c - libFuzzer harness for the checkpoint reader (built and run by tools/fuzz.sh).
 *
 * Each input is a checkpoint file (gzip'd or, mostly, the raw safetensors bytes, so mutations
 * reach the header): it is parsed with nb_ckpt_parse, applied to four live training setups
 * (SGD+momentum with StepLR, Adam with OneCycleLR, each also with weight averaging: SWA with
 * SWALR, EMA) with a model, RNG and DataLoader, which must either accept it or reject it
 * without a crash, a leak or a sanitizer report; then every metadata entry and (when the
 * header promises at most 16 MiB) every tensor is read. The setups' models are tiny, so the
 * harness aborts if applying took more than 2 MiB (it tracks what nabla holds, tests/peak_alloc.h): an
 * apply must size its memory by the live objects, never by what a file promises. The seed
 * corpus has such a bomb (48 MiB of zeros in 48 KiB; tools/fuzz.sh's -malloc_limit_mb trips on
 * a reader that inflates it whole). With NB_FUZZ_SEEDS=<dir> set, the initializer first writes valid checkpoints of the
 * setups there as a seed corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nabla.h"
#include "../peak_alloc.h"

typedef struct setup {
    nb_module *model;
    nb_optim *opt;
    nb_sched *sched;
    nb_loader *ld;
    nb_rng rng;
    nb_averaged *avg;
    nb_sched *swalr;
} setup;

static setup sgd, adam, sgd_swa, adam_ema;
static nb_tensor *images, *labels;

static void build(setup *s, bool use_adam, bool averaging) {
    nb_rng_seed(&s->rng, 1);
    s->model = nb_sequential(3, (nb_module *[]){nb_linear_new(4, 3, true, &s->rng), nb_relu_new(),
                                                 nb_linear_new(3, 2, true, &s->rng)});
    nb_tensor *p[4];
    int n = nb_module_parameters(s->model, p, 4);
    if (use_adam) {
        nb_adam_opts o = nb_adam_defaults();
        s->opt = nb_adam(p, n, &o);
        nb_onecycle_opts so = nb_onecycle_defaults();
        so.max_lr = 0.01;
        so.total_steps = 100;
        s->sched = nb_onecycle_lr(s->opt, &so);
    } else {
        nb_sgd_opts o = nb_sgd_defaults();
        o.momentum = 0.9;
        s->opt = nb_sgd(p, n, &o);
        s->sched = nb_step_lr(s->opt, 2, 0.5);
    }
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = 3;
    lo.flatten = true;
    s->ld = nb_loader_new(images, labels, &lo);
    /* one step, so there is optimizer state */
    nb_arena *ar = nb_arena_new(0);
    nb_tensor *x, *y;
    nb_loader_next(s->ld, ar, &x, &y);
    nb_optim_zero_grad(s->opt, true);
    nb_backward(nb_cross_entropy(ar, nb_forward(s->model, ar, x), y, NULL));
    nb_optim_step(s->opt);
    nb_arena_free(ar);
    if (!s->model || !s->opt || !s->ld || !s->sched) abort();
    if (averaging) {
        nb_averaged_opts ao = nb_averaged_defaults();
        if (use_adam) ao.kind = NB_AVG_EMA;
        s->avg = nb_averaged_new(p, n, &ao);
        if (!s->avg || nb_averaged_update(s->avg, p, n)) abort();
        if (!use_adam) {
            nb_swalr_opts wo = nb_swalr_defaults();
            wo.swa_lr = 0.05;
            if (!(s->swalr = nb_swalr(s->opt, &wo)) || nb_sched_step(s->swalr)) abort();
        }
    }
}

/* Save s, then store the gunzip'd bytes in dir/name. */
static void seed(const setup *s, const char *dir, const char *name, bool weights) {
    char tmp[4096], out[4096];
    snprintf(tmp, sizeof tmp, "%s/%s.gz", dir, name);
    snprintf(out, sizeof out, "%s/%s", dir, name);
    nb_meta meta[] = {{"note", "seed"}};
    nb_train_state st = {s->model, s->opt, s->sched, (nb_rng *)&s->rng, s->ld, 1, 4, meta, 1, 0, s->avg, s->swalr};
    if (weights ? nb_weights_save(tmp, s->model, meta, 1) : nb_checkpoint_save(tmp, &st)) return;
    gzFile g = gzopen(tmp, "rb");
    FILE *f = fopen(out, "wb");
    char buf[4096];
    int n;
    while (g && f && (n = gzread(g, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, f);
    if (g) gzclose(g);
    if (f) fclose(f);
    remove(tmp);
}

/* dir/bomb: a gzip'd container whose header promises 48 MiB for "0.weight" (the setups'
 * model has [3, 4]), followed by 48 gzip members of 1 MiB of zeros. */
static void seed_bomb(const char *dir) {
    char path[4096], hdr[256];
    snprintf(path, sizeof path, "%s/bomb", dir);
    int n = snprintf(hdr + 8, sizeof hdr - 8, "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[12582912],"
                     "\"data_offsets\":[0,50331648]}}");
    for (int i = 0; i < 8; i++) hdr[i] = (char)((uint64_t)n >> (8 * i));
    unsigned char *zeros = calloc(1, 1 << 20);
    FILE *f = fopen(path, "wb");
    for (int m = 0; f && zeros && m <= 48; m++) /* member 0: the header, then the zeros */
        if (!gz_member(f, m ? (const void *)zeros : hdr, m ? 1u << 20 : (size_t)(8 + n), 9)) abort();
    if (f) fclose(f);
    free(zeros);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (nb_set_allocator(peak_malloc, peak_realloc, peak_free)) abort();
    images = nb_empty(NULL, NB_UINT8, 2, (int64_t[]){7, 4});
    labels = nb_empty(NULL, NB_UINT8, 1, (int64_t[]){7});
    for (int i = 0; i < 28; i++) nb_u8(images)[i] = (uint8_t)(i * 37);
    for (int i = 0; i < 7; i++) nb_u8(labels)[i] = (uint8_t)(i & 1);
    build(&sgd, false, false);
    build(&adam, true, false);
    build(&sgd_swa, false, true);
    build(&adam_ema, true, true);
    const char *dir = getenv("NB_FUZZ_SEEDS");
    if (dir) {
        seed(&sgd, dir, "sgd_steplr", false);
        seed(&adam, dir, "adam_onecycle", false);
        seed(&sgd, dir, "weights", true);
        seed(&sgd_swa, dir, "sgd_swa_swalr", false);
        seed(&adam_ema, dir, "adam_ema", false);
        seed_bomb(dir);
    }
    return 0;
}

static void apply(setup *s, const nb_ckpt *c) {
    nb_train_state st = {s->model, s->opt, s->sched, &s->rng, s->ld, 0, 0, NULL, 0, 0, s->avg, s->swalr};
    nb_ckpt_apply(c, &st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nb_ckpt *c = nb_ckpt_parse(data, size);
    if (!c) return 0;
    size_t base = peak_begin();
    apply(&sgd, c);
    apply(&adam, c);
    apply(&sgd_swa, c);
    apply(&adam_ema, c);
    nb_train_state only_model = {.model = adam.model};
    nb_ckpt_apply(c, &only_model);
    if (peak_since(base) > (2u << 20)) {
        fprintf(stderr, "applying a checkpoint of %zu bytes (promising %llu bytes of data) held %zu "
                "bytes\n", size, (unsigned long long)nb_ckpt_data_bytes(c), peak_since(base));
        abort();
    }
    volatile unsigned sum = 0;
    for (int i = 0; i < nb_ckpt_num_meta(c); i++) {
        const char *k, *v;
        if (nb_ckpt_meta_at(c, i, &k, &v)) abort();
        sum += (unsigned)strlen(k) + (unsigned)strlen(v);
    }
    /* reading all the data costs what the header promises: only for modest promises */
    for (int i = 0; nb_ckpt_data_bytes(c) <= (16u << 20) && i < nb_ckpt_num_tensors(c); i++) {
        nb_ckpt_tensor t;
        if (nb_ckpt_tensor_at(c, i, &t)) break; /* truncated or corrupt data: an error, fine */
        for (size_t k = 0; k < t.nbytes; k++) sum += ((const unsigned char *)t.data)[k];
        sum += (unsigned)strlen(t.name) + (unsigned)strlen(t.dtype);
    }
    nb_ckpt_close(c);
    return 0;
}
