/* distributed.c - data-parallel training in C, the loop of docs/distributed.md:
 *   mpirun -np 2 build/tests/doc_distributed [data-dir] [epochs] [weights-file]
 * Every process trains on its shard of the training split with a per-process batch of 32; the
 * gradients are averaged during each backward, so every process holds the same model. Rank 0
 * prints and saves. Alone (no mpirun) it runs as one process; in a build without MPI it says
 * so and exits 77 (skipped). The tests run it both ways on datasets/tiny. */
#include <stdio.h>
#include <stdlib.h>
#include "nabla.h"

/* An error on one process ends them all: the others would wait for it in the next allreduce. */
static int fail(nb_dist *dist, const char *what) {
    fprintf(stderr, "distributed: rank %d: %s: %s\n", nb_dist_rank(dist), what, nb_last_error());
    nb_dist_abort(dist, 1);                                /* MPI_Abort; returns without a job */
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : nb_default_data_dir();
    int epochs = argc > 2 ? atoi(argv[2]) : 2;
    if (!nb_dist_available()) {
        printf("distributed: this nabla was built without MPI\n");
        return 77;
    }

    nb_dist *dist = nb_dist_init();                        /* dist.init_process_group("mpi") */
    if (!dist) return fail(NULL, "init");
    int rank = nb_dist_rank(dist), world = nb_dist_world_size(dist);

    nb_dataset *train = nb_dataset_mnist(dir, "train");    /* every process loads the data */
    nb_distributed_opts so = nb_distributed_defaults();    /* DistributedSampler(train, */
    so.num_replicas = world;                               /*   num_replicas=world, */
    so.rank = rank;                                        /*   rank=rank, shuffle=True, seed=0) */
    nb_sampler *sampler = train ? nb_distributed_sampler(nb_dataset_len(train), &so) : NULL;
    nb_loader_opts lo = nb_loader_defaults();
    lo.batch_size = 32;                                    /* per process */
    lo.flatten = true;
    nb_loader *loader = sampler ? nb_loader_over(train, sampler, &lo) : NULL;

    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *model = nb_sequential(3, (nb_module *[]){
        nb_linear_new(784, 128, true, &rng), nb_relu_new(), nb_linear_new(128, 10, true, &rng)});
    nb_ddp *ddp = model ? nb_ddp_new(dist, model, NULL) : NULL; /* DistributedDataParallel(model) */
    nb_tensor *params[8];
    int n = model ? nb_module_parameters(model, params, 8) : 0;
    nb_sgd_opts o = nb_sgd_defaults();
    o.lr = 0.01;
    o.momentum = 0.9;
    nb_optim *opt = nb_sgd(params, n, &o);                 /* the optimizer knows nothing */
    nb_arena *ar = nb_arena_new(0);
    if (!loader || !ddp || !opt || !ar || nb_dist_check_optim(dist, opt)) return fail(dist, "setup");

    nb_tensor *x, *y;
    for (int epoch = 0; epoch < epochs; epoch++) {
        nb_sampler_set_epoch(sampler, epoch);              /* sampler.set_epoch(epoch) */
        double sums[2] = {0, 0};                           /* loss * samples, samples */
        while (nb_arena_reset(ar), nb_loader_next(loader, ar, &x, &y) > 0) {
            nb_tensor *loss = nb_cross_entropy(ar, nb_forward(model, ar, x), y, NULL);
            nb_optim_zero_grad(opt, true);
            if (nb_backward(loss)) return fail(dist, "backward"); /* averages the gradients */
            if (nb_optim_step(opt)) return fail(dist, "step");
            sums[0] += nb_item(loss) * (double)y->numel;
            sums[1] += (double)y->numel;
        }
        if (nb_dist_allreduce_sum(dist, sums, 2)) return fail(dist, "allreduce"); /* all processes */
        if (rank == 0) printf("epoch %d: train loss %.4f over %.0f samples\n", epoch + 1, sums[0] / sums[1], sums[1]);
    }
    if (rank == 0 && argc > 3 && nb_weights_save(argv[3], model, NULL, 0)) return fail(dist, "save"); /* rank 0 writes */

    nb_arena_free(ar);
    nb_optim_free(opt);
    nb_ddp_free(ddp);
    nb_module_free(model);
    nb_loader_free(loader);
    nb_sampler_free(sampler);
    nb_dataset_free(train);
    nb_dist_free(dist);                                    /* dist.destroy_process_group() */
    return 0;
}
