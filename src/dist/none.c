/* none.c - nabla/dist.h in a build without MPI: every function that needs MPI fails and says
 * how to get it (nb_dist_launched, in config.c, still works: a program started by mpirun can
 * tell the user). */
#include "dist_internal.h"
#ifndef NB_HAVE_MPI

#define NO_MPI "dist: this nabla was built without MPI (install libopenmpi-dev and reconfigure " \
               "with meson -Dmpi=enabled)"

bool nb_dist_available(void) { return false; }

nb_dist *nb_dist_init(void) { return nb__null(NB_ESTATE, NO_MPI); }
nb_dist *nb_dist_init_fcomm(int fortran_comm) {
    (void)fortran_comm;
    return nb__null(NB_ESTATE, NO_MPI);
}
int nb_dist_rank(const nb_dist *d) { return d ? 0 : 0; }
int nb_dist_world_size(const nb_dist *d) { return d ? 1 : 1; }
int nb_dist_set_timeout(nb_dist *d, double seconds) {
    (void)d, (void)seconds;
    return nb__error(NB_ESTATE, NO_MPI);
}
int nb_dist_barrier(nb_dist *d) {
    (void)d;
    return nb__error(NB_ESTATE, NO_MPI);
}
int nb_dist_broadcast(nb_dist *d, void *buf, size_t n, int root) {
    (void)d, (void)buf, (void)n, (void)root;
    return nb__error(NB_ESTATE, NO_MPI);
}
int nb_dist_allreduce_sum(nb_dist *d, double *vals, int n) {
    (void)d, (void)vals, (void)n;
    return nb__error(NB_ESTATE, NO_MPI);
}
int nb_dist_check_same(nb_dist *d, const char *what, const char *text) {
    (void)d, (void)what, (void)text;
    return nb__error(NB_ESTATE, NO_MPI);
}
int nb_dist_check_optim(nb_dist *d, const nb_optim *o) {
    (void)d, (void)o;
    return nb__error(NB_ESTATE, NO_MPI);
}
void nb_dist_abort(nb_dist *d, int code) { (void)d, (void)code; }
void nb_dist_free(nb_dist *d) { (void)d; }

nb_ddp *nb_ddp_new(nb_dist *d, nb_module *model, const nb_ddp_opts *opts) {
    (void)d, (void)model, (void)opts;
    return nb__null(NB_ESTATE, NO_MPI);
}
bool nb_ddp_set_sync(nb_ddp *dp, bool sync) {
    (void)dp, (void)sync;
    return true;
}
int nb_ddp_sync_buffers(nb_ddp *dp) {
    (void)dp;
    return nb__error(NB_ESTATE, NO_MPI);
}
nb_ddp_stats nb_ddp_get_stats(const nb_ddp *dp) {
    (void)dp;
    return (nb_ddp_stats){0};
}
void nb_ddp_free(nb_ddp *dp) { (void)dp; }

#endif
