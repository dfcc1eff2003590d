/* compare_cli.c - `nabla compare`: the same training run once per optimizer, side by side.
 *
 *   nabla compare --optim sgd,adam,rmsprop,adagrad [--lr 0.1,1e-3,1e-2,1e-2] [train flags] --out DIR
 *
 * Each arm is `nabla train [train flags] --optim NAME [--lr X] --metrics DIR/NAME.jsonl
 * --log-every N`, run in a child process one after the other, so it is exactly the plain run
 * (same code, a fresh process) and the arms do not share the CPU. The same --seed gives every
 * arm the same initial weights (the metrics headers' CRC-32s are compared) and the same batches
 * in the same order. Then DIR/curves.svg (against epochs), DIR/curves-steps.svg (against steps)
 * and DIR/summary.md: final and best test accuracy and loss, the mean epoch time, and the steps
 * each arm took to bring its training loss (the mean over --log-every batches) down to a target. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli.h"

#define MAX_ARMS 16

typedef struct arm {
    char name[32], lr[32], path[4096], label[96];
    metrics_file m;
} arm;

/* Flags of compare itself; everything else goes to each arm's nabla train. Returns how many
 * argv entries flag i uses (1 or 2), 0 if argv[i] is not one of them, -1 on a missing value. */
static int own_flag(int argc, char **argv, int i, const char *name, const char **value) {
    size_t len = strlen(name);
    if (strncmp(argv[i], "--", 2) || strncmp(argv[i] + 2, name, len)) return 0;
    const char *rest = argv[i] + 2 + len;
    if (*rest == '=') {
        *value = rest + 1;
        return 1;
    }
    if (*rest) return 0;
    if (i + 1 >= argc) return -1;
    *value = argv[i + 1];
    return 2;
}

/* Run nabla train with argv in a child; its exit code (or 1 if it died). */
static int run_arm(int argc, char **argv) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        cli_prog = "nabla train";
        int rc = cmd_train(argc, argv);
        ckpt_cli_release();
        exit(rc);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static const cJSON *last_row(const cJSON *rows) {
    const cJSON *r = rows->child;
    while (r && r->next) r = r->next;
    return r;
}

/* The epoch with the best value of key (largest if max, else smallest); 0 if none. */
static long best_epoch(const cJSON *epochs, const char *key, bool max, double *best) {
    long at = 0;
    *best = NAN;
    for (const cJSON *r = epochs->child; r; r = r->next) {
        double v = metrics_num(r, key);
        if (isfinite(v) && (isnan(*best) || (max ? v > *best : v < *best))) {
            *best = v;
            at = (long)metrics_num(r, "epoch");
        }
    }
    return at;
}

/* The first step at which the training loss, averaged over the last epoch's worth of steps
 * (the per-step lines of --log-every, each the mean of its window; without them the epoch
 * lines), was <= target; -1 if never. An average over an epoch is what the epoch lines'
 * train_loss is, so a target taken from them is met at the latest by the last step. */
static double steps_to(const metrics_file *m, double target) {
    const cJSON *first = m->steps->child;
    if (!first) {
        for (const cJSON *r = m->epochs->child; r; r = r->next)
            if (metrics_num(r, "train_loss") <= target) return metrics_num(r, "step");
        return -1;
    }
    double every = metrics_num(first, "step"), per_epoch = metrics_num(m->epochs->child, "step");
    int w = (int)fmax(1, floor(per_epoch / every)), n = cJSON_GetArraySize(m->steps);
    double *loss = malloc(sizeof(double) * (size_t)n), sum = 0;
    if (!loss) return -1;
    int i = 0;
    double at = -1;
    for (const cJSON *r = first; r && at < 0; r = r->next, i++) {
        loss[i] = metrics_num(r, "loss");
        sum += loss[i];
        if (i >= w) sum -= loss[i - w];
        if (i + 1 >= w && sum / w <= target) at = metrics_num(r, "step");
    }
    free(loss);
    return at;
}

