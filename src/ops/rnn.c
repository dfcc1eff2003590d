/* rnn.c - multi-layer, optionally bidirectional RNN / LSTM / GRU over a whole sequence, as
 * one autograd node: the forward runs layer by layer, the backward (through time) undoes it
 * layer by layer in reverse.
 *
 * Per layer and direction the forward is
 *   G = X W_ih^T                      one GEMM for all T steps (T*B rows)
 *   for each step t:  gh = h_{t-1} W_hh^T  (one GEMM of B rows), then one fused kernel adds
 *                     the biases and G_t, computes the gates and the new state h_t (and c_t)
 * and the backward is
 *   for each step t, last to first: one fused kernel turns dh_t (and dc_t) into dG_t and
 *                     dc_{t-1}; dh_{t-1} = dG_t W_hh   (one GEMM of B rows)
 *   dW_ih = dG^T X,  dW_hh = dG^T H_prev,  db = sum dG,  dX = dG W_ih   (GEMMs over T*B rows)
 *
 * Under bfloat16 autocast every one of these GEMMs takes bfloat16 operands and sums in float32;
 * the gates, the biases and the states stay float32.
 *
 * Internally everything is time-major ([T, B, F], row (t, b) at t*B + b), so every step is a
 * block of B consecutive rows; a batch_first x is transposed once on the way in, and the last
 * layer writes its h_t into the [B, T, F] output as it goes. All buffers (gates, cell states,
 * gradients) live in the step arena, allocated once per call: no per-step allocation.
 *
 * The final states h_n, c_n are separate tensors, each with a small node whose backward only
 * makes sure the output has a gradient buffer, so that this node runs when the loss depends on
 * the final states alone; the backward then reads h_n->grad and c_n->grad directly.
 *
 * When nothing is recorded (no-grad, or no input requires grad: evaluation), the forward keeps
 * only what the next step needs: the input projection is computed one step at a time, the
 * gates, c_t and tanh(c_t) live in one-step buffers (c_t in two, alternating), and the last
 * layer writes h_t straight into the output, read back from there as h_{t-1}. An LSTM of 128
 * over 28 steps evaluating a batch of 1000 needs 20 MB of arena instead of 120. Every element
 * goes through the same kernels in the same order (a batch of one keeps the projection of all
 * steps, which is small, so that its GEMM is not a matrix-vector product), so with nabla's
 * AVX-512 GEMM, whose elements do not depend on the row count, the output is the same bits. */
#include "rnn.h"
#include "../kernels/kernels.h"
#include "../kernels/rnn.h"

/* Where a layer's input or output sequence lives: the B rows of step t start at p + t*ts and
 * are ld floats apart (time-major [T, B, F]: ts = B*F, ld = F; batch-major: ts = F, ld = T*F). */
typedef struct seq {
    float *p;
    int64_t ts, ld;
} seq;

typedef struct rnn_saved {
    nb__rnn_cfg cfg;
    int64_t T, B;
    bool bf;                  /* x and output are batch-major */
    bool lean;                /* nothing recorded: one-step buffers (see the top of the file) */
    nb_dtype ct;              /* the type of the gate products (NB_BF16 under autocast) */
    seq x0, ylast;            /* lean: the first layer's input, the last layer's output */
    nb_tensor *x, *h0, *c0, *const *w;
    nb_tensor *hn, *cn;       /* final states (NULL when not asked for) */
    float *zeros;             /* [B, G*H] of zeros: a zero initial state, a missing bias */
    float *ghs;               /* [B, G*H] scratch: h_{t-1} W_hh^T of RNN / LSTM */
    float **X, **Y, **mask;   /* per layer: input and output [T, B, F], dropout mask on Y */
    float **G, **C, **TC, **GH; /* per layer-direction: gates, c_t, tanh(c_t), GRU's h W_hh^T */
} rnn_saved;

static float *fbuf(nb_arena *ar, int64_t n) {
    return nb__arena_alloc(ar, sizeof(float) * (size_t)(n > 0 ? n : 1));
}

static const char *op_name(const nb__rnn_cfg *c) {
    static const char *const names[2][4] = {{"rnn_tanh", "rnn_relu", "lstm", "gru"},
                                            {"rnn_tanh_cell", "rnn_relu_cell", "lstm_cell", "gru_cell"}};
    return names[c->cell][c->mode];
}

