/* nabla/core.h - version, allocator hooks, the step arena, the seeded RNG, threads.
 *
 * Thread safety: distinct models, optimizers, arenas and RNGs may be used on distinct threads
 * at the same time. The only global state is thread-local (last error, grad mode) plus the
 * allocator hooks, which are set once before first use, and the one thread pool: its size is
 * process-wide, and while one thread runs a job on it another simply runs its own serially
 * (same numbers either way). tests/test_threads.c trains models on 4 threads at once.
 */
#ifndef NABLA_CORE_H
#define NABLA_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NB_VERSION_MAJOR 0
#define NB_VERSION_MINOR 1
#define NB_VERSION_PATCH 0
#define NB_VERSION_STRING "0.1.0"

/* Version of the linked library ("0.1.0", a static string); compare with NB_VERSION_STRING to
 * catch mismatches. */
const char *nb_version(void);

/* Replace malloc/realloc/free for every allocation nabla makes (zlib's buffers included; not
 * the JSON parser of checkpoint headers, libcjson, whose hooks are process-wide). Call once,
 * before any other nabla call; returns NB_ESTATE if nabla already allocated. NULL restores the
 * libc functions. */
int nb_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                     void (*free_fn)(void *));

/* ---- arena: where the temporaries of one training step live ------------------------------
 * Every op writes its output (and records its autograd node) in the arena it is given.
 * nb_arena_reset() frees all of them at once; memory is kept, so a steady-state step makes no
 * heap allocation. Tensors from a reset arena must not be used again. */
typedef struct nb_arena nb_arena;

/* New arena; capacity is a first size hint in bytes (0: 1 MiB). Grows on demand. The caller
 * owns it: free it with nb_arena_free, after the last use of anything made in it. */
nb_arena *nb_arena_new(size_t capacity);
/* Release everything allocated since the last reset; keeps (and consolidates) the memory. */
void nb_arena_reset(nb_arena *ar);
/* Bytes currently in use (nb_arena_used) and high-water mark since creation (nb_arena_peak);
 * 0 for NULL. */
size_t nb_arena_used(const nb_arena *ar);
size_t nb_arena_peak(const nb_arena *ar);
/* Free the arena and all its memory (every tensor made in it dies). NULL is a no-op. */
void nb_arena_free(nb_arena *ar);

/* ---- RNG: one seeded generator for init, dropout and shuffling ----------------------------
 * MT19937, seeded and transformed exactly as PyTorch's CPU generator: with the same seed,
 * nb_uniform / nb_kaiming_uniform (so every default init) and nb_randperm give bit for bit what
 * torch.manual_seed(seed) + uniform_ / randperm give. Plain struct: copy it to save it.
 * A NULL generator is an error (nb_last_error()): draws then return 0, or NaN for floats.
 * A function given an nb_rng * uses it during the call only; the few that keep it (nn.Dropout,
 * a recurrent layer's dropout_rng) say so, and it must then outlive them. */
#define NB_RNG_STATE_N 624
typedef struct nb_rng {
    uint32_t state[NB_RNG_STATE_N];
    int32_t left;  /* outputs left before the next twist (PyTorch's left_) */
    uint32_t next; /* index of the next output word */
} nb_rng;

/* Seed a generator as torch.manual_seed(seed) (its low 32 bits, as PyTorch). */
void nb_rng_seed(nb_rng *r, uint64_t seed);
/* Next 32 random bits (PyTorch's generator->random()). */
uint32_t nb_rng_u32(nb_rng *r);
/* Uniform float in [0, 1) from 24 random bits, as torch's uniform_ on float32. */
float nb_rng_uniform(nb_rng *r);
/* Uniform double in [0, 1) from 53 bits of a 64-bit draw, as torch's uniform_ on float64. */
double nb_rng_uniform_double(nb_rng *r);
/* Standard normal (Box-Muller on doubles). */
double nb_rng_normal(nb_rng *r);
/* Uniform integer in [0, n), unbiased. n must be > 0 (n == 0: 0 and an error). */
uint32_t nb_rng_below(nb_rng *r, uint32_t n);
/* out[0..n) (the caller's n entries) = a random permutation of 0..n-1, exactly as
 * torch.randperm(n, generator). */
void nb_randperm(nb_rng *r, int64_t n, int64_t *out);

/* ---- threads ----------------------------------------------------------------------------- */
/* Use n threads (1..64) for nabla's work. nabla runs OpenBLAS single-threaded and splits big
 * GEMMs, convolutions and optimizer updates across its own pool instead, so the two pools never
 * compete; results do not depend on n (with the AVX-512 GEMM). Default 1. */
int nb_set_num_threads(int n);
/* Current thread count set by nb_set_num_threads (default 1). */
int nb_get_num_threads(void);
/* The GEMM kernels in use: "openblas" or "builtin" (compiled in), prefixed by "avx512+" when
 * nabla's AVX-512 kernel does the big products on this CPU (the other serves narrow shapes).
 * A static string. */
const char *nb_blas_backend(void);

#ifdef __cplusplus
}
#endif
#endif
