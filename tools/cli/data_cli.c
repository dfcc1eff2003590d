/* data_cli.c - where `nabla train`, `nabla eval` and `nabla predict` get their data.
 *
 *   --data DIR                  MNIST-style IDX files (train-* and t10k-*; default Fashion-MNIST)
 *   --train FILE[,Y] [--test FILE[,Y]]
 *                               .csv, .csv.gz, .tsv, .txt (text tables, raw or gzip) or .npy;
 *                               ",Y": the targets in a second file of the same kind
 *   --target-col K --skip-rows N --delimiter C|ws|tab --task classify|regress
 *   --test-split F --val-split F   parts taken with torch.utils.data.random_split and
 *                               torch.Generator().manual_seed(--seed): first the test part of
 *                               the whole, then the validation part of what is left
 *   --normalize                 per-feature standardisation fitted on the training part only,
 *                               applied to every part (and saved in checkpoints: part "normalize")
 *
 * A checkpoint records what the model's input and output are, and how the data were read and
 * split ("user.cli.data"), so eval and predict read new data the same way. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cli.h"

static const char *data_dir, *train_path, *test_path, *delimiter, *task = "classify";
static long target_col = -1, skip_rows = 0;
static double test_split = 0, val_split = 0;
static bool normalize;

void data_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"data", ARG_STRING, &data_dir, "folder with MNIST-style IDX files (default: Fashion-MNIST)", NULL});
    cli_add(f, (arg_spec){"train", ARG_STRING, &train_path, "training data: FILE.csv[.gz], .tsv or .npy (FILE,YFILE: targets in a second file)", NULL});
    cli_add(f, (arg_spec){"test", ARG_STRING, &test_path, "test data, read as --train", NULL});
    cli_add(f, (arg_spec){"target-col", ARG_INT, &target_col, "column of the target, from 0; negative counts from the end (default -1: last)", NULL});
    cli_add(f, (arg_spec){"skip-rows", ARG_INT, &skip_rows, "lines to skip at the top of a text file (a header: 1)", NULL});
    cli_add(f, (arg_spec){"delimiter", ARG_STRING, &delimiter, "field separator: one character, tab, or ws (runs of blanks) (default , ; tab for .tsv)", NULL});
    cli_add(f, (arg_spec){"task", ARG_STRING, &task, "classify (cross-entropy, accuracy) or regress (MSE, RMSE, MAE) (default classify)", NULL});
    cli_add(f, (arg_spec){"test-split", ARG_DOUBLE, &test_split, "hold out this fraction of --train as the test part (no --test file)", NULL});
    cli_add(f, (arg_spec){"val-split", ARG_DOUBLE, &val_split, "take this fraction of the training data as the validation part", NULL});
    cli_add(f, (arg_spec){"normalize", ARG_FLAG, &normalize, "standardise each feature with the training part's mean and std", NULL});
}

static nb_task task_of(const char *s) { return !strcmp(s, "regress") ? NB_REGRESS : NB_CLASSIFY; }

/* The delimiter flag as a byte (0: the file's default). */
static int delim_of(const char *s) {
    if (!s) return 0;
    if (!strcmp(s, "ws")) return NB_CSV_WHITESPACE;
    if (!strcmp(s, "tab") || !strcmp(s, "\\t")) return '\t';
    return strlen(s) == 1 ? (unsigned char)s[0] : -1;
}

int data_cli_check(data_mode mode) {
    if (mode != DATA_TRAIN && test_path) test_split = 0; /* a test file replaces the run's held-out part */
    if (mode == DATA_PREDICT) test_split = val_split = 0;  /* predict reads --input with the reader's flags only */
    if (strcmp(task, "classify") && strcmp(task, "regress")) {
        fprintf(stderr, "%s: --task must be classify or regress, not %s\n", cli_prog, task);
        return 2;
    }
    if (delim_of(delimiter) < 0 || delim_of(delimiter) == '"' || delim_of(delimiter) == '\n') {
        fprintf(stderr, "%s: --delimiter must be one character, tab or ws, not '%s'\n", cli_prog, delimiter);
        return 2;
    }
    if (skip_rows < 0) {
        fprintf(stderr, "%s: --skip-rows must be >= 0\n", cli_prog);
        return 2;
    }
    if (mode == DATA_PREDICT) return 0;
    if (!(test_split >= 0 && test_split < 1) || !(val_split >= 0 && val_split < 1)) {
        fprintf(stderr, "%s: --test-split and --val-split are fractions in [0, 1)\n", cli_prog);
        return 2;
    }
    if (test_split > 0 && test_path) {
        fprintf(stderr, "%s: --test-split holds out a test part of --train; with a --test file there is one\n", cli_prog);
        return 2;
    }
    if (!train_path && ((mode == DATA_TRAIN && test_path) || test_split > 0)) {
        fprintf(stderr, "%s: %s goes with --train FILE (IDX data have their test split)\n", cli_prog,
                test_path ? "--test" : "--test-split");
        return 2;
    }
    if (!train_path && task_of(task) == NB_REGRESS) {
        fprintf(stderr, "%s: --task regress needs --train FILE (IDX data hold class labels)\n", cli_prog);
        return 2;
    }
    if (train_path && data_dir) {
        fprintf(stderr, "%s: give --data DIR (IDX files) or --train FILE, not both\n", cli_prog);
        return 2;
    }
    return 0;
}

