/* cli.h - the nabla command: subcommands, and the builders that turn flags into objects.
 *
 * Each builder owns its flags: *_cli_flags() appends them to a table before parsing, and
 * *_cli_build() makes the object from the parsed values. train.c only runs the loop. */
#ifndef NABLA_CLI_H
#define NABLA_CLI_H

#include "args.h"
#include "nabla.h"

/* A growable table of flags. */
typedef struct cli_flags {
    arg_spec specs[160];
    bool set[160]; /* set[k]: spec k was given (on the command line or by a resumed checkpoint) */
    int n;
} cli_flags;

void cli_add(cli_flags *f, arg_spec s);
/* A flag that becomes a keyword argument of an optimizer or a schedule (optim_cli.c,
 * sched_cli.c): the flag, and the PyTorch name of the argument it sets. */
typedef struct kw_flag {
    arg_spec spec;
    const char *kwarg;
} kw_flag;
#define KW_DOUBLE(n, k, dst, help) {{n, ARG_DOUBLE, dst, help, NULL}, k}
#define KW_INT(n, k, dst, help) {{n, ARG_INT, dst, help, NULL}, k}
#define KW_STRING(n, k, dst, help) {{n, ARG_STRING, dst, help, NULL}, k}
#define KW_FLAG(n, k, dst, help) {{n, ARG_FLAG, dst, help, NULL}, k}
/* Add flags[0..n) to f, flag i marking given[i], its help followed by " [who takes it]"
 * (takers(kwarg) writes that list) in helps: n strings of help_len bytes that the caller keeps
 * for as long as f is used. */
void cli_add_kw_flags(cli_flags *f, const kw_flag *flags, int n, bool *given, char *helps, size_t help_len,
                      void (*takers)(const char *kwarg, char *out, size_t n));
/* The keyword argument of a given number, integer or on/off flag; false for a string flag,
 * whose kind depends on the argument. */
bool cli_kw_value(const kw_flag *fl, nb_value *v);
/* "[28, 28]": a shape for messages, in buf. */
const char *cli_shape_text(int ndim, const int64_t *shape, char *buf, size_t n);
/* "nabla train", "nabla lr-plot": the running command, for messages. */
extern const char *cli_prog;

/* --precision fp32|bf16 (args.c): the arena's autocast type in *dt; 0, or prints the problem
 * (as prog) and returns 2. On a CPU without AVX512_BF16 it also says, on stderr, that bfloat16
 * products run on the slower emulated path. */
int cli_precision(const char *prog, const char *value, nb_dtype *dt);
/* "" for float32, else ", bf16 autocast (amx)" and the like: for a banner line. */
const char *cli_precision_note(nb_dtype dt);

/* ---- subcommands (each returns the process exit code) ------------------------------------ */
int cmd_train(int argc, char **argv);
int cmd_lr_plot(int argc, char **argv);
int cmd_graph(int argc, char **argv); /* graph_cli.c */
int cmd_ckpt(int argc, char **argv);  /* ckpt_cli.c */
int cmd_eval(int argc, char **argv);  /* eval_cli.c */
int cmd_predict(int argc, char **argv); /* predict_cli.c */
int cmd_plot(int argc, char **argv);  /* plot_cli.c */
int cmd_optim_path(int argc, char **argv); /* optim_path_cli.c */
int cmd_compare(int argc, char **argv); /* compare_cli.c */

/* ---- metrics files (metrics.c): what `nabla train --metrics` writes ------------------------- */
struct cJSON;
typedef struct metrics_file {
    const char *path;                    /* borrowed */
    struct cJSON *header, *epochs, *steps; /* owned: the header line, arrays of epoch and step lines */
    const struct cJSON *flags;           /* the header's flags object (in header), or NULL */
} metrics_file;
/* Read path; 0, or -1 after printing the problem (*m is then still safe to free). */
int metrics_read(metrics_file *m, const char *path);
void metrics_free(metrics_file *m);
/* A number of a line (NAN if absent or null). */
double metrics_num(const struct cJSON *row, const char *key);