static double mean_of(const cJSON *rows, const char *key) {
    double s = 0;
    int n = 0;
    for (const cJSON *r = rows->child; r; r = r->next) {
        double v = metrics_num(r, key);
        if (isfinite(v)) {
            s += v;
            n++;
        }
    }
    return n ? s / n : NAN;
}

static const char *crc_of(const metrics_file *m) {
    const cJSON *c = m->header ? cJSON_GetObjectItemCaseSensitive(m->header, "init_weights_crc32") : NULL;
    return cJSON_IsString(c) ? c->valuestring : "?";
}

/* "0.8412 (3)": a value and the epoch it was reached at. */
static void fmt_at(char *buf, size_t n, double v, long epoch) {
    if (isfinite(v)) snprintf(buf, n, "%.4f (%ld)", v, epoch);
    else snprintf(buf, n, "-");
}

static int write_summary(FILE *f, arm *arms, int na, int argc, char **argv, double target, bool target_given,
                         bool same_init) {
    bool val = false;
    for (int k = 0; k < na; k++)
        for (const cJSON *r = arms[k].m.epochs->child; r && !val; r = r->next) val = isfinite(metrics_num(r, "val_acc"));
    fprintf(f, "# nabla compare\n\n```\nnabla");
    for (int i = 1; i < argc; i++) fprintf(f, " %s", argv[i]);
    const cJSON *fl = arms[0].m.flags;
    const cJSON *seed = fl ? cJSON_GetObjectItemCaseSensitive(fl, "seed") : NULL;
    fprintf(f, "\n```\n\n%s (seed %g, CRC-32 of the initial weights %s); every arm saw the same batches in the "
               "same order. Training loss to reach: %.4g (%s).\n\n",
            same_init ? "Every arm started from the same initial weights" : "**The arms did not start from the same "
                                                                             "initial weights**",
            cJSON_IsNumber(seed) ? seed->valuedouble : 0.0, crc_of(&arms[0].m), target,
            target_given ? "--target-loss" : "the highest final training loss of the arms");
    fprintf(f, "Steps to a training loss: the first step at which the training loss, averaged over the last "
               "epoch's worth of steps, is at most the target.\n\n");
    fprintf(f, "| optimizer | lr | final test acc | best test acc (epoch) | final test loss | best test loss (epoch) |%s "
               "final train loss | epoch time | steps to train loss <= %.4g |\n",
            val ? " best val acc (epoch) |" : "", target);
    fprintf(f, "|---|---|---|---|---|---|%s---|---|---|\n", val ? "---|" : "");
    for (int k = 0; k < na; k++) {
        const cJSON *last = last_row(arms[k].m.epochs);
        double best_acc, best_loss, best_val;
        long ea = best_epoch(arms[k].m.epochs, "test_acc", true, &best_acc);
        long el = best_epoch(arms[k].m.epochs, "test_loss", false, &best_loss);
        long ev = best_epoch(arms[k].m.epochs, "val_acc", true, &best_val);
        char a[32], l[32], v[32], st[32];
        fmt_at(a, sizeof a, best_acc, ea);
        fmt_at(l, sizeof l, best_loss, el);
        fmt_at(v, sizeof v, best_val, ev);
        double steps = steps_to(&arms[k].m, target);
        if (steps >= 0) snprintf(st, sizeof st, "%.0f", steps);
        else snprintf(st, sizeof st, "not reached");
        fprintf(f, "| %s | %s | %.4f | %s | %.4f | %s |", arms[k].name, arms[k].lr, metrics_num(last, "test_acc"), a,
                metrics_num(last, "test_loss"), l);
        if (val) fprintf(f, " %s |", v);
        fprintf(f, " %.4f | %.3g s | %s |\n", metrics_num(last, "train_loss"),
                mean_of(arms[k].m.epochs, "seconds"), st);
    }
    fprintf(f, "\n![curves](curves.svg)\n\n![curves against steps](curves-steps.svg)\n");
    return ferror(f) ? -1 : 0;
}