bool data_cli_regress(void) { return task_of(task) == NB_REGRESS; }

bool data_cli_restorable(const char *name, size_t len) {
    static cli_flags mine;
    if (!mine.n) data_cli_flags(&mine);
    static const char *const paths[] = {"data", "train", "test"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (strlen(paths[i]) == len && !strncmp(paths[i], name, len)) return false;
    for (int k = 0; k < mine.n; k++)
        if (strlen(mine.specs[k].name) == len && !strncmp(mine.specs[k].name, name, len)) return true;
    return false;
}

/* ---- reading one source ------------------------------------------------------------------------ */
static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* "X,Y" -> x and y (y NULL when spec is one file; a file whose name holds a comma wins). */
static void split_pair(const char *spec, char *x, char *y, size_t n) {
    snprintf(x, n, "%s", spec);
    y[0] = '\0';
    char *comma = strrchr(x, ',');
    if (comma && access(spec, F_OK) != 0) {
        *comma = '\0';
        snprintf(y, n, "%s", comma + 1);
    }
}

nb_read_opts data_cli_read_opts(nb_task t, int64_t classes) {
    nb_read_opts o = nb_read_defaults();
    o.task = t;
    o.classes = classes;
    o.target_col = target_col;
    o.skip_rows = skip_rows;
    return o;
}

/* The extension of a text table (after an optional .gz): the delimiter it implies, else 0. */
static char text_kind(const char *base) {
    if (ends_with(base, ".tsv") || ends_with(base, ".tab")) return '\t';
    if (ends_with(base, ".csv") || ends_with(base, ".txt") || ends_with(base, ".data") || ends_with(base, ".dat")) return ',';
    return 0;
}

/* f.csv.gz -> f.csv: the format of a gzip'd file is that of the name inside. */
static const char *stem_of(const char *x, char *buf, size_t n) {
    if (!ends_with(x, ".gz")) return x;
    snprintf(buf, n, "%.*s", (int)(strlen(x) - 3), x);
    return buf;
}

bool data_cli_is_table(const char *spec) {
    char x[4096], y[4096], stem[4096];
    split_pair(spec, x, y, sizeof x);
    const char *base = stem_of(x, stem, sizeof stem);
    return text_kind(base) || ends_with(base, ".npy");
}

nb_dataset *data_cli_read(const char *spec, const nb_read_opts *opts) {
    char x[4096], y[4096], stem[4096];
    split_pair(spec, x, y, sizeof x);
    nb_read_opts o = *opts;
    const char *base = stem_of(x, stem, sizeof stem);
    int d = delim_of(delimiter);
    if (ends_with(base, ".npy")) {
        if (base != x) {
            fprintf(stderr, "%s: %s: .npy files are read uncompressed (gunzip it first)\n", cli_prog, x);
            return NULL;
        }
        nb_dataset *ds = nb_dataset_npy(x, y[0] ? y : NULL, &o);
        if (!ds) fprintf(stderr, "%s: data: %s\n", cli_prog, nb_last_error());
        return ds;
    }
    if (text_kind(base)) o.delimiter = d ? (char)d : text_kind(base);
    else {
        fprintf(stderr, "%s: cannot tell the format of %s: use .csv, .csv.gz, .tsv, .txt or .npy (IDX folders: "
                "--data DIR)\n", cli_prog, x);
        return NULL;
    }
    nb_dataset *ds = nb_dataset_csv(x, y[0] ? y : NULL, &o);
    if (!ds) fprintf(stderr, "%s: data: %s\n", cli_prog, nb_last_error());
    return ds;
}

/* ---- the parts ---------------------------------------------------------------------------------- */
static nb_dataset *own(data_run *d, nb_dataset *ds) {
    if (ds) d->own[d->nown++] = ds;
    return ds;
}

/* Labels must be class indices: say so before training rather than mid-epoch. */
static int check_labels(const nb_mnist *m, const char *split, int64_t classes) {
    const nb_tensor *y = m->labels;
    for (int64_t i = 0; i < y->numel; i++)
        if (nb_u8(y)[i] >= classes) {
            fprintf(stderr, "%s: data: %s label %d at sample %lld is not a class index 0..%lld\n", cli_prog, split,
                    nb_u8(y)[i], (long long)i, (long long)classes - 1);
            return -1;
        }
    return 0;
}

/* IDX: the split pair prefix ("train", "t10k") of --data as a dataset (classes 0: from it). */
static nb_dataset *idx_source(data_run *d, const char *prefix, int64_t classes) {
    nb_mnist *m = &d->mnist[prefix[0] == 't' && prefix[1] == '1'];
    const char *dir = data_dir ? data_dir : nb_default_data_dir();
    if (nb_mnist_load(dir, prefix, m)) {
        fprintf(stderr, "%s: data: %s\n", cli_prog, nb_last_error());
        return NULL;
    }
    if (classes && check_labels(m, prefix[0] == 't' && prefix[1] == '1' ? "test" : "train", classes)) return NULL;
    nb_dataset *ds = own(d, nb_dataset_images(m->images, m->labels, classes));
    if (!ds) fprintf(stderr, "%s: data: %s\n", cli_prog, nb_last_error());
    return ds;
}

/* random_split(ds, [1 - f, f], gen): *keep and *held (both owned by d). */
static int split(data_run *d, nb_dataset *ds, double f, nb_rng *gen, nb_dataset **keep, nb_dataset **held,
                 const char *what) {
    int64_t len[2];
    nb_dataset *parts[2];
    if (nb_split_lengths(ds->len, (double[]){1 - f, f}, 2, len) || nb_random_split(ds, len, 2, gen, parts)) {
        fprintf(stderr, "%s: %s: %s\n", cli_prog, what, nb_last_error());
        return -1;
    }
    *keep = own(d, parts[0]);
    *held = own(d, parts[1]);
    if (len[0] == 0 || len[1] == 0) {
        fprintf(stderr, "%s: %s %g of %lld samples leaves %s part empty\n", cli_prog, what, f, (long long)ds->len,
                len[1] ? "the other" : "the held-out");
        return -1;
    }
    return 0;
}

static bool same_sample(const nb_dataset *a, const nb_dataset *b) {
    return a->ndim == b->ndim && !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) &&
           a->task == b->task && (a->task != NB_REGRESS || a->targets == b->targets);
}

