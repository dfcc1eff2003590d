/* ckpt_cli.c - checkpoints on the command line:
 *   nabla train ... --save F [--save-every N] [--stop-after K]   save at epoch ends
 *   nabla train ... --resume F                                    continue up to --epochs
 *   nabla ckpt inspect [--full] F...                              what a checkpoint holds
 * With --swa-start/--ema the averaged weights and SWALR are saved and restored too.
 *
 * A checkpoint written by `nabla train` also records the flags that shaped the run as user
 * metadata "cli.args" (and the model's alone as "cli.model"); --resume applies them before the
 * command line's own flags, and `nabla eval` rebuilds the model from them. A checkpoint may come
 * from someone else: it is data, never a command line. Only the flags that describe the model
 * and the training run are taken from it (see restorable()), each parsed and checked exactly as
 * if the user had typed it; paths (--data, --train, --test, --save, --save-best, --metrics), the
 * run's length and resources (--epochs, --threads, --stop-after, --save-every) and unknown flags
 * never are, and the resume message lists what came from the file and what was left out.
 * "cli.data" says what the model's input and output are and how the data were read (data_cli.c);
 * "cli.early_stop" holds the best validation loss so far, and the part "normalize" the
 * normalisation statistics. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *save_path, *resume_path;
static long save_every, stop_after;

void ckpt_cli_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"save", ARG_STRING, &save_path, "save a checkpoint here at the end (and every --save-every epochs)", NULL});
    cli_add(f, (arg_spec){"save-every", ARG_INT, &save_every, "also save after every N epochs (0: only at the end)", NULL});
    cli_add(f, (arg_spec){"resume", ARG_STRING, &resume_path, "continue the run saved in this checkpoint, up to --epochs", NULL});
    cli_add(f, (arg_spec){"stop-after", ARG_INT, &stop_after, "end the run after epoch K, as if interrupted (schedules still see --epochs)", NULL});
}

/* Flags that steer this invocation only, never restored from a checkpoint. */
static bool run_only(const char *name) {
    static const char *const names[] = {"epochs", "threads", "metrics", "help", "save",
                                        "save-every", "resume", "stop-after", "save-best"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

/* The current values of specs as a JSON array of strings: ["--hidden=128", ...]. With set,
 * only the flags the user gave (so a resumed run replays its user's words, and a flag renamed
 * or added later cannot break it); without, every flag (the model's, to rebuild it exactly). */
static char *flags_json(const arg_spec *specs, int n, const bool *set) {
    cJSON *a = cJSON_CreateArray();
    char buf[64];
    for (int k = 0; a && k < n; k++) {
        const arg_spec *s = &specs[k];
        if (set && (!set[k] || run_only(s->name))) continue;
        const char *v = args_value(s, buf, sizeof buf);
        if (!v) continue; /* an unset string, or NaN: "the algorithm's default" */
        char *arg = malloc(strlen(s->name) + strlen(v) + 4);
        if (!arg) continue;
        sprintf(arg, "--%s=%s", s->name, v); /* one word: flags take no separate value */
        cJSON_AddItemToArray(a, cJSON_CreateString(arg));
        free(arg);
    }
    char *txt = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return txt;
}

/* The flags a checkpoint may set: the model's, the optimizer's, the schedule's and the
 * averaging's (each builder's whole table: they describe the model and the training state),
 * how the data are read and split (data_cli_restorable: not the files), and --batch, --seed,
 * --limit (the batches the loader state counts) and --early-stop. Nothing else: not a path,
 * not the run's length or threads, not a flag this version does not know. */
static bool restorable(const char *name, size_t len) {
    static cli_flags allowed;
    if (!allowed.n) {
        model_cli_flags(&allowed);
        optim_cli_flags(&allowed);
        sched_cli_flags(&allowed);
        swa_cli_flags(&allowed);
    }
    if (data_cli_restorable(name, len)) return true;
    static const char *const run[] = {"batch", "seed", "limit", "early-stop"};
    for (size_t i = 0; i < sizeof run / sizeof run[0]; i++)
        if (strlen(run[i]) == len && !strncmp(run[i], name, len)) return true;
    for (int k = 0; k < allowed.n; k++)
        if (strlen(allowed.specs[k].name) == len && !strncmp(allowed.specs[k].name, name, len)) return true;
    return false;
}

/* "--name" or "--name=value" for this flag in argv[2..argc). */
static bool on_command_line(int argc, char **argv, const char *name, size_t len) {
    for (int i = 2; i < argc; i++)
        if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, len) &&
            (argv[i][2 + len] == '\0' || argv[i][2 + len] == '='))
            return true;
    return false;
}

