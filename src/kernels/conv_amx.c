/* conv_amx.c - the direct convolution kernels (conv_direct.c) in bfloat16 on Intel AMX tiles.
 *
 * Forward and input gradient: out[o, i] = sum over pairs p of taps of the two products of
 * wp[o, p] (two weights) and pp[off[p] + i] (the two input values they meet). The taps are
 * paired along the kernel row (kx, kx + dw), so with the "paired plane" pp[j] = (x[j], x[j+dw])
 * the pair p of output position i is one 32-bit word at pp[off[p] + i], and 16 positions are
 * 64 contiguous bytes: a row of a B tile. A tile load takes rows a constant stride apart, so
 * the pairs are grouped in chunks of R whose offsets step by a constant: the input channels
 * (a plane apart), the kernel rows (dh Wp apart) or the pairs of a kernel row (2 dw apart),
 * whichever there are most of (up to 16). A chunk is then one A tile (16 channels x R pairs of
 * weights) and one B tile per 16 positions, loaded straight from the plane, which stays in L1:
 * no im2col copy. Four C tiles of 16 channels x 16 positions at a time, written to out.
 *
 * Weight gradient: acc[t, o] += sum over positions i of x[off[t] + i] gy[o, i], positions
 * paired: the taps are chunked the same way (R taps a constant stride apart: an A tile of R
 * taps x 32 positions straight from the bfloat16 plane), B tiles are 16 pairs of positions x
 * 16 channels (gy transposed, once per call), C a block of R taps x 16 channels of acc, loaded
 * and stored around the positions.
 *
 * TDPBF16PS costs the same ~4 ns whatever R; each output element adds its chunks in a fixed
 * order (chunks, then blocks of positions), whatever the caller's split of channels or
 * samples across threads. */
#include <string.h>
#include "bf16.h"
#include "conv.h"
#include "gemm_bf16.h"

#if NB_HAVE_GEMM_BF16_X86
#include "bf16_512.h"

#define TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

bool nb_k_conv_amx_available(void) {
    return nb_k_gemm_amx_available() && !strcmp(nb_k_bf16_kernel(), "amx");
}

NB_BF16_512_TARGET void nb_k_pair_plane(uint32_t *pp, const uint16_t *xb, int64_t n, int64_t dw) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512i a = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(xb + j)));
        __m512i b = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(xb + j + dw)));
        _mm512_storeu_si512(pp + j, _mm512_or_si512(a, _mm512_slli_epi32(b, 16)));
    }
    for (; j < n; j++) pp[j] = (uint32_t)xb[j] | (uint32_t)xb[j + dw] << 16;
}

NB_BF16_512_TARGET void nb_k_rows_to_bf16(uint16_t *dst, int64_t ldd, const float *src, int64_t lds,
                                           int64_t rows, int64_t n) {
    const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33,
                                         31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t r = 0; r < rows; r++, dst += ldd, src += lds)
        for (int64_t j = 0; j < n; j += 16) { /* the high halves, gathered by a word permute */
            __mmask16 m = nb_k_lanes16(n - j);
            __m512i h = _mm512_permutexvar_epi16(odd, b16_round_hi(_mm512_maskz_loadu_epi32(m, src + j)));
            _mm256_mask_storeu_epi16(dst + j, m, _mm512_castsi512_si256(h));
        }
}

/* C tiles 0..NC-1 (16 channels x 16 positions each, positions i0 + 16 c) += every chunk's A
 * tile times its B tiles, read straight from the paired plane (row r of chunk ch at
 * pp + base[ch] + r stride). A and B tiles alternate between two registers each, so that a
 * load never waits for the product still reading the previous one. */
#define FWD_TILES(NC)                                                                        \
    do {                                                                                     \
        for (int64_t ch = 0; ch < nch; ch++) {                                               \
            const uint32_t *bq = pp + base[ch] + i0;                                         \
            if (ch & 1) _tile_loadd(5, wp + ch * 16 * R, R * 4);                             \
            else _tile_loadd(4, wp + ch * 16 * R, R * 4);                                    \
            FWD_TDP(0, 6);                                                                   \
            if ((NC) > 1) FWD_TDP(1, 7);                                                     \
            if ((NC) > 2) FWD_TDP(2, 6);                                                     \
            if ((NC) > 3) FWD_TDP(3, 7);                                                     \
        }                                                                                    \
    } while (0)
#define FWD_TDP(C, B)                                                                        \
    do {                                                                                     \
        _tile_loadd(B, bq + 16 * (C), stride * 4);                                           \
        if (ch & 1) _tile_dpbf16ps(C, 5, B);                                                 \
        else _tile_dpbf16ps(C, 4, B);                                                        \
    } while (0)

TARGET void nb_k_conv_amx(float *out, int64_t os, int64_t O, const uint32_t *pp, const int64_t *base,
                          int64_t nch, int64_t R, int64_t stride, const uint32_t *wp, int64_t n) {
    int rows = O < 16 ? (int)O : 16; /* fewer channels: C and A tiles of fewer rows */
    nb_k_amx_config(rows, rows, (int)(4 * R), (int)R);
    for (int64_t o0 = 0; o0 < O; o0 += 16, wp += 16 * R * nch, out += 16 * os) {
        for (int64_t i0 = 0; i0 < n; i0 += 64) {
            int64_t nc = (n - i0 + 15) / 16;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            if (nc >= 4) FWD_TILES(4);
            else if (nc == 3) FWD_TILES(3);
            else if (nc == 2) FWD_TILES(2);
            else FWD_TILES(1);
            _tile_stored(0, out + i0, os * 4);
            if (nc > 1) _tile_stored(1, out + i0 + 16, os * 4);
            if (nc > 2) _tile_stored(2, out + i0 + 32, os * 4);
            if (nc > 3) _tile_stored(3, out + i0 + 48, os * 4);
        }
    }
}