/* ---- curves (plot_cli.c) ------------------------------------------------------------------ */
/* Draw the metrics files paths[0..n) (n <= 32) into the SVG out, against epochs or steps;
 * labels[i] names run i in the legend (NULL, or a NULL entry: the flags in which the runs
 * differ). 0, or 1 after printing the problem. */
int plot_files(int n, const char *const *paths, const char *const *labels, bool by_step, const char *out,
               const char *title, double panel_width, double panel_height);

/* ---- model (model_cli.c): --model, --hidden, ... ------------------------------------------- */
typedef struct model_input {
    bool flatten; /* the model takes [B, 784] (mlp) rather than [B, 28, 28] */
} model_input;
void model_cli_flags(cli_flags *f);
/* Check the model flags; returns 0 or prints the problem and returns 2. */
int model_cli_check(void);
nb_module *model_cli_build(int64_t rows, int64_t cols, int64_t classes, nb_rng *rng);
/* Whether the model takes samples of this shape (mlp: any, flattened; cnn, rnn, lstm, gru:
 * images [H, W]); prints the problem and returns 2 if not. */
int model_cli_check_input(int ndim, const int64_t *shape);
/* The model for samples of shape[0..ndim) and `outputs` outputs (classes or targets). */
nb_module *model_cli_build_for(int ndim, const int64_t *shape, int64_t outputs, nb_rng *rng);
model_input model_cli_input(void);
/* The loader's batch in the layout the model takes ([B, rows, cols] -> [B, 1, rows, cols] for cnn). */
nb_tensor *model_cli_prepare(nb_arena *ar, nb_tensor *x);
/* "mlp 784-128-10" */
const char *model_cli_describe(void);

/* Print the flags of a command (those that apply to the --optim and --sched given). */
void cli_usage(const cli_flags *f);

/* ---- data (data_cli.c): --data, --train, --test, --target-col, --test-split, ... ---------- */
/* What a checkpoint says about its model's data ("user.cli.data"). */
typedef struct data_info {
    bool known;      /* the checkpoint has the entry (older ones: IDX, 10 classes) */
    bool file;       /* trained on --train FILE (not an IDX folder) */
    nb_task task;
    int ndim;
    int64_t shape[NB_MAX_DIMS]; /* of one sample */
    int64_t outputs; /* classes or targets */
    long seed;       /* of the splits */
    bool normalize;
} data_info;

/* The data of a run: parts, what they are, and what the run owns. */
typedef struct data_run {
    nb_dataset *train, *val, *test; /* the parts (val, test may be NULL; eval: test only) */
    nb_task task;
    int64_t outputs; /* classes, or regression targets */
    int ndim;
    int64_t shape[NB_MAX_DIMS]; /* of one sample */
    bool normalize;
    nb_tensor *mean, *std;      /* --normalize: per-feature statistics of the training part */
    nb_named_tensor norm[2];
    nb_ckpt_part part;          /* "normalize": mean and std, for checkpoints */
    nb_dataset *source[2];      /* the loaded datasets the parts view (normalisation goes here) */
    nb_dataset *own[8];
    int nown;
    nb_mnist mnist[2];
} data_run;

void data_cli_flags(cli_flags *f);
typedef enum { DATA_TRAIN, DATA_EVAL, DATA_PREDICT } data_mode;
/* Check the data flags (eval: a --test file replaces a stored --test-split); prints the
 * problem and returns 2. */
int data_cli_check(data_mode mode);
/* True for --task regress. */
bool data_cli_regress(void);
/* True for a data flag a checkpoint may restore: how the data are read and split, not which
 * files (--data, --train, --test are paths: the user gives them). */