/* [B, T, F] -> [T, B, F] (or back with `back`), dst = beta*dst + src. */
static void transpose_bt(float *dst, const float *src, int64_t B, int64_t T, int64_t F, bool back,
                         float beta) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const float *s = back ? src + (t * B + b) * F : src + (b * T + t) * F;
            float *d = back ? dst + (b * T + t) * F : dst + (t * B + b) * F;
            nb_k_acc(d, s, F, beta);
        }
}

/* ---- forward ---------------------------------------------------------------------------- */
/* One direction of one layer: fills G (and C, TC, GH), writes h_t into Y's columns d*H.. and,
 * for the last layer of a batch_first run, into out. Lean: G, TC, GH hold one step, C two, and
 * the input and output sequences are s->x0 / s->ylast where they are the layer's. */
static void layer_dir_forward(const rnn_saved *s, int l, int d, float *out) {
    const nb__rnn_cfg *c = &s->cfg;
    int64_t T = s->T, B = s->B, H = c->hidden_size, D = c->dirs, DH = D * H;
    int64_t GH = nb__rnn_gates(c->mode) * H, I = l ? DH : c->input_size;
    int k = l * c->dirs + d, np = c->bias ? 4 : 2;
    nb_tensor *const *w = s->w + k * np;
    const float *Wih = nb_f32(w[0]), *Whh = nb_f32(w[1]);
    const float *bih = c->bias ? nb_f32(w[2]) : NULL, *bhh = c->bias ? nb_f32(w[3]) : NULL;
    bool lean = s->lean, last = l == c->num_layers - 1;
    seq X = lean && l == 0 ? s->x0 : (seq){s->X[l], B * I, I};
    seq Y = lean && last ? s->ylast : (seq){s->Y[l], B * DH, DH};
    int64_t gs = lean ? 0 : B * GH, cs = lean ? 0 : B * H; /* per-step strides of G, TC, GH */
    const float *h0 = s->h0 ? nb_f32(s->h0) + k * B * H : NULL;
    const float *c0 = s->c0 ? nb_f32(s->c0) + k * B * H : s->zeros;

    /* input projection of all steps, G = X W_ih^T (lean: one step at a time, below); the
     * kernels add the biases */
    if (!lean)
        nb_k_gemm_as(s->ct, false, true, T * B, GH, I, 1.0f, X.p, I, Wih, I, 0.0f, s->G[k], GH);
    const float *bi = bih ? bih : s->zeros, *bh = bhh ? bhh : s->zeros;

    for (int64_t step = 0; step < T; step++) {
        int64_t t = d ? T - 1 - step : step, tp = d ? t + 1 : t - 1;
        const float *hp = step ? Y.p + tp * Y.ts + d * H : h0; /* NULL: zeros */
        int64_t ldhp = step ? Y.ld : H;
        float *g = s->G[k] + t * gs, *y = Y.p + t * Y.ts + d * H;
        if (lean)
            nb_k_gemm_as(s->ct, false, true, B, GH, I, 1.0f, X.p + t * X.ts, X.ld, Wih, I, 0.0f, g, GH);
        /* gh = h_{t-1} W_hh^T (GRU keeps it for the backward) */
        float *gh = c->mode == NB__GRU ? s->GH[k] + t * gs : s->ghs;
        if (hp) nb_k_gemm_as(s->ct, false, true, B, GH, H, 1.0f, hp, ldhp, Whh, H, 0.0f, gh, GH);
        else if (c->mode == NB__GRU) memset(gh, 0, sizeof(float) * (size_t)(B * GH));
        else gh = s->zeros;
        switch (c->mode) {
        case NB__RNN_TANH:
        case NB__RNN_RELU:
            nb_k_rnn_step(B, H, g, bi, gh, bh, y, Y.ld, c->mode == NB__RNN_RELU);
            break;
        case NB__LSTM: { /* lean: c_t in buffer step % 2 */
            float *ct = s->C[k] + (lean ? step % 2 * B * H : t * B * H);
            const float *cp = !step ? c0 : s->C[k] + (lean ? (step - 1) % 2 * B * H : tp * B * H);
            nb_k_lstm_step(B, H, g, bi, gh, bh, cp, ct, s->TC[k] + t * cs, y, Y.ld);
            break;
        }
        case NB__GRU:
            nb_k_gru_step(B, H, g, bi, gh, bh, hp ? hp : s->zeros, hp ? ldhp : H, y, Y.ld);
            break;
        }
        if (out) /* batch_first output: row (b, t) */
            for (int64_t b = 0; b < B; b++)
                memcpy(out + (b * T + t) * DH + d * H, y + b * DH, sizeof(float) * (size_t)H);
    }
    int64_t tl = d ? 0 : T - 1; /* the step processed last */
    if (s->hn)
        for (int64_t b = 0; b < B; b++)
            memcpy(nb_f32(s->hn) + (k * B + b) * H, Y.p + tl * Y.ts + b * Y.ld + d * H,
                   sizeof(float) * (size_t)H);
    if (s->cn)
        memcpy(nb_f32(s->cn) + k * B * H, s->C[k] + (lean ? (T - 1) % 2 * B * H : tl * B * H),
               sizeof(float) * (size_t)(B * H));
}