/* What the last stored list gave (for the resume message): the flags taken, those left out. */
enum { LIST = 4096 };
static char taken[LIST], left_out[LIST];

static void append(char *buf, const char *word) {
    size_t n = strlen(buf);
    snprintf(buf + n, LIST - n, "%s%s", n ? " " : "", word);
}

/* Apply a stored flag list ("--name=value" words) to specs: each restorable word not overridden
 * on the command line (argv; NULL: none) is parsed as if typed. Strings are copied into a pool
 * that lives as long as the process (ARG_STRING flags keep pointers to them). */
static int apply_stored(const char *json, const arg_spec *specs, int n, bool *set, const char *what,
                        int argc, char **argv) {
    static char pool[16384];
    static size_t used;
    cJSON *a = cJSON_Parse(json);
    char *words[256];
    int nw = 0, rc = cJSON_IsArray(a) ? 0 : -1;
    const cJSON *e;
    taken[0] = left_out[0] = '\0';
    cJSON_ArrayForEach(e, a) {
        const char *w = cJSON_IsString(e) ? e->valuestring : NULL, *eq = w ? strchr(w, '=') : NULL;
        if (!w || strncmp(w, "--", 2) || !eq) { /* a stored flag is always one "--name=value" word */
            rc = -1;
            break;
        }
        size_t len = (size_t)(eq - w - 2), wl = strlen(w) + 1;
        bool known = false;
        for (int k = 0; k < n && !known; k++) known = strlen(specs[k].name) == len && !strncmp(specs[k].name, w + 2, len);
        if (!known || !restorable(w + 2, len)) {
            append(left_out, w);
            continue;
        }
        if (argv && on_command_line(argc, argv, w + 2, len)) continue; /* the user's word wins */
        if (nw == 256 || used + wl > sizeof pool) {
            rc = -1;
            break;
        }
        words[nw++] = memcpy(pool + used, w, wl);
        used += wl;
        append(taken, w);
    }
    char err[256];
    if (!rc && args_parse_marking(nw, words, 0, specs, n, set, err, sizeof err)) {
        fprintf(stderr, "%s: %s: a flag stored in the checkpoint is invalid: %s\n", cli_prog, what, err);
        rc = -1;
    } else if (rc) {
        fprintf(stderr, "%s: %s: the flags stored in the checkpoint are malformed (expected a JSON list "
                "of \"--name=value\" words)\n", cli_prog, what);
    }
    cJSON_Delete(a);
    return rc;
}

static struct {
    char *path;
    nb_ckpt *c;
} opened;

void ckpt_cli_release(void) {
    nb_ckpt_close(opened.c);
    free(opened.path);
    opened.c = NULL;
    opened.path = NULL;
}

nb_ckpt *ckpt_cli_open(const char *path) {
    if (opened.c && !strcmp(opened.path, path)) return opened.c;
    ckpt_cli_release();
    nb_ckpt *c = dist_cli_on() ? dist_cli_ckpt_open(path) : nb_ckpt_open(path);
    char *p = c ? strdup(path) : NULL;
    if (!p) {
        nb_ckpt_close(c);
        return NULL;
    }
    opened.c = c;
    opened.path = p;
    return c;
}

