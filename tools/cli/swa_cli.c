/* swa_cli.c - weight averaging for `nabla train` (torch.optim.swa_utils):
 *   --swa-start E   from the end of epoch E on, fold the weights into an equal-weight average
 *                   after every epoch (AveragedModel); with --swa-lr, SWALR takes over the lr
 *                   from then on (its anneal starts at the end of epoch E)
 *   --ema DECAY     exponential moving average of the weights, updated after every batch
 * The test loss/accuracy printed per epoch are those of the averaged weights once there are any.
 * Checkpoints (ckpt_cli.c) save and restore the averaged copy and SWALR with the rest. */
#include <math.h>
#include <stdio.h>
#include "cli.h"

static long swa_start = 0, swa_anneal = 10;
static double ema = NAN, swa_lr = NAN;
static const char *swa_strategy = "cos";

static nb_averaged *avg;
static nb_sched *swalr;
static bool swa_phase; /* SWALR drives the lr (epochs after --swa-start) */
static nb_tensor *const *params_;
static int nparams_;

void swa_cli_swalr_flags(cli_flags *f) {
    cli_add(f, (arg_spec){"swa-start", ARG_INT, &swa_start, "average the weights (SWA) from the end of epoch E on (0: off)", NULL});
    cli_add(f, (arg_spec){"swa-lr", ARG_DOUBLE, &swa_lr, "SWALR: anneal the lr to this from --swa-start on", NULL});
    cli_add(f, (arg_spec){"swa-anneal-epochs", ARG_INT, &swa_anneal, "SWALR: anneal over N epochs (10)", NULL});
    cli_add(f, (arg_spec){"swa-anneal-strategy", ARG_STRING, &swa_strategy, "SWALR: cos | linear (cos)", NULL});
}

void swa_cli_flags(cli_flags *f) {
    swa_cli_swalr_flags(f);
    cli_add(f, (arg_spec){"ema", ARG_DOUBLE, &ema, "keep an EMA of the weights with this decay (e.g. 0.999)", NULL});
}

int swa_cli_check(void) {
    if (swa_start < 0 || (swa_start > 0 && !isnan(ema))) {
        fprintf(stderr, "%s: --swa-start must be >= 0, and cannot be combined with --ema\n", cli_prog);
        return 2;
    }
    if (!isnan(swa_lr) && !swa_start) {
        fprintf(stderr, "%s: --swa-lr needs --swa-start\n", cli_prog);
        return 2;
    }
    return 0;
}

int swa_cli_build(nb_optim *opt, nb_tensor *const *params, int n) {
    if (!swa_start && isnan(ema)) return 0;
    nb_averaged_opts o = nb_averaged_defaults();
    if (!isnan(ema)) {
        o.kind = NB_AVG_EMA;
        o.decay = ema;
    }
    params_ = params;
    nparams_ = n;
    if (!(avg = nb_averaged_new(params, n, &o))) {
        fprintf(stderr, "%s: averaging: %s\n", cli_prog, nb_last_error());
        return 1;
    }
    if (!isnan(swa_lr)) {
        nb_swalr_opts so = nb_swalr_defaults();
        so.swa_lr = swa_lr;
        so.anneal_epochs = swa_anneal;
        so.anneal_strategy = swa_strategy;
        if (!(swalr = nb_swalr(opt, &so))) {
            fprintf(stderr, "%s: SWALR: %s\n", cli_prog, nb_last_error());
            return 1;
        }
    }
    if (swa_start)
        printf("averaging: SWA from the end of epoch %ld%s; test metrics use the averaged weights\n", swa_start,
               swalr ? ", then SWALR" : "");
    else
        printf("averaging: EMA with decay %g; test metrics use the averaged weights\n", ema);
    return 0;
}

int swa_cli_after_batch(nb_sched *sched) {
    if (avg && !isnan(ema) && nb_averaged_update(avg, params_, nparams_)) return -1;
    return swa_phase ? 0 : sched_cli_after_batch(sched);
}

int swa_cli_epoch_end(long epoch) {
    if (!avg || !swa_start || epoch < swa_start) return 0;
    if (swalr) swa_phase = true;
    return nb_averaged_update(avg, params_, nparams_);
}

nb_averaged *swa_cli_averaged(void) { return avg; }
nb_sched *swa_cli_swalr(void) { return swalr; }

void swa_cli_resumed(long epochs_done) {
    swa_phase = swalr && swa_start && epochs_done >= swa_start;
    if (avg)
        printf("averaging resumed: %lld update(s) averaged so far%s\n", (long long)nb_averaged_count(avg),
               swa_phase ? ", SWALR drives the lr" : "");
}

long swa_cli_sched_epochs(long first, long last) {
    if (swalr && swa_start && last > swa_start) last = swa_start; /* SWALR from swa_start + 1 on */
    return last >= first ? last - first + 1 : 0;
}

int swa_cli_swap(void) { return avg && nb_averaged_count(avg) ? nb_averaged_swap(avg, params_, nparams_) : 0; }

int swa_cli_after_epoch(nb_sched *sched, double test_loss) {
    return swa_phase ? nb_sched_step(swalr) : sched_cli_after_epoch(sched, test_loss);
}

void swa_cli_free(void) {
    nb_averaged_free(avg);
    nb_sched_free(swalr);
    avg = NULL;
    swalr = NULL;
}