/* ---- backward ----------------------------------------------------------------------------- */
typedef struct grads {
    float *dh, *dc, *bsum; /* [B, H], [B, H], [GH] scratch */
    float *dh0, *dc0;      /* gradient buffers of h0, c0 (NULL when not wanted) */
    float bh0, bc0;        /* their betas */
} grads;

/* Gradient buffer of a parameter (NULL when it does not want one). */
static float *pgrad(nb_tensor *p, float *beta) {
    return nb__wants_grad(p) ? nb__grad(p, beta) : NULL;
}

/* One direction of one layer, through time. dy/ldy/dy_t_stride: the gradient of this layer's
 * output Y at step t is dy + t*dy_t_stride + d*H, rows ldy apart. dX (ld I) receives
 * dG W_ih with beta dxbeta (NULL: not wanted). */
static void layer_dir_backward(const rnn_saved *s, grads *gr, int l, int d, const float *dy,
                               int64_t dy_t_stride, int64_t ldy, float *dX, float dxbeta,
                               nb_arena *ar) {
    const nb__rnn_cfg *c = &s->cfg;
    int64_t T = s->T, B = s->B, H = c->hidden_size, D = c->dirs, DH = D * H;
    int64_t GH = nb__rnn_gates(c->mode) * H, I = l ? DH : c->input_size;
    int k = l * c->dirs + d, np = c->bias ? 4 : 2;
    nb_tensor *const *w = s->w + k * np;
    const float *Wih = nb_f32(w[0]), *Whh = nb_f32(w[1]), *bhh = c->bias ? nb_f32(w[3]) : NULL;
    const float *Y = s->Y[l], *G = s->G[k];
    const float *h0 = s->h0 ? nb_f32(s->h0) + k * B * H : NULL;
    const float *c0 = s->c0 ? nb_f32(s->c0) + k * B * H : s->zeros;
    float *dG = fbuf(ar, T * B * GH), *dGH = c->mode == NB__GRU ? fbuf(ar, T * B * GH) : dG;
    if (!dG || !dGH) {
        nb__backward_fail();
        return;
    }
    /* gradients arriving through the final states */
    const nb_tensor *ghn = s->hn ? s->hn->grad : NULL, *gcn = s->cn ? s->cn->grad : NULL;
    if (ghn) memcpy(gr->dh, nb_f32(ghn) + k * B * H, sizeof(float) * (size_t)(B * H));
    else memset(gr->dh, 0, sizeof(float) * (size_t)(B * H));
    if (c->mode == NB__LSTM) {
        if (gcn) memcpy(gr->dc, nb_f32(gcn) + k * B * H, sizeof(float) * (size_t)(B * H));
        else memset(gr->dc, 0, sizeof(float) * (size_t)(B * H));
    }
    for (int64_t step = T - 1; step >= 0; step--) {
        int64_t t = d ? T - 1 - step : step, tp = d ? t + 1 : t - 1;
        const float *hp = step ? Y + tp * B * DH + d * H : h0;
        int64_t ldhp = step ? DH : H;
        const float *dyt = dy + t * dy_t_stride + d * H;
        float *dg = dG + t * B * GH;
        bool need_dh = step > 0 || gr->dh0; /* dh_{t-1} is needed further on */
        switch (c->mode) {
        case NB__RNN_TANH:
        case NB__RNN_RELU:
            nb_k_rnn_step_back(B, H, Y + t * B * DH + d * H, DH, dyt, ldy, gr->dh, dg,
                               c->mode == NB__RNN_RELU);
            if (need_dh) nb_k_gemm_as(s->ct, false, false, B, H, H, 1.0f, dg, GH, Whh, H, 0.0f, gr->dh, H);
            break;
        case NB__LSTM: {
            const float *cp = step ? s->C[k] + tp * B * H : c0;
            nb_k_lstm_step_back(B, H, G + t * B * GH, cp, s->TC[k] + t * B * H, dyt, ldy, gr->dh,
                                gr->dc, dg);
            if (need_dh) nb_k_gemm_as(s->ct, false, false, B, H, GH, 1.0f, dg, GH, Whh, H, 0.0f, gr->dh, H);
            break;
        }
        case NB__GRU: {
            float *dgh = dGH + t * B * GH;
            nb_k_gru_step_back(B, H, G + t * B * GH, s->GH[k] + t * B * GH, bhh ? bhh : s->zeros,
                               hp ? hp : s->zeros, hp ? ldhp : H, dyt, ldy, gr->dh, dg, dgh);
            if (need_dh) nb_k_gemm_as(s->ct, false, false, B, H, GH, 1.0f, dgh, GH, Whh, H, 1.0f, gr->dh, H);
            break;
        }
        }
    }
    if (gr->dh0) nb_k_acc(gr->dh0 + k * B * H, gr->dh, B * H, gr->bh0);
    if (gr->dc0) nb_k_acc(gr->dc0 + k * B * H, gr->dc, B * H, gr->bc0);

    float beta, *g;
    if ((g = pgrad(w[0], &beta))) /* dW_ih = dG^T X */
        nb_k_gemm_as(s->ct, true, false, GH, I, T * B, 1.0f, dG, GH, s->X[l], I, beta, g, I);
    if ((g = pgrad(w[1], &beta))) { /* dW_hh = dG_t^T h_{t-1}: the shifted outputs, then h0 */
        const float *a = d ? dGH : dGH + B * GH, *hprev = d ? Y + B * DH + d * H : Y + d * H;
        nb_k_gemm_as(s->ct, true, false, GH, H, (T - 1) * B, 1.0f, a, GH, hprev, DH, beta, g, H);
        if (h0) nb_k_gemm_as(s->ct, true, false, GH, H, B, 1.0f, dGH + (d ? T - 1 : 0) * B * GH, GH, h0, H,
                          1.0f, g, H);
    }
    if (c->bias) {
        if ((g = pgrad(w[2], &beta))) nb_k_colsum(g, dG, T * B, GH, beta);
        if ((g = pgrad(w[3], &beta))) {
            if (c->mode == NB__GRU) {
                nb_k_colsum(g, dGH, T * B, GH, beta);
            } else { /* same gradient as b_ih */
                nb_k_colsum(gr->bsum, dG, T * B, GH, 0.0f);
                nb_k_acc(g, gr->bsum, GH, beta);
            }
        }
    }
    if (dX) nb_k_gemm_as(s->ct, false, false, T * B, I, GH, 1.0f, dG, GH, Wih, I, dxbeta, dX, I);
}