/* The "averaged" metadata of a checkpoint, described ("SWA average of 3 updates", "EMA (decay
 * 0.999) of 40 updates"): 1 if there is one, 0 if not, -1 if the file does not open. */
int ckpt_cli_averaged(const char *path, char *desc, size_t n, long long *count) {
    nb_ckpt *c = ckpt_cli_open(path);
    if (!c) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        return -1;
    }
    const char *txt = nb_ckpt_meta(c, "averaged");
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    const cJSON *decay = cJSON_GetObjectItemCaseSensitive(j, "decay");
    const cJSON *na = cJSON_GetObjectItemCaseSensitive(j, "n_averaged");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "names");
    *count = cJSON_IsNumber(na) ? (long long)na->valuedouble : 0;
    char dec[48] = "";
    char *ds = cJSON_IsNumber(decay) ? cJSON_PrintUnformatted(decay) : NULL; /* shortest exact */
    if (ds) snprintf(dec, sizeof dec, " (decay %s)", ds);
    cJSON_free(ds);
    snprintf(desc, n, "%s%s average of %lld update(s) over %d tensor(s)",
             cJSON_IsString(kind) ? kind->valuestring : "?", dec, *count, cJSON_GetArraySize(names));
    cJSON_Delete(j);
    return txt ? 1 : 0;
}

int ckpt_cli_model_defaults(const char *path) {
    nb_ckpt *c = ckpt_cli_open(path);
    if (!c) {
        fprintf(stderr, "nabla: %s\n", nb_last_error());
        return -1;
    }
    const char *stored = nb_ckpt_meta(c, "user.cli.model");
    cli_flags mf = {.n = 0};
    model_cli_flags(&mf);
    return stored ? apply_stored(stored, mf.specs, mf.n, NULL, path, 0, NULL) : 0;
}

void ckpt_cli_note_stored(void) {
    if (taken[0]) fprintf(stderr, "%s: (flags taken from the checkpoint: %s)\n", cli_prog, taken);
}

int ckpt_cli_preparse(int argc, char **argv, cli_flags *f) {
    const char *path = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--resume") && i + 1 < argc) path = argv[i + 1];
        else if (!strncmp(argv[i], "--resume=", 9)) path = argv[i] + 9;
    }
    if (!path) return 0;
    nb_ckpt *c = ckpt_cli_open(path);
    if (!c) {
        fprintf(stderr, "nabla train: --resume: %s\n", nb_last_error());
        return -1;
    }
    const char *stored = nb_ckpt_meta(c, "user.cli.args");
    return stored ? apply_stored(stored, f->specs, f->n, f->set, path, argc, argv) : 0;
}

int ckpt_cli_check(void) {
    if (save_every < 0 || stop_after < 0) {
        fprintf(stderr, "nabla train: --save-every and --stop-after must be >= 0\n");
        return 2;
    }
    if (save_every && !save_path) {
        fprintf(stderr, "nabla train: --save-every needs --save FILE\n");
        return 2;
    }
    return 0;
}

static nb_train_state state_of(const ckpt_cli_run *r, long epoch) {
    return (nb_train_state){.model = r->model, .optim = r->opt, .sched = r->sched, .rng = r->rng,
                            .loader = r->ld, .epoch = epoch,
                            .step = epoch * nb_loader_num_batches(r->ld), .averaged = r->avg,
                            .swa_sched = r->swalr, .parts = r->parts, .nparts = r->nparts};
}

/* "user.cli.early_stop": {"best": 0.1234, "best_epoch": 3, "bad": 1} */
static char *early_json(const early_stop *es) {
    cJSON *j = cJSON_CreateObject();
    if (isfinite(es->best)) cJSON_AddNumberToObject(j, "best", es->best);
    cJSON_AddNumberToObject(j, "best_epoch", (double)es->best_epoch);
    cJSON_AddNumberToObject(j, "bad", (double)es->bad);
    char *txt = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return txt;
}

