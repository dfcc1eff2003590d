/* ops_internal.h - the ops layer's internal header: what the differentiable ops see. Ops build
 * on the tape (autograd) and on core, and run their loops in src/kernels/ (each op file includes
 * the kernel headers it uses). Includes nothing of nn, loss, optim or above (docs/DESIGN.md,
 * "Layers"). */
#ifndef NABLA_OPS_INTERNAL_H
#define NABLA_OPS_INTERNAL_H

#include "../autograd/autograd_internal.h"

#endif