int data_cli_load(data_run *d, bool eval, long seed, long limit, const data_info *stored) {
    memset(d, 0, sizeof *d);
    nb_task t = task_of(task);
    int64_t classes = stored && stored->known && t == NB_CLASSIFY ? stored->outputs : 0;
    nb_rng gen; /* random_split's generator: torch.Generator().manual_seed(seed) */
    nb_rng_seed(&gen, (uint64_t)seed);
    nb_dataset *src = NULL, *test_file = NULL;
    nb_read_opts o = data_cli_read_opts(t, classes);
    char a[96], b[96];
    if (eval && stored && stored->file && !train_path && !test_path) {
        fprintf(stderr, "%s: the model was trained on a file: give the data to evaluate with --test FILE (or --train "
                "FILE, for the run's --test-split part)\n", cli_prog);
        return -1;
    }
    if (!train_path && !test_path) { /* an IDX folder: its train and t10k pairs */
        if (!eval && !(src = idx_source(d, "train", 0))) return -1;
        if (!(test_file = idx_source(d, "t10k", src ? src->classes : classes ? classes : 10))) return -1;
        if (src && !same_sample(src, test_file)) { /* the model is built for the training images */
            fprintf(stderr, "%s: data: the test images are %lldx%lld, the training images %lldx%lld: the two splits "
                    "must have one image size\n", cli_prog, (long long)test_file->shape[0], (long long)test_file->shape[1],
                    (long long)src->shape[0], (long long)src->shape[1]);
            return -1;
        }
    } else {
        if (train_path && (!eval || !test_path)) { /* eval reads --train only to take the test part out of it */
            if (!(src = own(d, data_cli_read(train_path, &o)))) return -1;
            o.classes = t == NB_CLASSIFY ? src->classes : 0;
        }
        if (test_path && !(test_file = own(d, data_cli_read(test_path, &o)))) return -1;
        if (src && test_file && !same_sample(src, test_file)) {
            fprintf(stderr, "%s: %s has samples of shape %s, %s of shape %s (samples and targets must agree)\n",
                    cli_prog, test_path, cli_shape_text(test_file->ndim, test_file->shape, a, sizeof a), train_path,
                    cli_shape_text(src->ndim, src->shape, b, sizeof b));
            return -1;
        }
    }
    nb_dataset *rest = src;
    d->test = test_file;
    if (src && test_split > 0 && split(d, src, test_split, &gen, &rest, &d->test, "--test-split")) return -1;
    if (!eval) {
        d->train = rest;
        if (val_split > 0 && split(d, rest, val_split, &gen, &d->train, &d->val, "--val-split")) return -1;
        if (limit && limit < d->train->len) { /* the first samples of the training part */
            int64_t *first = malloc(sizeof(int64_t) * (size_t)limit);
            for (long i = 0; first && i < limit; i++) first[i] = i;
            d->train = own(d, first ? nb_dataset_subset(d->train, first, limit) : NULL);
            free(first);
            if (!d->train) {
                fprintf(stderr, "%s: --limit: %s\n", cli_prog, nb_last_error());
                return -1;
            }
        }
    }
    if (eval && !d->test) {
        fprintf(stderr, "%s: nothing to evaluate: give --test FILE (%s held out no test part)\n", cli_prog,
                train_path ? "--train without --test-split" : "the data");
        return -1;
    }
    d->source[0] = src; /* what normalisation applies to: the parts view these */
    d->source[1] = test_file;
    const nb_dataset *any = d->train ? d->train : d->test;
    d->task = any->task;
    d->outputs = any->task == NB_CLASSIFY ? any->classes : any->targets;
    d->ndim = any->ndim;
    memcpy(d->shape, any->shape, sizeof(int64_t) * (size_t)any->ndim);
    if (stored && stored->known &&
        (stored->ndim != d->ndim || memcmp(stored->shape, d->shape, sizeof(int64_t) * (size_t)d->ndim))) {
        fprintf(stderr, "%s: the model takes samples of shape %s; these data have samples of shape %s\n", cli_prog,
                cli_shape_text(stored->ndim, stored->shape, a, sizeof a), cli_shape_text(d->ndim, d->shape, b, sizeof b));
        return -1;
    }
    if (stored && stored->known && stored->task == d->task && stored->outputs != d->outputs) {
        fprintf(stderr, "%s: the model gives %lld outputs; these data have %lld %s\n", cli_prog,
                (long long)stored->outputs, (long long)d->outputs, d->task == NB_REGRESS ? "targets" : "classes");
        return -1;
    }
    if (stored && stored->known && stored->task != d->task) {
        fprintf(stderr, "%s: the model was trained for %s, not %s (--task)\n", cli_prog,
                stored->task == NB_REGRESS ? "regression" : "classification", task);
        return -1;
    }
    if (!(d->normalize = normalize)) return 0;
    int64_t F = any->features;
    if (!(d->mean = nb_zeros(NULL, 1, &F)) || !(d->std = nb_ones(NULL, 1, &F))) return -1;
    if (!eval && nb_dataset_fit_standardize(d->train, nb_f32(d->mean), nb_f32(d->std))) { /* the training part only */
        fprintf(stderr, "%s: --normalize: %s\n", cli_prog, nb_last_error());
        return -1;
    }
    d->norm[0] = (nb_named_tensor){"mean", d->mean};
    d->norm[1] = (nb_named_tensor){"std", d->std};
    d->part = (nb_ckpt_part){"normalize", d->norm, 2};
    return 0;
}