static void early_from(const nb_ckpt *c, early_stop *es) {
    cJSON *j = cJSON_Parse(nb_ckpt_meta(c, "user.cli.early_stop") ? nb_ckpt_meta(c, "user.cli.early_stop") : "");
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(j, "best");
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(j, "best_epoch"), *bad = cJSON_GetObjectItemCaseSensitive(j, "bad");
    if (cJSON_IsNumber(best)) es->best = best->valuedouble;
    if (cJSON_IsNumber(be) && be->valuedouble >= 0) es->best_epoch = (long)be->valuedouble;
    if (cJSON_IsNumber(bad) && bad->valuedouble >= 0) es->bad = (long)bad->valuedouble;
    cJSON_Delete(j);
}

int ckpt_cli_resume(const ckpt_cli_run *r, long *first_epoch) {
    *first_epoch = 1;
    if (!resume_path) return 0;
    nb_train_state st = state_of(r, 0);
    nb_ckpt *c = ckpt_cli_open(resume_path); /* read by ckpt_cli_preparse already */
    int rc = c ? nb_ckpt_apply(c, &st) : -1;
    if (!rc && r->es) early_from(c, r->es);
    ckpt_cli_release();
    if (rc) {
        fprintf(stderr, "nabla train: --resume %s: %s\n", resume_path, nb_last_error());
        return -1;
    }
    *first_epoch = (long)st.epoch + 1;
    printf("resumed from %s at the end of epoch %lld (lr %g)\n", resume_path, (long long)st.epoch,
           nb_optim_get(r->opt, 0, "lr"));
    printf("  flags from the checkpoint: %s\n", taken[0] ? taken : "none");
    if (left_out[0])
        printf("  not taken from the checkpoint (paths, the run's length and threads, unknown flags: "
               "give them on the command line): %s\n", left_out);
    return 0;
}

int ckpt_cli_save(const ckpt_cli_run *r, const cli_flags *f, const char *path, long epoch) {
    if (dist_cli_rank() != 0) return 0; /* under mpirun, rank 0 alone writes */
    cli_flags mf = {.n = 0};
    model_cli_flags(&mf);
    char *all = flags_json(f->specs, f->n, f->set), *model = flags_json(mf.specs, mf.n, NULL);
    char *early = r->es && r->es->best_epoch ? early_json(r->es) : NULL; /* runs with a validation part */
    nb_meta meta[5] = {{"cli.args", all ? all : "[]"}, {"cli.model", model ? model : "[]"},
                       {"cli.model_description", model_cli_describe()}};
    int nmeta = 3;
    if (r->data_json) meta[nmeta++] = (nb_meta){"cli.data", r->data_json};
    if (early) meta[nmeta++] = (nb_meta){"cli.early_stop", early};
    nb_train_state st = state_of(r, epoch);
    st.meta = meta;
    st.nmeta = nmeta;
    int rc = nb_checkpoint_save(path, &st);
    cJSON_free(all);
    cJSON_free(model);
    cJSON_free(early);
    if (rc) {
        fprintf(stderr, "nabla train: %s: %s\n", path == save_path ? "--save" : "--save-best", nb_last_error());
        return -1;
    }
    printf("saved %s (epoch %ld)\n", path, epoch);
    fflush(stdout);
    return 0;
}

int ckpt_cli_end_epoch(const ckpt_cli_run *r, const cli_flags *f, long epoch, long epochs, bool *stop) {
    *stop = stop_after && epoch >= stop_after;
    bool last = epoch == epochs || *stop;
    if (!save_path || !(last || (save_every && epoch % save_every == 0))) return 0;
    return ckpt_cli_save(r, f, save_path, epoch);
}