bool data_cli_restorable(const char *name, size_t len);
/* Load the data: for training, the training part (split, --limit applied) with the validation
 * and test parts; for eval, the test part only (stored: what the checkpoint says). Fits the
 * normalisation on the training part but does not apply it (data_cli_apply_norm, after a
 * resume may have replaced it). Prints the problem and returns -1. */
int data_cli_load(data_run *d, bool eval, long seed, long limit, const data_info *stored);
int data_cli_apply_norm(data_run *d);
/* Normalisation statistics from a checkpoint's part "normalize", applied (if d->normalize). */
int data_cli_norm_from(data_run *d, const nb_ckpt *c);
void data_cli_free(data_run *d);
/* The "user.cli.data" entry of a run (cJSON_free it). */
char *data_cli_json(const data_run *d, long seed);
/* Read c's "user.cli.data" into info (info->known false without one) and make its reader
 * settings the defaults of the data flags; -1 (printed) if malformed. */
int data_cli_stored(const nb_ckpt *c, data_info *info);
/* Reader options from the flags, and a file (FILE or FILE,YFILE) read by its extension. */
nb_read_opts data_cli_read_opts(nb_task task, int64_t classes);
nb_dataset *data_cli_read(const char *spec, const nb_read_opts *opts);
/* True if spec names a text table or a .npy file (by its extension). */
bool data_cli_is_table(const char *spec);

/* ---- evaluation (evaluate.c) -------------------------------------------------------------- */
/* The training loss of a batch: cross-entropy for class ids (int32 y), MSE for targets (mean,
 * or sum). */
nb_tensor *cli_loss(nb_arena *ar, nb_tensor *out, nb_tensor *y, bool sum);
typedef struct cli_metrics {
    double loss, acc, rmse, mae; /* loss: mean cross-entropy, or the MSE */
    int64_t n;                   /* samples */
} cli_metrics;
/* The metrics of model over ds in batches; confusion (classes x classes, zeroed by the caller)
 * and outputs (n x outputs floats) are filled when not NULL. */
int cli_evaluate(nb_module *model, nb_dataset *ds, int64_t batch, nb_arena *ar, cli_metrics *m,
                 int64_t *confusion, float *outputs);
/* "  test_loss 0.1234  test_acc 0.9000" (or _rmse and _mae) */
void cli_metrics_text(char *buf, size_t n, const char *prefix, const cli_metrics *m, bool regress);
/* The same as JSON members ("test_loss": ..., ), and one number (null for NaN/inf). */
void cli_metrics_json(FILE *f, const char *prefix, const cli_metrics *m, bool regress);
void cli_json_num(FILE *f, const char *key, double v, const char *fmt, bool last);
/* The confusion matrix and per-class precision, recall, F1 (sklearn's classification_report). */
void cli_print_confusion(const int64_t *cm, int64_t classes);

/* ---- optimizer (optim_cli.c): --optim, --lr, --momentum, ... ------------------------------- */
/* The optimizer's flags and the clipping flags (train); the optimizer's alone (lr-plot). */
void optim_cli_flags(cli_flags *f);
void optim_cli_optimizer_flags(cli_flags *f);
/* After parsing: the optimizer exists and every flag given applies to it, with a well-formed
 * value; returns 0 or prints the problem and returns 2. */
int optim_cli_check(void);
/* True for a flag of another optimizer than the one chosen (help leaves it out). */
bool optim_cli_hides(const arg_spec *s);
/* The optimizer by name (after optim_cli_check). */
nb_optim *optim_cli_build(nb_tensor *const *params, int n);
/* Gradient clipping before each step (--clip, --clip-value); 0 = no clipping. */
int optim_cli_clip(nb_tensor *const *params, int n);
/* optimizer.step(); LBFGS gets a closure that re-evaluates this batch (x, y) on model. */
int optim_cli_step(nb_optim *opt, nb_module *model, nb_tensor *x, nb_tensor *y,
                   nb_tensor *const *params, int n);
const char *optim_cli_name(void);

