/* consumer.c - a C program built against an installed or subproject nabla. */
#include <stdio.h>
#include "nabla.h"

int main(void) {
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_module *m = nb_linear_new(3, 2, true, &rng);
    if (!m) return 1;
    printf("nabla %s: %d parameters\n", nb_version(), (int)nb_module_numel(m));
    nb_module_free(m);
    return 0;
}