int cmd_compare(int argc, char **argv) {
    const char *optims = NULL, *lrs = NULL, *out = NULL, *target_arg = NULL, *log_every = "10";
    char *pass[256];
    int np = 0;
    bool help = false;
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int used = 0;
        const char *own[] = {"optim", "lr", "out", "target-loss"};
        const char **dst[] = {&optims, &lrs, &out, &target_arg};
        for (int k = 0; k < 4 && !used; k++)
            if ((used = own_flag(argc, argv, i, own[k], &v)) > 0) *dst[k] = v;
        if (used < 0) {
            fprintf(stderr, "%s: option %s needs a value\n", cli_prog, argv[i]);
            return 2;
        }
        if (used) {
            i += used - 1;
            continue;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) help = true;
        for (const char *const *bad = (const char *const[]){"--metrics", "--save", "--save-every", "--resume",
                                                             "--stop-after", NULL}; *bad; bad++)
            if (!strncmp(argv[i], *bad, strlen(*bad)) && (!argv[i][strlen(*bad)] || argv[i][strlen(*bad)] == '=')) {
                fprintf(stderr, "%s: %s is not for compare: each arm writes DIR/NAME.jsonl\n", cli_prog, *bad);
                return 2;
            }
        if (!strncmp(argv[i], "--log-every", 11)) log_every = NULL; /* the user's, passed through */
        if (np >= 250) {
            fprintf(stderr, "%s: too many arguments\n", cli_prog);
            return 2;
        }
        pass[np++] = argv[i];
    }
    if (help) {
        printf("usage: nabla compare --optim A,B,... [--lr X,Y,...] [nabla train flags] --out DIR [--target-loss X]\n"
               "  --optim A,B,...    the optimizers, one arm each (nabla train --optim names)\n"
               "  --lr X[,Y...]      one lr for every arm or one per arm (default: nabla train's default\n"
               "                     for each: PyTorch's, except sgd 0.1 with momentum 0.9)\n"
               "  --out DIR          writes DIR/NAME.jsonl per arm, DIR/curves.svg, DIR/curves-steps.svg,\n"
               "                     DIR/summary.md\n"
               "  --target-loss X    the training loss whose first step summary.md reports (default: the\n"
               "                     highest final training loss of the arms)\n"
               "  any nabla train flag (--data, --model, --epochs, --seed, --sched, ...) applies to every\n"
               "  arm; --log-every (default 10) sets the resolution of the per-step curves\n"
               "  --help             this help\n");
        return 0;
    }
    if (!optims || !out) {
        fprintf(stderr, "%s: --optim A,B,... and --out DIR are required (see --help)\n", cli_prog);
        return 2;
    }
    static arm arms[MAX_ARMS];
    memset(arms, 0, sizeof arms);
    int na = 0;
    for (const char *s = optims; *s; na++) {
        size_t len = strcspn(s, ",");
        if (na == MAX_ARMS || len == 0 || len >= sizeof arms[0].name) {
            fprintf(stderr, "%s: --optim takes 1..%d optimizer names, comma-separated\n", cli_prog, MAX_ARMS);
            return 2;
        }
        snprintf(arms[na].name, sizeof arms[na].name, "%.*s", (int)len, s);
        s += len + (s[len] == ',');
    }
    double lr[MAX_ARMS], target = NAN;
    int nlr = lrs ? args_list(lrs, lr, MAX_ARMS) : 0;
    if (lrs && nlr != 1 && nlr != na) {
        fprintf(stderr, "%s: --lr gives one lr or one per optimizer (%d)\n", cli_prog, na);
        return 2;
    }
    if (target_arg && (args_list(target_arg, &target, 1) != 1 || !(target > 0))) {
        fprintf(stderr, "%s: --target-loss must be a positive number\n", cli_prog);
        return 2;
    }
    if (mkdir(out, 0777) && errno != EEXIST) {
        fprintf(stderr, "%s: cannot create %s: %s\n", cli_prog, out, strerror(errno));
        return 1;
    }
    int rc = 1;
    for (int k = 0; k < na; k++) {
        int same = 1;
        for (int j = 0; j < k; j++) same += !strcmp(arms[j].name, arms[k].name);
        snprintf(arms[k].path, sizeof arms[k].path, same > 1 ? "%s/%s-%d.jsonl" : "%s/%s.jsonl", out, arms[k].name,
                 same);
        if (nlr) snprintf(arms[k].lr, sizeof arms[k].lr, "%g", lr[nlr == 1 ? 0 : k]);
        char *av[270];
        int ac = 0;
        av[ac++] = argv[0];
        av[ac++] = "train";
        for (int i = 0; i < np; i++) av[ac++] = pass[i];
        av[ac++] = "--optim";
        av[ac++] = arms[k].name;
        if (nlr) {
            av[ac++] = "--lr";
            av[ac++] = arms[k].lr;
        }
        av[ac++] = "--metrics";
        av[ac++] = arms[k].path;
        if (log_every) {
            av[ac++] = "--log-every";
            av[ac++] = (char *)log_every;
        }
        av[ac] = NULL;
        printf("== %s%s%s ==\n", arms[k].name, nlr ? " lr " : "", arms[k].lr);
        int arc = run_arm(ac, av);
        if (arc) {
            fprintf(stderr, "%s: the %s arm failed (nabla train exit status %d)\n", cli_prog, arms[k].name, arc);
            rc = arc == 2 ? 2 : 1;
            goto done;
        }
    }
    const char *paths[MAX_ARMS], *labels[MAX_ARMS];
    bool same_init = true;
    for (int k = 0; k < na; k++) {
        if (metrics_read(&arms[k].m, arms[k].path)) goto done;
        if (!arms[k].m.epochs->child) {
            fprintf(stderr, "%s: %s has no epoch lines (--epochs 0?)\n", cli_prog, arms[k].path);
            goto done;
        }
        if (!nlr) snprintf(arms[k].lr, sizeof arms[k].lr, "%g", metrics_num(arms[k].m.epochs->child, "lr"));
        snprintf(arms[k].label, sizeof arms[k].label, "%s lr %s", arms[k].name, arms[k].lr);
        paths[k] = arms[k].path;
        labels[k] = arms[k].label;
        same_init &= !strcmp(crc_of(&arms[k].m), crc_of(&arms[0].m));
        if (!target_arg) {
            double fl = metrics_num(last_row(arms[k].m.epochs), "train_loss");
            if (isfinite(fl) && !(fl <= target)) target = fl;
        }
    }
    char svg[4200], md[4200];
    snprintf(svg, sizeof svg, "%s/curves.svg", out);
    if (plot_files(na, paths, labels, false, svg, "nabla compare", 360, 260)) goto done;
    snprintf(svg, sizeof svg, "%s/curves-steps.svg", out);
    if (arms[0].m.steps->child && plot_files(na, paths, labels, true, svg, "nabla compare", 360, 260)) goto done;
    snprintf(md, sizeof md, "%s/summary.md", out);
    FILE *f = fopen(md, "w");
    int bad = !f || write_summary(f, arms, na, argc, argv, target, target_arg != NULL, same_init);
    if ((f && fclose(f)) || bad) {
        fprintf(stderr, "%s: cannot write %s\n", cli_prog, md);
        goto done;
    }
    printf("\n");
    write_summary(stdout, arms, na, argc, argv, target, target_arg != NULL, same_init);
    printf("\nwrote %s, %s/curves.svg, %s/curves-steps.svg and one metrics file per arm\n", md, out, out);
    rc = 0;
done:
    for (int k = 0; k < na; k++) metrics_free(&arms[k].m);
    return rc;
}