int data_cli_apply_norm(data_run *d) {
    for (int i = 0; d->normalize && i < 2; i++)
        if (d->source[i] && nb_dataset_normalize(d->source[i], nb_f32(d->mean), nb_f32(d->std))) {
            fprintf(stderr, "%s: --normalize: %s\n", cli_prog, nb_last_error());
            return -1;
        }
    return 0;
}

int data_cli_norm_from(data_run *d, const nb_ckpt *c) {
    if (!d->normalize) return 0;
    for (int i = 0; i < 2; i++) {
        nb_ckpt_tensor t;
        char name[32];
        snprintf(name, sizeof name, "normalize.%s", d->norm[i].name);
        if (nb_ckpt_find(c, name, &t) || strcmp(t.dtype, "F32") || t.ndim != 1 || t.shape[0] != d->norm[i].tensor->numel) {
            fprintf(stderr, "%s: the checkpoint has no normalisation statistics %s for %lld features\n", cli_prog, name,
                    (long long)d->norm[i].tensor->numel);
            return -1;
        }
        memcpy(d->norm[i].tensor->data, t.data, t.nbytes); /* (little-endian hosts, as the rest of the CLI) */
    }
    return data_cli_apply_norm(d);
}

void data_cli_free(data_run *d) {
    for (int i = d->nown - 1; i >= 0; i--) nb_dataset_free(d->own[i]); /* views before what they view */
    nb_mnist_free(&d->mnist[0]);
    nb_mnist_free(&d->mnist[1]);
    nb_tensor_free(d->mean);
    nb_tensor_free(d->std);
    memset(d, 0, sizeof *d);
}

