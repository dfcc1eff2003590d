/* nn_internal.h - the nn layer's internal header: modules build on the ops (and their internal
 * headers, such as ops/rnn.h), autograd and core. Includes nothing of loss, optim, data or
 * above (docs/DESIGN.md, "Layers"). */
#ifndef NABLA_NN_INTERNAL_H
#define NABLA_NN_INTERNAL_H

#include "../ops/ops_internal.h"
#include "nabla/nn.h"

#endif
