/* rnn.h - the recurrent layer op behind nn.RNN/LSTM/GRU and their cells (internal to nabla).
 * The modules in src/nn/rnn.c validate shapes and call nb__rnn; it trusts what it is given. */
#ifndef NABLA_OPS_RNN_H
#define NABLA_OPS_RNN_H
#include "ops_internal.h"

typedef enum nb__rnn_mode { NB__RNN_TANH, NB__RNN_RELU, NB__LSTM, NB__GRU } nb__rnn_mode;

typedef struct nb__rnn_cfg {
    nb__rnn_mode mode;
    int64_t input_size, hidden_size, num_layers;
    int dirs;         /* 1, or 2 when bidirectional */
    bool bias;        /* parameters come in fours (w_ih, w_hh, b_ih, b_hh), else in pairs */
    bool batch_first; /* batched x and output are [B, T, F] rather than [T, B, F] */
    bool cell;        /* one step: x [B, I] or [I]; output h' and states shaped like it */
    float dropout;    /* on the outputs of every layer but the last, when training */
    bool training;
    nb_rng *rng;      /* for dropout */
} nb__rnn_cfg;

/* Gates per hidden unit: RNN 1, GRU 3 (r, z, n), LSTM 4 (i, f, g, o). */
static inline int64_t nb__rnn_gates(nb__rnn_mode m) {
    return m == NB__LSTM ? 4 : m == NB__GRU ? 3 : 1;
}

/* Run the whole sequence through all layers and directions as one autograd node.
 * x: [T, B, I] ([B, T, I] batch_first), [T, I] unbatched, or for a cell [B, I] / [I].
 * h0, c0: initial states [L*D, B, H] ([L*D, H] unbatched, [B, H] / [H] for a cell) or NULL
 * (zeros). w: the L*D*(4 or 2) parameters in PyTorch's order (weight_ih_l0, weight_hh_l0,
 * bias_ih_l0, bias_hh_l0, weight_ih_l0_reverse, ...). Returns the output (the last layer's h
 * at every step; h' for a cell) and, when asked, the final states in *h_n and *c_n (c_n for
 * LSTM only). Gradients reach x, h0, c0 and w from the output and from both final states. */
nb_tensor *nb__rnn(nb_arena *ar, const nb__rnn_cfg *cfg, nb_tensor *x, nb_tensor *h0,
                   nb_tensor *c0, nb_tensor *const *w, nb_tensor **h_n, nb_tensor **c_n);

#endif
