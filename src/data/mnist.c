/* mnist.c - an MNIST-style split (images + labels) from a folder of IDX files. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "../core/internal.h"

const char *nb_default_data_dir(void) {
    const char *env = getenv("NABLA_DATA");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

/* "<dir>/<prefix>-<kind>-idx<n>-ubyte" with ".gz" if that file exists. */
static void idx_path(char *buf, size_t n, const char *dir, const char *prefix, const char *kind, int rank) {
    snprintf(buf, n, "%s/%s-%s-idx%d-ubyte.gz", dir, prefix, kind, rank);
    if (access(buf, R_OK) != 0) snprintf(buf, n, "%s/%s-%s-idx%d-ubyte", dir, prefix, kind, rank);
}

int nb_mnist_load(const char *dir, const char *prefix, nb_mnist *out) {
    if (!dir || !prefix || !out)
        return nb__error(NB_EINVAL, "mnist_load: %s is NULL", !dir ? "dir" : !prefix ? "prefix" : "out");
    out->images = out->labels = NULL;
    char ip[4096], lp[4096];
    idx_path(ip, sizeof ip, dir, prefix, "images", 3);
    idx_path(lp, sizeof lp, dir, prefix, "labels", 1);
    nb_tensor *img = nb_idx_load(ip);
    if (!img) return nb_last_status();
    nb_tensor *lab = nb_idx_load(lp);
    if (!lab) {
        nb_tensor_free(img);
        return nb_last_status();
    }
    int rc = NB_OK;
    if (img->ndim != 3) rc = nb__error(NB_EFORMAT, "mnist: %s has rank %d, expected 3 (N, rows, cols)", ip, img->ndim);
    else if (lab->ndim != 1) rc = nb__error(NB_EFORMAT, "mnist: %s has rank %d, expected 1", lp, lab->ndim);
    else if (img->shape[0] != lab->shape[0])
        rc = nb__error(NB_EFORMAT, "mnist: %s has %lld images but %s has %lld labels", ip,
                       (long long)img->shape[0], lp, (long long)lab->shape[0]);
    if (rc) {
        nb_tensor_free(img);
        nb_tensor_free(lab);
        return rc;
    }
    out->images = img;
    out->labels = lab;
    return NB_OK;
}

void nb_mnist_free(nb_mnist *m) {
    if (!m) return;
    nb_tensor_free(m->images);
    nb_tensor_free(m->labels);
    m->images = m->labels = NULL;
}
