/* rnn.h - fused time-step loops of the recurrent layers (RNN, LSTM, GRU).
 *
 * One call handles one time step of one direction for a [B, H] batch: every gate nonlinearity
 * and the state update in a single pass over the gates. Matrices are row-major; `ld*` are
 * leading dimensions (row strides). No pointer may be NULL: a zero initial state is a buffer of
 * zeros. The recurrent matrix products are not here: the layer calls nb_k_gemm between steps.
 *
 * Gate order is PyTorch's: LSTM [i, f, g, o], GRU [r, z, n].
 */
#ifndef NABLA_K_RNN_H
#define NABLA_K_RNN_H
#include <stdbool.h>
#include <stdint.h>

/* Vectorisable exp, sigmoid and tanh over n floats (a few ulp; the RNN kernels inline them). */
void nb_k_vexp(float *y, const float *x, int64_t n);
void nb_k_vsigmoid(float *y, const float *x, int64_t n);
void nb_k_vtanh(float *y, const float *x, int64_t n);

/* out[j] = beta*out[j] + sum_i x[i, j] over [rows, cols] (the bias gradients). */
void nb_k_colsum(float *out, const float *x, int64_t rows, int64_t cols, float beta);

/* The biases are added here, in PyTorch's order: RNN and LSTM pre-activations are
 * (h W_hh^T + b_hh) + (x W_ih^T + b_ih), from gx = x W_ih^T, bi = b_ih, gh = h_prev W_hh^T,
 * bh = b_hh (zeros when there is no bias or no previous state); gx and gh are [B, G*H]. */

/* Elman RNN: h = act(pre), act = tanh or relu; h [B, H] with ld ldh. */
void nb_k_rnn_step(int64_t B, int64_t H, const float *gx, const float *bi, const float *gh,
                   const float *bh, float *h, int64_t ldh, bool relu);
/* dpre = (dy + dh) * act'(.) from the output h; dy has ld ldy, dh and dpre are [B, H]. */
void nb_k_rnn_step_back(int64_t B, int64_t H, const float *h, int64_t ldh, const float *dy,
                        int64_t ldy, const float *dh, float *dpre, bool relu);

/* LSTM: gates [B, 4H] holds gx and is overwritten with i, f, g, o; c = f*c_prev + i*g,
 * tc = tanh(c), h = o*tc. c_prev, c and tc are [B, H] contiguous. */
void nb_k_lstm_step(int64_t B, int64_t H, float *gates, const float *bi, const float *gh,
                    const float *bh, const float *c_prev, float *c, float *tc, float *h,
                    int64_t ldh);
/* Backward of one LSTM step from the saved gates, c_prev and tc. The gradient reaching h is
 * dy + dh; dc holds the gradient of c on entry and that of c_prev on return. Writes dgates
 * [B, 4H] (the gradient of the pre-activations). */
void nb_k_lstm_step_back(int64_t B, int64_t H, const float *gates, const float *c_prev,
                         const float *tc, const float *dy, int64_t ldy, const float *dh, float *dc,
                         float *dgates);

/* GRU: gx [B, 3H] holds x W_ih^T and is overwritten with r, z, n; gh [B, 3H] is
 * h_prev W_hh^T. With xg = gx + b_ih, hg = gh + b_hh: r = s(hg_r + xg_r), z = s(hg_z + xg_z),
 * n = tanh(xg_n + hg_n * r), h = (h_prev - n) * z + n. */
void nb_k_gru_step(int64_t B, int64_t H, float *gx, const float *bi, const float *gh,
                   const float *bh, const float *h_prev, int64_t ldhp, float *h, int64_t ldh);
/* Backward of one GRU step. dh holds the recurrent gradient reaching h on entry (dy is added)
 * and the direct part of the gradient of h_prev (dh * z) on return; the caller adds
 * dgh @ W_hh. Writes dgx and dgh [B, 3H], the gradients of x W_ih^T and h_prev W_hh^T. */
void nb_k_gru_step_back(int64_t B, int64_t H, const float *gates, const float *gh,
                        const float *bh, const float *h_prev, int64_t ldhp, const float *dy,
                        int64_t ldy, float *dh, float *dgx, float *dgh);

#endif
