/* nabla.h - a small, complete deep-learning training framework in C11.
 *
 * The PyTorch loop, in C:
 *
 *   nb_arena_reset(ar);
 *   nb_tensor *logits = nb_forward(model, ar, x);                    // outputs = model(inputs)
 *   nb_tensor *loss = nb_cross_entropy(ar, logits, y, NULL);          // loss = criterion(...)
 *   nb_optim_zero_grad(opt, true);                                    // optimizer.zero_grad()
 *   nb_backward(loss);                                                // loss.backward()
 *   nb_optim_step(opt);                                               // optimizer.step()
 *   nb_sched_step(sched);                                             // scheduler.step()
 *
 * Embedding contract:
 * - the library never prints and never exits; errors are return codes (NULL or a negative
 *   nb_status) with a message from nb_last_error(); user mistakes never abort;
 * - it never closes, frees or keeps what the caller owns beyond the call;
 * - distinct models/optimizers/arenas may be used on distinct threads; the only global state
 *   is thread-local (last error, grad mode) or process-wide settings: the allocator hooks, set
 *   once before first use, and the thread pool with its size (nb_set_num_threads);
 * - every object has one constructor and one *_free; freeing NULL is a no-op;
 * - the shared library carries a soversion; NB_VERSION_* and nb_version() tell versions apart.
 */
#ifndef NABLA_H
#define NABLA_H

#include "nabla/error.h"
#include "nabla/core.h"
#include "nabla/tensor.h"
#include "nabla/value.h"
#include "nabla/autograd.h"
#include "nabla/nn.h"
#include "nabla/loss.h"
#include "nabla/optim.h"
#include "nabla/sched.h"
#include "nabla/data.h"
#include "nabla/io.h"
#include "nabla/dist.h"

#endif
