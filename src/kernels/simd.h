/* simd.h - for the few loops that want the wide registers (direct convolution, pooling, the
 * optimizers' updates): on x86-64 Linux with GCC, NB_SIMD_CLONES compiles a function for
 * AVX-512, AVX2 and the baseline and picks one at load time, so the default (portable) build
 * still uses them. (Not with clang, whose cloned functions cannot be called from another file:
 * see core/internal.h.) */
#ifndef NABLA_K_SIMD_H
#define NABLA_K_SIMD_H

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__AVX512F__) && \
    !defined(NB_NO_TARGET_CLONES) && !defined(__clang__)
#define NB_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NB_SIMD_CLONES
#endif

/* Helpers of a cloned function must be inlined into each clone to use its instruction set. */
#if defined(__GNUC__)
#define NB_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define NB_ALWAYS_INLINE static inline
#endif

#endif