/* ---- what a checkpoint records: "user.cli.data" --------------------------------------------------- */
char *data_cli_json(const data_run *d, long seed) {
    cJSON *j = cJSON_CreateObject(), *shape = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "task", d->task == NB_REGRESS ? "regress" : "classify");
    for (int i = 0; i < d->ndim; i++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)d->shape[i]));
    cJSON_AddItemToObject(j, "shape", shape);
    cJSON_AddNumberToObject(j, "outputs", (double)d->outputs);
    cJSON_AddNumberToObject(j, "target_col", (double)target_col);
    cJSON_AddNumberToObject(j, "skip_rows", (double)skip_rows);
    if (delimiter) cJSON_AddStringToObject(j, "delimiter", delimiter);
    cJSON_AddNumberToObject(j, "test_split", test_split);
    cJSON_AddNumberToObject(j, "seed", (double)seed);
    cJSON_AddBoolToObject(j, "normalize", d->normalize);
    cJSON_AddStringToObject(j, "source", train_path ? "file" : "idx");
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return txt;
}

/* Reads "user.cli.data" of c (if any) into info, and makes its reader settings the defaults of
 * the data flags (the command line still overrides them). */
int data_cli_stored(const nb_ckpt *c, data_info *info) {
    memset(info, 0, sizeof *info);
    const char *txt = nb_ckpt_meta(c, "user.cli.data");
    if (!txt) return 0;
    cJSON *j = cJSON_Parse(txt);
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(j, "task"), *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "outputs"), *e;
    int rc = -1;
    if (!cJSON_IsString(tk) || !cJSON_IsArray(sh) || cJSON_GetArraySize(sh) < 1 ||
        cJSON_GetArraySize(sh) > NB_MAX_DIMS - 1 || !cJSON_IsNumber(out) || !(out->valuedouble >= 1) ||
        out->valuedouble > (1 << 20))
        goto done;
    cJSON_ArrayForEach(e, sh) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 1e9) goto done;
        info->shape[info->ndim++] = (int64_t)e->valuedouble;
    }
    info->task = task_of(tk->valuestring);
    info->outputs = (int64_t)out->valuedouble;
    static char stored_task[16], stored_delim[16];
    snprintf(stored_task, sizeof stored_task, "%s", info->task == NB_REGRESS ? "regress" : "classify");
    task = stored_task;
    const cJSON *v;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "target_col"))) target_col = (long)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "skip_rows"))) skip_rows = (long)v->valuedouble;
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(j, "delimiter"))) {
        snprintf(stored_delim, sizeof stored_delim, "%s", v->valuestring);
        delimiter = stored_delim;
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "test_split"))) test_split = v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "seed"))) info->seed = (long)v->valuedouble;
    info->normalize = normalize = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "normalize"));
    info->file = cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(j, "source")) && !strcmp(v->valuestring, "file");
    info->known = true;
    rc = 0;
done:
    if (rc) fprintf(stderr, "%s: the checkpoint's \"cli.data\" entry is malformed\n", cli_prog);
    cJSON_Delete(j);
    return rc;
}
