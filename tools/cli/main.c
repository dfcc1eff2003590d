/* main.c - the nabla command: `nabla train ...` and the other subcommands. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

const char *cli_prog = "nabla";

void cli_add(cli_flags *f, arg_spec s) {
    if (f->n < (int)(sizeof f->specs / sizeof f->specs[0])) f->specs[f->n++] = s;
}

int cli_precision(const char *prog, const char *value, nb_dtype *dt) {
    if (!strcmp(value, "fp32") || !strcmp(value, "float32")) *dt = NB_FLOAT32;
    else if (!strcmp(value, "bf16") || !strcmp(value, "bfloat16")) *dt = NB_BF16;
    else {
        fprintf(stderr, "%s: --precision must be fp32 or bf16, not %s\n", prog, value);
        return 2;
    }
    if (*dt == NB_BF16 && !strcmp(nb_bf16_backend(), "emulated"))
        fprintf(stderr, "%s: this CPU has no AVX512_BF16 (nor AMX): bfloat16 products run on an "
                "emulation, with the same results, slower than float32\n", prog);
    return 0;
}

const char *cli_precision_note(nb_dtype dt) {
    static char note[64];
    if (dt != NB_BF16) return "";
    snprintf(note, sizeof note, ", bf16 autocast (%s)", nb_bf16_backend());
    return note;
}

void cli_add_kw_flags(cli_flags *f, const kw_flag *flags, int n, bool *given, char *helps, size_t help_len,
                      void (*takers)(const char *kwarg, char *out, size_t n)) {
    for (int i = 0; i < n; i++) {
        char who[160], *help = helps + (size_t)i * help_len;
        takers(flags[i].kwarg, who, sizeof who);
        snprintf(help, help_len, "%s [%s]", flags[i].spec.help, who);
        arg_spec s = flags[i].spec;
        s.help = help;
        s.given = &given[i];
        cli_add(f, s);
    }
}

bool cli_kw_value(const kw_flag *fl, nb_value *v) {
    switch (fl->spec.kind) {
    case ARG_DOUBLE: *v = nb_num(fl->kwarg, *(double *)fl->spec.dst); return true;
    case ARG_INT: *v = nb_int(fl->kwarg, *(long *)fl->spec.dst); return true;
    case ARG_FLAG: *v = nb_bool(fl->kwarg, *(bool *)fl->spec.dst); return true;
    default: return false;
    }
}

void cli_usage(const cli_flags *f) {
    arg_spec shown[sizeof f->specs / sizeof f->specs[0]];
    int n = 0;
    for (int k = 0; k < f->n; k++)
        if (!optim_cli_hides(&f->specs[k]) && !sched_cli_hides(&f->specs[k])) shown[n++] = f->specs[k];
    args_usage(shown, n);
}

const char *cli_shape_text(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && at < n; i++) at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < n) snprintf(buf + at, n - at, "]");
    return buf;
}

static void usage(void) {
    printf("usage: nabla <command> [options]\n\n"
           "commands:\n"
           "  train       train a model on IDX, CSV or .npy data (nabla train --help)\n"
           "  lr-plot     draw a learning-rate schedule as SVG/CSV (nabla lr-plot --help)\n"
           "  plot        draw training curves of metrics files as SVG (nabla plot --help)\n"
           "  compare     train once per optimizer from the same start, curves and a summary (nabla compare --help)\n"
           "  optim-path  optimizers' paths on a 2-D function, as SVG (nabla optim-path --help)\n"
           "  graph       write the autograd graph of the model as DOT (nabla graph --help)\n"
           "  eval        test loss and accuracy of a saved model (nabla eval --help)\n"
           "  predict     predictions of a saved model for a file, as CSV (nabla predict --help)\n"
           "  ckpt        inspect checkpoint files (nabla ckpt inspect FILE)\n"
           "  version     print the version and the GEMM backend (also nabla --version)\n");
}

static int run_command(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) {
        cli_prog = "nabla train";
        return cmd_train(argc, argv);
    }
    if (!strcmp(argv[1], "lr-plot")) {
        cli_prog = "nabla lr-plot";
        return cmd_lr_plot(argc, argv);
    }
    if (!strcmp(argv[1], "plot")) {
        cli_prog = "nabla plot";
        return cmd_plot(argc, argv);
    }
    if (!strcmp(argv[1], "compare")) {
        cli_prog = "nabla compare";
        return cmd_compare(argc, argv);
    }
    if (!strcmp(argv[1], "optim-path")) {
        cli_prog = "nabla optim-path";
        return cmd_optim_path(argc, argv);
    }
    if (!strcmp(argv[1], "graph")) return cmd_graph(argc, argv);
    if (!strcmp(argv[1], "eval")) {
        cli_prog = "nabla eval";
        return cmd_eval(argc, argv);
    }
    if (!strcmp(argv[1], "predict")) {
        cli_prog = "nabla predict";
        return cmd_predict(argc, argv);
    }
    if (!strcmp(argv[1], "ckpt")) return cmd_ckpt(argc, argv);
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("nabla %s (gemm: %s, bf16: %s)\n", nb_version(), nb_blas_backend(), nb_bf16_backend());
        return 0;
    }
    fprintf(stderr, "nabla: unknown command '%s' (see nabla --help)\n", argv[1]);
    return 2;
}

int main(int argc, char **argv) {
    int rc = run_command(argc, argv);
    ckpt_cli_release(); /* a checkpoint a command read and still holds */
    return rc;
}