static void rnn_backward(nb_node *n) {
    rnn_saved *s = n->saved;
    const nb__rnn_cfg *c = &s->cfg;
    nb_arena *ar = n->out->internal.arena;
    int64_t T = s->T, B = s->B, H = c->hidden_size, D = c->dirs, DH = D * H;
    int64_t GH = nb__rnn_gates(c->mode) * H, L = c->num_layers;
    grads gr = {fbuf(ar, B * H), fbuf(ar, B * H), fbuf(ar, GH), NULL, NULL, 0, 0};
    if (!gr.dh || !gr.dc || !gr.bsum) {
        nb__backward_fail();
        return;
    }
    if (nb__wants_grad(s->h0) && !(gr.dh0 = nb__grad(s->h0, &gr.bh0))) return;
    if (nb__wants_grad(s->c0) && !(gr.dc0 = nb__grad(s->c0, &gr.bc0))) return;
    /* the gradient of the last layer's output, in the output's layout */
    const float *dy = nb_f32(n->out->grad);
    int64_t dy_t_stride = s->bf ? DH : B * DH, ldy = s->bf ? T * DH : DH;
    for (int64_t l = L - 1; l >= 0; l--) {
        int64_t I = l ? DH : c->input_size;
        float *dX = NULL, dxbeta = 0.0f, *xg = NULL, xbeta = 0.0f;
        if (l > 0) {
            dX = fbuf(ar, T * B * I);
        } else if (nb__wants_grad(s->x)) {
            if (!(xg = nb__grad(s->x, &xbeta))) return;
            dX = s->bf ? fbuf(ar, T * B * I) : xg; /* batch_first: time-major scratch first */
            dxbeta = s->bf ? 0.0f : xbeta;
        }
        if ((l > 0 || xg) && !dX) {
            nb__backward_fail();
            return;
        }
        for (int d = 0; d < D; d++)
            layer_dir_backward(s, &gr, (int)l, d, dy, dy_t_stride, ldy, dX, d ? 1.0f : dxbeta, ar);
        if (l > 0) { /* the gradient of the layer below's output, through the dropout mask */
            if (s->mask[l - 1]) nb_k_mul_acc(dX, dX, s->mask[l - 1], T * B * I, 0.0f);
            dy = dX;
            dy_t_stride = B * DH;
            ldy = DH;
        } else if (xg && s->bf) {
            transpose_bt(xg, dX, B, T, I, true, xbeta);
        }
    }
}

