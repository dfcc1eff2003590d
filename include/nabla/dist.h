/* nabla/dist.h - data-parallel training across processes and machines, on MPI.
 *
 * N processes started by an MPI launcher (mpirun, on one machine or on several) each run the
 * usual loop on their own shard of the data; a data-parallel wrapper around the model
 * (PyTorch's DistributedDataParallel) makes every process start from rank 0's weights and
 * averages the gradients during each backward, so the optimizer, the schedulers and gradient
 * clipping see the same averaged gradients everywhere and stay unchanged:
 *
 *   nb_dist *d = nb_dist_init();                       // dist.init_process_group()
 *   nb_ddp *dp = nb_ddp_new(d, model, NULL);           // DistributedDataParallel(model)
 *   nb_optim *opt = nb_sgd(params, n, &so);            // the same optimizer as alone
 *   ... for each batch of this process's shard (nb_dist_rank, nb_dist_world_size):
 *       loss = ...;
 *       nb_optim_zero_grad(opt, true);
 *       nb_backward(loss);                             // gradients averaged across processes
 *       nb_optim_step(opt);
 *   nb_ddp_free(dp);
 *   nb_dist_free(d);
 *
 * Launch: mpirun -np 2 ./train (one machine), mpirun --hostfile hosts -np 8 ./train (several);
 * docs/distributed.md has the details and the PyTorch equivalents.
 *
 * What is averaged when: backward fills the model's gradient slab from its last parameters to
 * its first; the slab is cut into buckets in that order, and each bucket's sum (of every
 * process's gradient scaled by 1/world, as DDP does) starts as soon as the backward has
 * finished every gradient in it, while the backward goes on with the earlier layers. The end of
 * the backward waits for all of them. When every process runs on one machine the sums go
 * through memory they share (an MPI shared window: each process adds up its slice of every
 * bucket in rank order, the others copy it); otherwise, or on request, each bucket is a
 * nonblocking MPI_Iallreduce. Buckets start in the same order on every process, so the result
 * is the same on every process and, run after run, bit for bit (MPI's reduction order is fixed
 * by the message size and the number of processes). A parameter the backward did not reach takes part with a zero gradient: after
 * a synchronised backward every parameter of the model has a gradient (zeros when unused).
 * Buffers (BatchNorm's running statistics) are computed by each process on its own batches
 * and replaced by rank 0's after every synchronised backward (DDP's broadcast_buffers), so the
 * model every process evaluates and rank 0 saves is one model.
 *
 * Without MPI at build time (meson -Dmpi=disabled, or no libopenmpi-dev), nb_dist_available()
 * is false and every function that needs MPI fails with NB_ESTATE and a message saying so.
 *
 * Errors: as everywhere in nabla, a return code and nb_last_error(); MPI errors are returned,
 * not fatal, on nabla's own communicator. A process that does not answer within the timeout
 * (nb_dist_set_timeout) makes the waiting call fail instead of hanging.
 * Threads: one nb_dist and its nb_ddp are used from one thread at a time.
 */
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include "nn.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_dist nb_dist;
typedef struct nb_ddp nb_ddp;

/* True if this nabla was built with MPI. */
bool nb_dist_available(void);
/* True if an MPI launcher (mpirun, mpiexec, srun) started this process, i.e. it has a rank in
 * a job (read from the launcher's environment; works without MPI too). */
bool nb_dist_launched(void);

/* Join all the processes of the job (MPI_COMM_WORLD; torch.distributed.init_process_group).
 * Initialises MPI if the application has not (then nabla finalises it when the last nb_dist
 * it made is freed: MPI cannot be initialised twice in a process). nabla talks on its own
 * duplicate of the communicator, so its messages never meet the application's. Collective:
 * every process of the communicator must call it. NULL on error. The caller owns the nb_dist:
 * free it with nb_dist_free after every nb_ddp made over it. */
nb_dist *nb_dist_init(void);
/* The same over a communicator of the application, given as its Fortran handle
 * (MPI_Comm_c2f(comm)) so that this header does not need mpi.h; nb_dist_init_comm below takes
 * the MPI_Comm when mpi.h was included first. The application must have initialised MPI. */
nb_dist *nb_dist_init_fcomm(int fortran_comm);
#ifdef MPI_VERSION
static inline nb_dist *nb_dist_init_comm(MPI_Comm comm) {
    return nb_dist_init_fcomm((int)MPI_Comm_c2f(comm));
}
#endif
/* This process's rank (0..world_size-1) and the number of processes; 0 and 1 for NULL. */
int nb_dist_rank(const nb_dist *d);
int nb_dist_world_size(const nb_dist *d);
/* Longest wait, in seconds, for the other processes in any nabla call (allreduce, broadcast,
 * barrier, checks); 0 (the default) waits for ever. A call that times out fails with NB_EIO
 * and a message naming the operation: a process is lost or stuck, and the job should end
 * (nb_dist_abort). */
