// embed.cpp - a C++ program using nabla through its public header (extern "C" guards).
#include <cstdio>
#include "nabla.h"

int main() {
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_module *mods[] = {nb_linear_new(4, 3, true, &rng), nb_relu_new(), nb_linear_new(3, 2, true, &rng)};
    nb_module *m = nb_sequential(3, mods);
    nb_arena *ar = nb_arena_new(0);
    int64_t shape[] = {5, 4};
    nb_tensor *x = nb_ones(ar, 2, shape);
    int32_t labels[] = {0, 1, 0, 1, 1};
    int64_t n = 5;
    nb_tensor *y = nb_from_array(ar, NB_INT32, 1, &n, labels);
    nb_tensor *loss = nb_cross_entropy(ar, nb_forward(m, ar, x), y, nullptr);
    if (!loss || nb_backward(loss) != NB_OK) {
        std::fprintf(stderr, "embed: %s\n", nb_last_error());
        return 1;
    }
    std::printf("nabla %s from C++: loss %.4f\n", nb_version(), nb_item(loss));
    nb_arena_free(ar);
    nb_module_free(m);
    return 0;
}