/* ---- nabla ckpt inspect ------------------------------------------------------------------ */
/* Element i of a tensor as a double, for the statistics (NAN for dtypes without one). */
static double elem(const nb_ckpt_tensor *t, size_t i) {
    const unsigned char *p = t->data;
    const char *d = t->dtype;
    if (!strcmp(d, "F32")) { float v; memcpy(&v, p + 4 * i, 4); return v; }
    if (!strcmp(d, "F64")) { double v; memcpy(&v, p + 8 * i, 8); return v; }
    if (!strcmp(d, "I32")) { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    if (!strcmp(d, "I64")) { int64_t v; memcpy(&v, p + 8 * i, 8); return (double)v; }
    if (!strcmp(d, "U8") || !strcmp(d, "BOOL")) return p[i];
    if (!strcmp(d, "I8")) return (int8_t)p[i];
    return NAN;
}

static void print_optimizer(const char *txt) {
    cJSON *j = cJSON_Parse(txt);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(j, "param_groups");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
    if (!cJSON_IsString(type) || !cJSON_IsArray(groups)) {
        printf("optimizer: (malformed) %s\n", txt);
        cJSON_Delete(j);
        return;
    }
    printf("optimizer: %s, %d param group(s), state for %d parameter(s)\n", type->valuestring,
           cJSON_GetArraySize(groups), cJSON_GetArraySize(state));
    int g = 0;
    const cJSON *gj, *v;
    cJSON_ArrayForEach(gj, groups) {
        printf("  group %d:", g++);
        cJSON_ArrayForEach(v, gj) {
            char *s = cJSON_PrintUnformatted(v);
            printf(" %s=%s", v->string, s ? s : "?");
            cJSON_free(s);
        }
        printf("\n");
    }
    if (state && state->child) {
        printf("  state entries:");
        cJSON_ArrayForEach(v, state->child) printf(" %s", v->string);
        printf("\n");
    }
    cJSON_Delete(j);
}

/* Long strings in a JSON value (the RNG states: 4,992 hex digits each) shortened to their first
 * 16 characters and their length, so they do not bury the rest. */
static void shorten_strings(cJSON *j) {
    cJSON *v;
    cJSON_ArrayForEach(v, j) {
        size_t len = cJSON_IsString(v) ? strlen(v->valuestring) : 0;
        if (len > 64) {
            char s[96];
            snprintf(s, sizeof s, "%.16s... (%zu characters; --full shows them)", v->valuestring, len);
            cJSON_SetValuestring(v, s);
        }
        shorten_strings(v);
    }
}

static int inspect(const char *path, bool full) {
    nb_ckpt *c = nb_ckpt_open(path);
    if (!c) {
        fprintf(stderr, "nabla ckpt: %s\n", nb_last_error());
        return 1;
    }
    const char *fmt = nb_ckpt_meta(c, "format"), *ver = nb_ckpt_meta(c, "format_version");
    const char *content = nb_ckpt_meta(c, "content"), *by = nb_ckpt_meta(c, "nabla_version");
    if (fmt) printf("%s: %s version %s, %s, written by nabla %s\n", path, fmt, ver ? ver : "?",
                    content ? content : "?", by ? by : "?");
    else printf("%s: plain safetensors file (no nabla metadata)\n", path);
    const char *model = nb_ckpt_meta(c, "model");
    cJSON *mj = model ? cJSON_Parse(model) : NULL;
    const cJSON *repr = cJSON_GetObjectItemCaseSensitive(mj, "repr");
    const char *desc = nb_ckpt_meta(c, "user.cli.model_description");
    if (cJSON_IsString(repr)) printf("model%s%s:\n%s\n", desc ? " " : "", desc ? desc : "", repr->valuestring);
    cJSON_Delete(mj);
    const char *pos = nb_ckpt_meta(c, "position");
    if (pos) printf("position: %s\n", pos);
    const char *opt = nb_ckpt_meta(c, "optimizer");
    if (opt) print_optimizer(opt);
    if (nb_ckpt_meta(c, "averaged")) {
        char desc[256];
        long long count;
        ckpt_cli_averaged(path, desc, sizeof desc, &count);
        printf("averaged: %s, tensors \"swa.<name>\"%s\n", desc,
               count ? "" : " (no update yet: they hold the weights the averaging started from)");
    }
    const char *keys[] = {"scheduler", "swa_scheduler", "rng", "loader", "parts"};
    for (int i = 0; i < 5; i++) {
        const char *v = nb_ckpt_meta(c, keys[i]);
        if (v) {
            cJSON *j = cJSON_Parse(v);
            if (!full) shorten_strings(j);
            char *s = j ? cJSON_PrintUnformatted(j) : NULL;
            printf("%s: %s\n", keys[i], s ? s : v);
            cJSON_free(s);
            cJSON_Delete(j);
        }
    }
    for (int i = 0; i < nb_ckpt_num_meta(c); i++) {
        const char *k, *v;
        nb_ckpt_meta_at(c, i, &k, &v);
        if (!strncmp(k, "user.", 5)) printf("metadata %s: %s\n", k + 5, v);
    }
    int n = nb_ckpt_num_tensors(c);
    printf("tensors: %d, %llu bytes\n", n, (unsigned long long)nb_ckpt_data_bytes(c));
    printf("  %-36s %-5s %-14s %12s %12s %12s %12s\n", "name", "dtype", "shape", "min", "max", "mean", "std");
    for (int i = 0; i < n; i++) {
        nb_ckpt_tensor t;
        if (nb_ckpt_tensor_at(c, i, &t)) { /* the data is read here: a cut or corrupt file */
            fprintf(stderr, "nabla ckpt: %s\n", nb_last_error());
            nb_ckpt_close(c);
            return 1;
        }
        char shape[96];
        size_t at = 0;
        shape[at++] = '[';
        for (int d = 0; d < t.ndim && at < sizeof shape - 24; d++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%lld", d ? "," : "", (long long)t.shape[d]);
        snprintf(shape + at, sizeof shape - at, "]");
        size_t numel = 1;
        for (int d = 0; d < t.ndim; d++) numel *= (size_t)t.shape[d];
        double lo = INFINITY, hi = -INFINITY, sum = 0, sum2 = 0;
        for (size_t k = 0; k < numel; k++) {
            double v = elem(&t, k);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
            sum2 += v * v;
        }
        double mean = numel ? sum / (double)numel : NAN;
        double sd = numel ? sqrt(fmax(sum2 / (double)numel - mean * mean, 0)) : NAN;
        if (!numel) lo = hi = NAN;
        printf("  %-36s %-5s %-14s %12.5g %12.5g %12.5g %12.5g\n", t.name, t.dtype, shape, lo, hi, mean, sd);
    }
    nb_ckpt_close(c);
    return 0;
}

static int ckpt_usage(int rc) {
    printf("usage: nabla ckpt inspect [--full] FILE...\n"
           "  what each checkpoint holds: tensors (name, dtype, shape, statistics), metadata,\n"
           "  optimizer, scheduler, RNG and loader position\n"
           "  --full                 print the RNG states in full (4,992 hex digits each)\n"
           "  --help                 this help\n");
    return rc;
}

int cmd_ckpt(int argc, char **argv) {
    bool is_help = argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"));
    if (argc < 3 || strcmp(argv[2], "inspect")) return ckpt_usage(is_help ? 0 : 2);
    bool full = false;
    int files = 0;
    for (int i = 3; i < argc; i++) { /* options anywhere; a file named -x is ./-x */
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return ckpt_usage(0);
        if (!strcmp(argv[i], "--full")) full = true;
        else if (argv[i][0] != '-') files++;
        else {
            fprintf(stderr, "nabla ckpt: unknown option '%s' (see nabla ckpt inspect --help)\n", argv[i]);
            return 2;
        }
    }
    if (!files) return ckpt_usage(2);
    int rc = 0;
    for (int i = 3; i < argc; i++)
        if (argv[i][0] != '-') rc |= inspect(argv[i], full);
    return rc;
}