enum { BTILES = 64 }; /* B tiles of the weight gradient prepared at once (64 KB) */

TARGET void nb_k_conv_amx_dw(float *acc, int64_t lda, int64_t O, const uint16_t *gy, int64_t gs,
                             const uint16_t *x, const int64_t *base, int64_t nch, int64_t R,
                             int64_t stride, int64_t n) {
    static _Thread_local uint32_t btiles[BTILES * 256] __attribute__((aligned(64)));
    int64_t ni = (n + 31) / 32, no = (O + 15) / 16;
    for (int64_t ob0 = 0; ob0 < no; ob0 += BTILES) { /* channel blocks, BTILES at a time */
        int64_t nob = no - ob0 < BTILES ? no - ob0 : BTILES, gi = BTILES / nob;
        for (int64_t b0 = 0; b0 < ni; b0 += gi) { /* position blocks, gi at a time */
            int64_t nb = ni - b0 < gi ? ni - b0 : gi;
            for (int64_t b = 0; b < nb; b++) /* B tiles: gy transposed, pairs of positions */
                for (int64_t ob = 0; ob < nob; ob++) {
                    int64_t oc = 16 * (ob0 + ob), i = 32 * (b0 + b);
                    uint32_t *t = btiles + (b * nob + ob) * 256;
                    b16_pairs_transposed((nb_k_operand){gy + oc * gs, NB_BF16, gs}, i, O - oc, n - i, t,
                                         t + 8, 16);
                }
            nb_k_amx_config((int)R, (int)R, 64, 16);
            for (int64_t ob = 0; ob < nob; ob++)
                for (int64_t ch = 0; ch < nch; ch += 4) { /* four chunks at a time: four chains */
                    int64_t m = nch - ch < 4 ? nch - ch : 4;
                    float *c = acc + ch * R * lda + 16 * (ob0 + ob);
                    int64_t cs = R * lda; /* from one chunk's block of acc to the next */
                    _tile_loadd(0, c, lda * 4);
                    if (m > 1) _tile_loadd(1, c + cs, lda * 4);
                    if (m > 2) _tile_loadd(2, c + 2 * cs, lda * 4);
                    if (m > 3) _tile_loadd(3, c + 3 * cs, lda * 4);
                    for (int64_t b = 0; b < nb; b++) {
                        const uint16_t *a = x + 32 * (b0 + b);
                        const uint32_t *bt = btiles + (b * nob + ob) * 256;
                        if (b & 1) _tile_loadd(7, bt, 64);
                        else _tile_loadd(6, bt, 64);
#define DW_CHAIN(C, AT)                                                                      \
    do {                                                                                     \
        _tile_loadd(AT, a + base[ch + C], stride * 2);                                       \
        if (b & 1) _tile_dpbf16ps(C, AT, 7);                                                 \
        else _tile_dpbf16ps(C, AT, 6);                                                       \
    } while (0)
                        DW_CHAIN(0, 4);
                        if (m > 1) DW_CHAIN(1, 5);
                        if (m > 2) DW_CHAIN(2, 4);
                        if (m > 3) DW_CHAIN(3, 5);
#undef DW_CHAIN
                    }
                    _tile_stored(0, c, lda * 4);
                    if (m > 1) _tile_stored(1, c + cs, lda * 4);
                    if (m > 2) _tile_stored(2, c + 2 * cs, lda * 4);
                    if (m > 3) _tile_stored(3, c + 3 * cs, lda * 4);
                }
        }
    }
}

#else
bool nb_k_conv_amx_available(void) { return false; }
void nb_k_pair_plane(uint32_t *pp, const uint16_t *xb, int64_t n, int64_t dw) {
    for (int64_t j = 0; j < n; j++) pp[j] = (uint32_t)xb[j] | (uint32_t)xb[j + dw] << 16;
}
void nb_k_rows_to_bf16(uint16_t *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; r++) nb_k_f32_to_bf16(dst + r * ldd, src + r * lds, n);
}
void nb_k_conv_amx(float *out, int64_t os, int64_t O, const uint32_t *pp, const int64_t *base,
                   int64_t nch, int64_t R, int64_t stride, const uint32_t *wp, int64_t n) {
    (void)out, (void)os, (void)O, (void)pp, (void)base, (void)nch, (void)R, (void)stride, (void)wp, (void)n;
}
void nb_k_conv_amx_dw(float *acc, int64_t lda, int64_t O, const uint16_t *gy, int64_t gs,
                      const uint16_t *x, const int64_t *base, int64_t nch, int64_t R, int64_t stride,
                      int64_t n) {
    (void)acc, (void)lda, (void)O, (void)gy, (void)gs, (void)x, (void)base, (void)nch, (void)R,
        (void)stride, (void)n;
}
#endif
