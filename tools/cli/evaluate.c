/* evaluate.c - the loss a batch is trained on, and the metrics of a model over a dataset:
 *   class ids (int32 y):   F.cross_entropy; loss and accuracy (and the confusion matrix)
 *   targets (float32 y):   F.mse_loss; loss (the MSE), RMSE and MAE over every target value
 * Shared by nabla train (validation and test parts), nabla eval and the LBFGS closure. Under
 * mpirun each process evaluates its block of the data and the sums are added up. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

nb_tensor *cli_loss(nb_arena *ar, nb_tensor *out, nb_tensor *y, bool sum) {
    if (!y) return NULL;
    if (y->dtype == NB_INT32) {
        nb_cross_entropy_opts co = nb_cross_entropy_defaults();
        if (sum) co.reduction = NB_REDUCTION_SUM;
        return nb_cross_entropy(ar, out, y, &co);
    }
    return nb_mse_loss(ar, out, y, sum ? NB_REDUCTION_SUM : NB_REDUCTION_MEAN);
}

int cli_evaluate(nb_module *model, nb_dataset *ds, int64_t batch, nb_arena *ar, cli_metrics *m, int64_t *confusion,
                 float *outputs) {
    memset(m, 0, sizeof *m);
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = batch;
    lo.shuffle = false;
    lo.flatten = model_cli_input().flatten;
    nb_dataset *part = dist_cli_block(ds); /* under mpirun: this process's block of ds */
    nb_loader *ld = part ? nb_loader_over(part, NULL, &lo) : NULL;
    if (!ld) {
        if (part != ds) nb_dataset_free(part);
        return -1;
    }
    bool prev = nb_set_grad_enabled(false);
    nb_module_train(model, false);
    double total = 0, hits = 0, abs_err = 0;
    int64_t values = 0, at = 0;
    nb_tensor *x, *y;
    int rc;
    for (;;) {
        nb_arena_reset(ar);
        if ((rc = nb_loader_next(ld, ar, &x, &y)) <= 0) break;
        nb_tensor *out = nb_forward(model, ar, model_cli_prepare(ar, x));
        nb_tensor *l = cli_loss(ar, out, y, true);
        if (!l) {
            rc = -1;
            break;
        }
        total += nb_item(l);
        int64_t B = x->shape[0];
        if (y->dtype == NB_INT32) {
            nb_tensor *pred = nb_argmax(ar, out, 1, false);
            if (!pred) {
                rc = -1;
                break;
            }
            for (int64_t i = 0; i < B; i++) {
                int32_t p = nb_i32(pred)[i], t = nb_i32(y)[i];
                hits += p == t;
                if (confusion) confusion[(int64_t)t * ds->classes + p]++;
            }
            values += B;
        } else {
            for (int64_t i = 0; i < y->numel; i++) abs_err += fabs((double)nb_f32(out)[i] - nb_f32(y)[i]);
            values += y->numel;
        }
        if (outputs) memcpy(outputs + at, out->data, sizeof(float) * (size_t)out->numel);
        at += out->numel;
        m->n += B;
    }
    nb_module_train(model, true);
    nb_set_grad_enabled(prev);
    nb_loader_free(ld);
    if (part != ds) nb_dataset_free(part);
    double sums[5] = {total, hits, abs_err, (double)values, (double)m->n}; /* of every process */
    if (rc < 0 || dist_cli_sum(sums, 5)) return -1;
    m->n = (int64_t)sums[4];
    m->loss = sums[0] / sums[3]; /* the mean over samples (class ids) or target values */
    m->acc = sums[1] / sums[3];
    m->rmse = sqrt(m->loss);
    m->mae = sums[2] / sums[3];
    return 0;
}

void cli_metrics_text(char *buf, size_t n, const char *prefix, const cli_metrics *m, bool regress) {
    if (regress)
        snprintf(buf, n, "  %s_loss %.4f  %s_rmse %.4f  %s_mae %.4f", prefix, m->loss, prefix, m->rmse, prefix, m->mae);
    else
        snprintf(buf, n, "  %s_loss %.4f  %s_acc %.4f", prefix, m->loss, prefix, m->acc);
}

void cli_json_num(FILE *f, const char *key, double v, const char *fmt, bool last) {
    fprintf(f, "\"%s\": ", key);
    if (isfinite(v)) fprintf(f, fmt, v);
    else fputs("null", f); /* JSON has no NaN or infinity */
    fputs(last ? "}\n" : ", ", f);
}

void cli_metrics_json(FILE *f, const char *prefix, const cli_metrics *m, bool regress) {
    char k[32];
    snprintf(k, sizeof k, "%s_loss", prefix);
    cli_json_num(f, k, m->loss, "%.6f", false);
    snprintf(k, sizeof k, "%s_%s", prefix, regress ? "rmse" : "acc");
    cli_json_num(f, k, regress ? m->rmse : m->acc, regress ? "%.6f" : "%.4f", false);
    if (regress) {
        snprintf(k, sizeof k, "%s_mae", prefix);
        cli_json_num(f, k, m->mae, "%.6f", false);
    }
}

/* sklearn's classification_report, after the matrix itself. */
void cli_print_confusion(const int64_t *cm, int64_t classes) {
    printf("confusion matrix (rows: true class, columns: predicted class)\n%12s", "");
    for (int64_t j = 0; j < classes; j++) printf(" %7lld", (long long)j);
    printf("\n");
    for (int64_t i = 0; i < classes; i++) {
        printf("%12lld", (long long)i);
        for (int64_t j = 0; j < classes; j++) printf(" %7lld", (long long)cm[i * classes + j]);
        printf("\n");
    }
    printf("\n%12s %10s %10s %10s %10s\n", "class", "precision", "recall", "f1-score", "support");
    double mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0;
    int64_t total = 0, hits = 0;
    for (int64_t c = 0; c < classes; c++) {
        int64_t tp = cm[c * classes + c], pred = 0, support = 0;
        for (int64_t k = 0; k < classes; k++) {
            pred += cm[k * classes + c];
            support += cm[c * classes + k];
        }
        double p = pred ? (double)tp / (double)pred : 0, r = support ? (double)tp / (double)support : 0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0; /* 0 where undefined, as sklearn's zero_division */
        printf("%12lld %10.4f %10.4f %10.4f %10lld\n", (long long)c, p, r, f1, (long long)support);
        mp += p, mr += r, mf += f1;
        wp += p * (double)support, wr += r * (double)support, wf += f1 * (double)support;
        total += support;
        hits += tp;
    }
    double t = total ? (double)total : 1;
    printf("\n%12s %10s %10s %10.4f %10lld\n", "accuracy", "", "", (double)hits / t, (long long)total);
    printf("%12s %10.4f %10.4f %10.4f %10lld\n", "macro avg", mp / (double)classes, mr / (double)classes,
           mf / (double)classes, (long long)total);
    printf("%12s %10.4f %10.4f %10.4f %10lld\n", "weighted avg", wp / t, wr / t, wf / t, (long long)total);
}
