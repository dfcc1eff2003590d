/* mnist.c - an MNIST-style split (images + labels) from a folder of IDX files. Both headers
 * are read and checked against each other (ranks, counts) before either body: a file whose
 * header promises more than its partner agrees to costs nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "idx.h"

const char *nb_default_data_dir(void) {
    const char *env = getenv("NABLA_DATA");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

/* "<dir>/<prefix>-<kind>-idx<n>-ubyte" with ".gz" if that file exists: the plain name only when
 * there is no ".gz" at all, so a ".gz" that cannot be read (a symlink loop, no permission) is
 * reported by its own name and cause, not as a missing plain file. */
static void idx_path(char *buf, size_t n, const char *dir, const char *prefix, const char *kind, int rank) {
    snprintf(buf, n, "%s/%s-%s-idx%d-ubyte.gz", dir, prefix, kind, rank);
    if (access(buf, R_OK) != 0 && (errno == ENOENT || errno == ENOTDIR))
        snprintf(buf, n, "%s/%s-%s-idx%d-ubyte", dir, prefix, kind, rank);
}

int nb_mnist_load(const char *dir, const char *prefix, nb_mnist *out) {
    if (!dir || !prefix || !out)
        return nb__error(NB_EINVAL, "mnist_load: %s is NULL", !dir ? "dir" : !prefix ? "prefix" : "out");
    out->images = out->labels = NULL;
    char ip[4096], lp[4096];
    idx_path(ip, sizeof ip, dir, prefix, "images", 3);
    idx_path(lp, sizeof lp, dir, prefix, "labels", 1);
    nb__idx fi, fl;
    int rc = nb__idx_open(ip, &fi);
    if (rc) return rc;
    if ((rc = nb__idx_open(lp, &fl))) {
        nb__idx_close(&fi);
        return rc;
    }
    if (fi.ndim != 3) rc = nb__error(NB_EFORMAT, "mnist: %s has rank %d, expected 3 (N, rows, cols)", ip, fi.ndim);
    else if (fl.ndim != 1) rc = nb__error(NB_EFORMAT, "mnist: %s has rank %d, expected 1", lp, fl.ndim);
    else if (fi.shape[0] != fl.shape[0])
        rc = nb__error(NB_EFORMAT, "mnist: %s has %lld images but %s has %lld labels", ip,
                       (long long)fi.shape[0], lp, (long long)fl.shape[0]);
    if (rc) {
        nb__idx_close(&fi);
        nb__idx_close(&fl);
        return rc;
    }
    nb_tensor *img = nb__idx_read(&fi);
    if (!img) {
        nb__idx_close(&fl);
        return nb_last_status();
    }
    nb_tensor *lab = nb__idx_read(&fl);
    if (!lab) {
        nb_tensor_free(img);
        return nb_last_status();
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