/* h_n / c_n: their gradient is read by rnn_backward; make sure that node runs. */
static void state_backward(nb_node *n) { nb__grad_zeroed(n->in[0]); }

nb_tensor *nb__rnn(nb_arena *ar, const nb__rnn_cfg *cfg, nb_tensor *x, nb_tensor *h0,
                   nb_tensor *c0, nb_tensor *const *w, nb_tensor **h_n, nb_tensor **c_n) {
    int64_t H = cfg->hidden_size, D = cfg->dirs, DH = D * H, L = cfg->num_layers;
    int64_t GH = nb__rnn_gates(cfg->mode) * H, I = cfg->input_size, T, B;
    int64_t oshape[3], sshape[3];
    int ond, snd;
    bool bf = false;
    if (cfg->cell) { /* h' = cell(x, h): one step, states shaped like the output */
        T = 1;
        B = x->ndim == 2 ? x->shape[0] : 1;
        ond = snd = x->ndim;
        oshape[0] = sshape[0] = x->ndim == 2 ? B : H;
        oshape[1] = sshape[1] = H;
    } else if (x->ndim == 2) { /* unbatched [T, I] */
        T = x->shape[0];
        B = 1;
        ond = snd = 2;
        memcpy(oshape, (int64_t[]){T, DH}, sizeof(int64_t) * 2);
        memcpy(sshape, (int64_t[]){L * D, H}, sizeof(int64_t) * 2);
    } else {
        bf = cfg->batch_first;
        T = x->shape[bf ? 1 : 0];
        B = x->shape[bf ? 0 : 1];
        ond = snd = 3;
        memcpy(oshape, bf ? (int64_t[]){B, T, DH} : (int64_t[]){T, B, DH}, sizeof(int64_t) * 3);
        memcpy(sshape, (int64_t[]){L * D, B, H}, sizeof(int64_t) * 3);
    }
    nb_tensor *out = nb__out(ar, NB_FLOAT32, ond, oshape);
    nb_tensor *hn = h_n ? nb__out(ar, NB_FLOAT32, snd, sshape) : NULL;
    nb_tensor *cn = c_n && cfg->mode == NB__LSTM ? nb__out(ar, NB_FLOAT32, snd, sshape) : NULL;
    /* the node's inputs, in the arena: x, the parameters, h0, c0 */
    int64_t nw = L * D * (cfg->bias ? 4 : 2);
    nb_tensor **in = nb__arena_alloc(ar, sizeof *in * (size_t)(nw + 3));
    rnn_saved *s = nb__arena_alloc(ar, sizeof *s);
    void *arrays = nb__arena_alloc(ar, sizeof(float *) * (size_t)(3 * L + 4 * L * D));
    if (!out || (h_n && !hn) || (c_n && cfg->mode == NB__LSTM && !cn) || !in || !s || !arrays)
        return NULL;
    int nin = 0;
    in[nin++] = x;
    for (int64_t i = 0; i < nw; i++) in[nin++] = w[i];
    if (h0) in[nin++] = h0;
    if (c0) in[nin++] = c0;
    bool lean = !nb__should_record(nin, in) && B > 1;
    memset(arrays, 0, sizeof(float *) * (size_t)(3 * L + 4 * L * D));
    *s = (rnn_saved){.cfg = *cfg, .T = T, .B = B, .bf = bf, .lean = lean,
                     .ct = nb__product_type(ar, NULL, NULL), .x = x, .h0 = h0,
                     .c0 = c0, .w = in + 1, .hn = hn, .cn = cn, .X = arrays};
    s->Y = s->X + L;
    s->mask = s->Y + L;
    s->G = s->mask + L;
    s->C = s->G + L * D;
    s->TC = s->C + L * D;
    s->GH = s->TC + L * D;
    int64_t nz = (B > 1 ? B : 1) * GH;
    if (!(s->zeros = fbuf(ar, nz)) || !(s->ghs = fbuf(ar, B * GH))) return NULL;
    memset(s->zeros, 0, sizeof(float) * (size_t)nz);
    if (lean) { /* read x and write the output where they are */
        s->x0 = bf ? (seq){nb_f32(x), I, T * I} : (seq){nb_f32(x), B * I, I};
        s->ylast = bf ? (seq){nb_f32(out), DH, T * DH} : (seq){nb_f32(out), B * DH, DH};
    } else if (bf) { /* time-major copy of x */
        if (!(s->X[0] = fbuf(ar, T * B * I))) return NULL;
        transpose_bt(s->X[0], nb_f32(x), B, T, I, false, 0.0f);
    } else {
        s->X[0] = nb_f32(x);
    }
    int64_t steps = lean ? 1 : T; /* steps kept in G, TC, GH (and C: lean keeps two) */
    for (int64_t l = 0; l < L; l++) {
        bool last = l == L - 1;
        s->Y[l] = last && (lean || !bf) ? nb_f32(out) : fbuf(ar, T * B * DH);
        if (!s->Y[l]) return NULL;
        for (int64_t d = 0; d < D; d++) {
            int64_t k = l * D + d;
            s->G[k] = fbuf(ar, steps * B * GH);
            if (!s->G[k]) return NULL;
            if (cfg->mode == NB__LSTM && (!(s->C[k] = fbuf(ar, (lean ? 2 : T) * B * H)) ||
                                          !(s->TC[k] = fbuf(ar, steps * B * H))))
                return NULL;
            if (cfg->mode == NB__GRU && !(s->GH[k] = fbuf(ar, steps * B * GH))) return NULL;
            layer_dir_forward(s, (int)l, (int)d, last && bf && !lean ? nb_f32(out) : NULL);
        }
        if (last) break;
        if (cfg->training && cfg->dropout > 0.0f) { /* inverted dropout, as nb_dropout */
            int64_t n = T * B * DH;
            float p = cfg->dropout, scale = p == 1.0f ? 0.0f : 1.0f / (1.0f - p);
            float *m = s->mask[l] = fbuf(ar, n), *xn = s->X[l + 1] = fbuf(ar, n);
            if (!m || !xn) return NULL;
            for (int64_t i = 0; i < n; i++) m[i] = nb_rng_uniform(cfg->rng) < p ? 0.0f : scale;
            nb_k_mul_acc(xn, s->Y[l], m, n, 0.0f);
        } else {
            s->X[l + 1] = s->Y[l];
        }
    }
    nb_node *n = lean ? NULL : nb__record(ar, out, op_name(cfg), rnn_backward, nin, in);
    if (n) {
        n->saved = s;
        if (hn) nb__record(ar, hn, "rnn_h_n", state_backward, 1, &out);
        if (cn) nb__record(ar, cn, "rnn_c_n", state_backward, 1, &out);
    }
    if (h_n) *h_n = hn;
    if (c_n) *c_n = cn;
    return out;
}