int nb_dist_set_timeout(nb_dist *d, double seconds);
/* Wait until every process has called it. */
int nb_dist_barrier(nb_dist *d);
/* Copy n bytes at buf on process root to buf on every process (the caller's buffer, used
 * during the call only; as every buffer and text the calls below take). */
int nb_dist_broadcast(nb_dist *d, void *buf, size_t n, int root);
/* vals[0..n) becomes the sum over the processes of their vals (doubles: metric sums such as
 * the loss total, correct predictions and sample counts; the same result on every process). */
int nb_dist_allreduce_sum(nb_dist *d, double *vals, int n);
/* Check that every process passes the same text (a description of its configuration, one
 * item per line). Collective. If one differs, every process fails with NB_EINVAL; rank 0's
 * message and the differing rank's name the first differing line of each side:
 *   "dist: the optimizer differs between processes: rank 1 has "lr=0.01" where rank 0 has
 *   "lr=0.1""; the other ranks' name the rank. what names the thing in that message. */
int nb_dist_check_same(nb_dist *d, const char *what, const char *text);
/* The same for an optimizer: its type, groups, their sizes and every hyperparameter. */
int nb_dist_check_optim(nb_dist *d, const nb_optim *o);
/* End every process of the job with this exit code (MPI_Abort): for an application that
 * cannot go on after an error on one process, so that the others do not wait for it. Does not
 * return (returns only for NULL). */
void nb_dist_abort(nb_dist *d, int code);
/* Free (NULL is a no-op); see nb_dist_init for MPI_Finalize. Collective while MPI runs. */
void nb_dist_free(nb_dist *d);

/* ---- data-parallel model (DistributedDataParallel) ---------------------------------------- */
typedef struct nb_ddp_opts {
    size_t bucket_bytes;    /* 256 KiB: gradient bytes per allreduce (the last bucket may be
                               smaller); 0 puts the whole slab in one bucket */
    bool broadcast_buffers; /* true: rank 0's buffers after every synchronised backward */
    bool shared_memory;     /* true: when every process runs on one machine, the sums go through
                               memory they share (an MPI shared window) instead of MPI's
                               allreduce; false: MPI's allreduce, the path between machines */
} nb_ddp_opts;

/* The defaults above. */
nb_ddp_opts nb_ddp_defaults(void);
/* Make model data-parallel over d's processes. Collective. Checks that every process has the
 * same model (names, dtypes and shapes of parameters and buffers: NB_EINVAL with the first
 * difference otherwise), copies rank 0's parameters and buffers to every process, and hooks
 * the parameters so that every backward through them averages their gradients. model must be
 * the root of a packed tree (its parameters in one slab, as every container and layer packs
 * them) and outlive the wrapper; d too; its tree must not change while wrapped. With shared
 * memory, the model's gradient views point into it until nb_ddp_free. NULL on error. The
 * caller owns the wrapper (nb_ddp_free, before the model and d); it borrows both. */
nb_ddp *nb_ddp_new(nb_dist *d, nb_module *model, const nb_ddp_opts *opts);
/* Gradient synchronisation on (true, the default) or off; returns the previous setting. Off,
 * backwards only accumulate into the local gradients (DDP's no_sync(): gradient accumulation
 * over several batches); the next backward with it on averages the accumulated sums. */
bool nb_ddp_set_sync(nb_ddp *dp, bool sync);
/* Copy rank 0's buffers to every process now. Collective. */
int nb_ddp_sync_buffers(nb_ddp *dp);

/* What the wrapper spent, since it was made. */
typedef struct nb_ddp_stats {
    int64_t backwards;   /* synchronised backwards */
    int64_t allreduces;  /* bucket allreduces started */
    int64_t bytes;       /* gradient bytes reduced (per process) */
    double comm_seconds; /* wall time inside MPI calls: starting, progressing and waiting for
                            the allreduces (and the buffer broadcasts) */
    double wait_seconds; /* the part of it spent at the end of backwards, waiting */
} nb_ddp_stats;
nb_ddp_stats nb_ddp_get_stats(const nb_ddp *dp);
/* Remove the hooks, bring the gradients home and free (NULL is a no-op). Not during a backward.
 * Collective when the wrapper uses shared memory (the processes free the window together). */
void nb_ddp_free(nb_ddp *dp);

#ifdef __cplusplus
}
#endif
#endif
