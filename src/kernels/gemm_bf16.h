/* gemm_bf16.h - the bfloat16 matrix-product kernels nb_k_gemm_ex chooses among (gemm.c):
 * products of operands rounded to bfloat16, summed in float32.
 *
 *   gemm_amx.c     Intel AMX tiles (TDPBF16PS: a 16x16 block of C += 16x32 by 32x16 per
 *                  instruction), on CPUs with AMX-BF16 once Linux grants the tile state;
 *   gemm_dpbf16.c  AVX512_BF16 (VDPBF16PS: 16 lanes += a pair of products each), on CPUs with
 *                  AVX512_BF16 (Zen 4 and later, Cooper Lake, Sapphire Rapids and later);
 *   gemm_bf16.c    the emulated kernel: float32 arithmetic on the rounded operands, anywhere.
 *
 * Each has nb_k_gemm_ex's contract on one thread (M, N, K > 0; beta 0 ignores C) and adds the
 * products of each element of C in k order, one block of k after another, blocks fixed by K
 * alone, so splitting C by rows or columns never changes a bit. The kernels differ from one
 * another in the order inside a pair of products and in subnormals (the hardware flushes
 * bfloat16 subnormal inputs and float32 subnormal results to zero; the emulation does not). */
#ifndef NABLA_K_GEMM_BF16_H
#define NABLA_K_GEMM_BF16_H
#include "../core/internal.h" /* NB_NO_TARGET_CLONES (set under clang): no ISA-specific code */
#include "kernels.h"

typedef void nb_k_gemm16_fn(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                            float alpha, nb_k_operand A, nb_k_operand B, float beta, float *C,
                            int64_t ldc);

nb_k_gemm16_fn nb_k_gemm_bf16_emulated;

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NB_NO_TARGET_CLONES)
#define NB_HAVE_GEMM_BF16_X86 1
/* True if this CPU runs VDPBF16PS (and AVX-512BW, which the packing uses). */
bool nb_k_gemm_dpbf16_available(void);
nb_k_gemm16_fn nb_k_gemm_dpbf16;
/* True if this CPU has AMX-BF16 and the OS lets this process use the tiles (asked once). */
bool nb_k_gemm_amx_available(void);
nb_k_gemm16_fn nb_k_gemm_amx;
/* Load the tile configuration (palette 1) the AMX kernels use: tiles 0..3 (C) cr rows of 64
 * bytes, tiles 4 and 5 (A) ar rows of ab bytes, tiles 6 and 7 (B) br rows of 64 bytes. The
 * thread keeps it (and its tiles) between kernel calls: a call with the configuration already
 * loaded costs nothing (LDTILECFG took ~1.5 % of a LeNet step, once per sample). */
void nb_k_amx_config(int cr, int ar, int ab, int br);

/* Packing shared by the two (gemm_dpbf16.c): rows [k0, k0 + kc) x columns [j0, j0 + nc) of
 * op(B) into slivers of 32 columns, as pairs along k: dst[s kp2 32 + p 32 + c] is the 32-bit
 * pair (op(B)[k0 + 2p, j0 + 32s + c], op(B)[k0 + 2p + 1, ...]) for p < kp2 (kp2 >= kc / 2
 * rounded up; pairs past kc and columns past nc are zeros). */
void nb_k_pack_b_pairs(bool trans_b, nb_k_operand B, int64_t k0, int64_t kc, int64_t kp2,
                       int64_t j0, int64_t nc, uint32_t *dst);
#else
#define NB_HAVE_GEMM_BF16_X86 0
#endif

#endif