/* ---- scheduler (sched_cli.c): --sched, --step-size, --gamma, ... --------------------------- */
void sched_cli_flags(cli_flags *f);
/* After parsing: the schedule exists and every flag given applies to it (0, or prints and 2). */
int sched_cli_check(void);
/* True for a flag of another schedule than the one chosen (help leaves it out). */
bool sched_cli_hides(const arg_spec *s);
/* NULL with *failed false when --sched none. */
nb_sched *sched_cli_build(nb_optim *opt, int64_t steps_per_epoch, int64_t epochs, bool *failed);
/* Called after every batch and after every epoch (with the validation loss, or the test or
 * training loss when there is none); steps the schedule at the granularity it wants. */
int sched_cli_after_batch(nb_sched *s);
int sched_cli_after_epoch(nb_sched *s, double test_loss);
/* True for schedules stepped after every batch (onecycle, cyclic). */
bool sched_cli_per_batch(void);
/* After a resume: can the loaded schedule take the steps_left steps the run still needs (over
 * epochs_left epochs)? OneCycleLR has a fixed number; 0, or prints the problem and returns -1. */
int sched_cli_check_resumed(nb_sched *s, int64_t steps_left, long epochs_left);

/* ---- weight averaging (swa_cli.c): --swa-start, --swa-lr, --ema --------------------------- */
void swa_cli_flags(cli_flags *f);
/* SWA's flags alone, without --ema (lr-plot: SWALR after --swa-start). */
void swa_cli_swalr_flags(cli_flags *f);
/* Check the SWA flags; returns 0 or prints the problem and returns 2. */
int swa_cli_check(void);
/* Set up averaging of params (and SWALR on opt); 0, or prints the problem and returns 1. */
int swa_cli_build(nb_optim *opt, nb_tensor *const *params, int n);
/* After each optimizer step: EMA update, then the schedule's per-batch step (unless SWALR
 * drives the lr). */
int swa_cli_after_batch(nb_sched *sched);
/* At the end of an epoch's batches: SWA update (epoch >= --swa-start). */
int swa_cli_epoch_end(long epoch);
/* Exchange the model's weights and the averaged ones (no-op before the first average); call
 * before and after evaluating. */
int swa_cli_swap(void);
/* The end-of-epoch schedule step: SWALR's in the SWA phase, else sched_cli_after_epoch. */
int swa_cli_after_epoch(nb_sched *sched, double test_loss);
/* The averaged copy and SWALR (NULL when not used), for checkpoints. */
nb_averaged *swa_cli_averaged(void);
nb_sched *swa_cli_swalr(void);
/* After a resume that restored epochs_done epochs: pick the phase up where it was. */
void swa_cli_resumed(long epochs_done);
/* How many of the epochs first..last the schedule drives (SWALR takes over after --swa-start). */
long swa_cli_sched_epochs(long first, long last);
void swa_cli_free(void);

/* ---- checkpoints (ckpt_cli.c): --save, --save-every, --resume, --stop-after -------------- */
void ckpt_cli_flags(cli_flags *f);
/* Before parsing argv: with --resume F, apply the flags stored in F that describe the model and
 * the training run (argv still overrides; paths, epochs, threads and unknown flags are never
 * taken from a file). */
int ckpt_cli_preparse(int argc, char **argv, cli_flags *f);
/* Check the checkpoint flags; returns 0 or prints the problem and returns 2. */
int ckpt_cli_check(void);
/* The checkpoint at path, read once per process: the last one opened is kept (NULL with the
 * error set if it does not open) until ckpt_cli_release (main calls it after the command). */
nb_ckpt *ckpt_cli_open(const char *path);
void ckpt_cli_release(void);
/* Set the model flags to those stored in a checkpoint (for nabla eval). */
int ckpt_cli_model_defaults(const char *path);
/* After a flag check failed: say which flags came from the checkpoint (if any did). */
void ckpt_cli_note_stored(void);
/* Describe the averaged (SWA/EMA) weights of a checkpoint in desc and set *count (n_averaged):
 * 1 if it has some, 0 if not, -1 (printed) if it does not open. */
