/* softplus.h - the public part of the worked example in docs/internals.md ("How to add an op").
 * In the tree, this declaration goes to include/nabla/tensor.h, named nb_softplus. */
#ifndef NABLA_DOCS_SOFTPLUS_H
#define NABLA_DOCS_SOFTPLUS_H
#include "nabla.h"

/* F.softplus(x, beta, threshold): log(1 + exp(beta x)) / beta, or x where beta x > threshold. */
nb_tensor *ex_softplus(nb_arena *ar, nb_tensor *x, float beta, float threshold);

#endif