int ckpt_cli_averaged(const char *path, char *desc, size_t n, long long *count);
/* --early-stop / --save-best: the best validation loss so far (saved with checkpoints). */
typedef struct early_stop {
    double best;     /* INFINITY before the first epoch */
    long best_epoch; /* 0 before the first epoch */
    long bad;        /* epochs since the best */
} early_stop;
typedef struct ckpt_cli_run {
    nb_module *model;
    nb_optim *opt;
    nb_sched *sched; /* may be NULL */
    nb_rng *rng;
    nb_loader *ld;
    nb_averaged *avg;  /* SWA/EMA (may be NULL) */
    nb_sched *swalr;   /* may be NULL */
    const nb_ckpt_part *parts; /* normalisation statistics (may be NULL) */
    int nparts;
    const char *data_json;     /* "user.cli.data" */
    early_stop *es;            /* may be NULL */
} ckpt_cli_run;
/* With --resume: load everything; *first_epoch is the epoch to run next (1 without). */
int ckpt_cli_resume(const ckpt_cli_run *r, long *first_epoch);
/* After each epoch: save when due; *stop is set when --stop-after is reached. */
int ckpt_cli_end_epoch(const ckpt_cli_run *r, const cli_flags *f, long epoch, long epochs, bool *stop);
/* Save the whole state at the end of epoch to path (--save-best). */
int ckpt_cli_save(const ckpt_cli_run *r, const cli_flags *f, const char *path, long epoch);

/* ---- distributed training (dist_cli.c): nabla train under mpirun --------------------------- */
void dist_cli_flags(cli_flags *f);
/* Check the dist flags (and apply --dist-timeout); returns 0 or prints the problem and returns 2. */
int dist_cli_check(void);
/* Join the job when an MPI launcher started this process (stdout of ranks other than 0 goes to
 * /dev/null); 0, or prints the problem and returns 1. */
int dist_cli_init(void);
/* The command's exit: rc != 0 ends every process of the job (they may be waiting for this
 * one), 0 leaves the job cleanly. Returns rc. */
int dist_cli_end(int rc);
/* Running under a launcher; this process's rank; the number of processes (0 and 1 alone). */
bool dist_cli_on(void);
int dist_cli_rank(void);
int dist_cli_size(void);
/* The checkpoint at path, read by rank 0 and sent to every process. */
nb_ckpt *dist_cli_ckpt_open(const char *path);
/* Check that every process has the same flags (but where files are and what only changes
 * speed or output), data, model and optimizer, then wrap the model for gradient averaging;
 * 0, or prints the problem and returns -1. A no-op alone. */
int dist_cli_setup(nb_module *model, nb_optim *opt, const cli_flags *f, const nb_dataset *train);
/* Remove the wrapper (before the model is freed). */
void dist_cli_unwrap(void);
/* This process's DistributedSampler over n samples (NULL alone, or printed on error). */
nb_sampler *dist_cli_sampler(int64_t n, long seed);
/* Before each epoch (1, 2, ...): the sampler's set_epoch, and the start of the epoch's
 * allreduce time (dist_cli_allreduce_ms: milliseconds in MPI per synchronised step since). */
void dist_cli_epoch_begin(nb_sampler *s, long epoch);
double dist_cli_allreduce_ms(void);
/* Sum v[0..n) over the processes (a no-op alone); -1 (printed) on error. */
int dist_cli_sum(double *v, int n);
/* The mean of v over the processes (v alone; NaN on error). */
double dist_cli_mean(double v);
/* This process's contiguous block of ds for evaluation (a subset to free), or ds itself alone;
 * NULL on error. */
nb_dataset *dist_cli_block(nb_dataset *ds);

#endif
