/* rnn.c - nn.RNN, nn.LSTM, nn.GRU and nn.RNNCell, nn.LSTMCell, nn.GRUCell: PyTorch's parameter
 * names, shapes, gate order and init (every parameter U(-1/sqrt(hidden), 1/sqrt(hidden))), and
 * its shape checks. The computation is the op in src/ops/rnn.c. */
#include <math.h>
#include <stdio.h>
#include "nn_internal.h"
#include "../ops/rnn.h"

typedef struct rnn_mod {
    nb_module base;
    nb__rnn_cfg cfg; /* training is taken from the module at each forward */
} rnn_mod;

static nb_tensor *seq_forward1(nb_module *m, nb_arena *ar, nb_tensor *x) {
    return nb_rnn_forward(m, ar, x, NULL, NULL, NULL, NULL);
}

static nb_tensor *cell_forward1(nb_module *m, nb_arena *ar, nb_tensor *x) {
    return nb_rnn_cell_forward(m, ar, x, NULL, NULL, NULL);
}

/* PyTorch's extra_repr: "28, 128, num_layers=2, batch_first=True, ..." (RNNBase prints no
 * nonlinearity; RNNCell does). */
static void rnn_repr(const nb_module *m, char *buf, size_t n) {
    const nb__rnn_cfg *c = &((const rnn_mod *)m)->cfg;
    int o = snprintf(buf, n, "%lld, %lld", (long long)c->input_size, (long long)c->hidden_size);
#define MORE(...) o += snprintf(buf + ((size_t)o < n ? (size_t)o : n), (size_t)o < n ? n - (size_t)o : 0, __VA_ARGS__)
    if (!c->cell && c->num_layers != 1) MORE(", num_layers=%lld", (long long)c->num_layers);
    if (!c->bias) MORE(", bias=False");
    if (!c->cell && c->batch_first) MORE(", batch_first=True");
    if (!c->cell && c->dropout != 0.0f) MORE(", dropout=%s", nb__pyfloat32(c->dropout, 0));
    if (!c->cell && c->dirs == 2) MORE(", bidirectional=True");
    if (c->cell && c->mode == NB__RNN_RELU) MORE(", nonlinearity=relu");
#undef MORE
}

static const nb_module_ops seq_ops[4] = {
    {"RNN", seq_forward1, rnn_repr, NULL}, {"RNN", seq_forward1, rnn_repr, NULL},
    {"LSTM", seq_forward1, rnn_repr, NULL}, {"GRU", seq_forward1, rnn_repr, NULL}};
static const nb_module_ops cell_ops[4] = {
    {"RNNCell", cell_forward1, rnn_repr, NULL}, {"RNNCell", cell_forward1, rnn_repr, NULL},
    {"LSTMCell", cell_forward1, rnn_repr, NULL}, {"GRUCell", cell_forward1, rnn_repr, NULL}};

static rnn_mod *as_rnn(nb_module *m, bool cell) {
    const nb_module_ops *ops = cell ? cell_ops : seq_ops;
    return m && m->ops >= ops && m->ops < ops + 4 ? (rnn_mod *)m : NULL;
}

/* For split steps (split.c): dropout between layers draws from a generator shared by the parts
 * of a batch. */
bool nb__rnn_draws_random(const nb_module *m);
bool nb__rnn_draws_random(const nb_module *m) {
    const rnn_mod *r = as_rnn((nb_module *)m, false);
    return r && r->cfg.dropout > 0.0f && r->cfg.num_layers > 1;
}

nb_rnn_opts nb_rnn_defaults(void) {
    return (nb_rnn_opts){.num_layers = 1, .bias = true, .batch_first = false, .dropout = 0.0f,
                         .bidirectional = false, .relu = false, .dropout_rng = NULL};
}

static nb_module *build(nb__rnn_mode mode, bool cell, int64_t input_size, int64_t hidden_size,
                        const nb_rnn_opts *opts, nb_rng *rng) {
    nb_rnn_opts o = opts ? *opts : nb_rnn_defaults();
    const char *type = (cell ? cell_ops : seq_ops)[mode].type;
    if (!(o.dropout >= 0.0f && o.dropout <= 1.0f))
        return nb__null(NB_EINVAL, "%s: dropout should be a number in range [0, 1] representing "
                        "the probability of an element being zeroed", type);
    if (input_size <= 0) return nb__null(NB_EINVAL, "%s: input_size must be greater than zero", type);
    if (hidden_size <= 0) return nb__null(NB_EINVAL, "%s: hidden_size must be greater than zero", type);
    if (o.num_layers <= 0) return nb__null(NB_EINVAL, "%s: num_layers must be greater than zero", type);
    if (o.dropout > 0.0f && !o.dropout_rng)
        return nb__null(NB_EINVAL, "%s: dropout > 0 needs opts.dropout_rng", type);
    if (!rng) return nb__null(NB_EINVAL, "%s: rng is NULL", type);
    rnn_mod *r = (rnn_mod *)nb_module_alloc(sizeof *r, &(cell ? cell_ops : seq_ops)[mode]);
    if (!r) return NULL;
    int dirs = o.bidirectional ? 2 : 1;
    r->cfg = (nb__rnn_cfg){.mode = mode, .input_size = input_size, .hidden_size = hidden_size,
                           .num_layers = o.num_layers, .dirs = dirs, .bias = o.bias,
                           .batch_first = o.batch_first, .cell = cell, .dropout = o.dropout,
                           .training = true, .rng = o.dropout_rng};
    int64_t G = nb__rnn_gates(mode) * hidden_size;
    float stdv = (float)(1.0 / sqrt((double)hidden_size));
    static const char *const kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (int64_t l = 0; l < o.num_layers; l++)
        for (int d = 0; d < dirs; d++)
            for (int p = 0; p < (o.bias ? 4 : 2); p++) {
                char name[64];
                if (cell) snprintf(name, sizeof name, "%s", kinds[p]);
                else snprintf(name, sizeof name, "%s_l%lld%s", kinds[p], (long long)l, d ? "_reverse" : "");
                int64_t shape[2] = {G, p == 0 ? (l ? dirs * hidden_size : input_size) : hidden_size};
                /* reset_parameters(): init.uniform_(w, -stdv, stdv) for each, in this order */
                nb_tensor *t = nb_uniform(NULL, p < 2 ? 2 : 1, shape, -stdv, stdv, rng);
                if (nb_module_add_param(&r->base, name, t)) goto fail;
            }
    if (nb_module_pack(&r->base)) goto fail;
    return &r->base;
fail:
    nb_module_free(&r->base);
    return NULL;
}

nb_module *nb_rnn_new(int64_t input_size, int64_t hidden_size, const nb_rnn_opts *opts, nb_rng *rng) {
    bool relu = opts && opts->relu;
    return build(relu ? NB__RNN_RELU : NB__RNN_TANH, false, input_size, hidden_size, opts, rng);
}

nb_module *nb_lstm_new(int64_t input_size, int64_t hidden_size, const nb_rnn_opts *opts, nb_rng *rng) {
    return build(NB__LSTM, false, input_size, hidden_size, opts, rng);
}

nb_module *nb_gru_new(int64_t input_size, int64_t hidden_size, const nb_rnn_opts *opts, nb_rng *rng) {
    return build(NB__GRU, false, input_size, hidden_size, opts, rng);
}

nb_module *nb_rnn_cell_new(int64_t input_size, int64_t hidden_size, bool bias, bool relu, nb_rng *rng) {
    nb_rnn_opts o = nb_rnn_defaults();
    o.bias = bias;
    return build(relu ? NB__RNN_RELU : NB__RNN_TANH, true, input_size, hidden_size, &o, rng);
}

nb_module *nb_lstm_cell_new(int64_t input_size, int64_t hidden_size, bool bias, nb_rng *rng) {
    nb_rnn_opts o = nb_rnn_defaults();
    o.bias = bias;
    return build(NB__LSTM, true, input_size, hidden_size, &o, rng);
}

nb_module *nb_gru_cell_new(int64_t input_size, int64_t hidden_size, bool bias, nb_rng *rng) {
    nb_rnn_opts o = nb_rnn_defaults();
    o.bias = bias;
    return build(NB__GRU, true, input_size, hidden_size, &o, rng);
}

/* "(2, 4, 3)": a Python tuple, as PyTorch prints the expected hidden size. */
static const char *tuple(int n, const int64_t *v) {
    static _Thread_local char buf[96];
    int o = snprintf(buf, sizeof buf, "(");
    for (int i = 0; i < n; i++)
        o += snprintf(buf + o, sizeof buf - (size_t)o, i ? ", %lld" : "%lld", (long long)v[i]);
    snprintf(buf + o, sizeof buf - (size_t)o, ")");
    return buf;
}

/* h0 / c0 of a sequence module: [L*D, B, H] (batched) or [L*D, H] (unbatched). */
static int check_state(const rnn_mod *r, const nb_tensor *x, const nb_tensor *h, int which) {
    const nb__rnn_cfg *c = &r->cfg;
    const char *type = r->base.ops->type, *name = which ? "c0" : "h0";
    if (nb__check_f32(type, h, name)) return NB_EINVAL;
    int want = x->ndim;
    if (h->ndim != want)
        return nb__error(NB_ESHAPE, "%s: For %s %d-D input, %s should also be %d-D but got %d-D tensor",
                         type, want == 3 ? "batched" : "unbatched", want, name, want, h->ndim);
    int64_t exp[3] = {c->num_layers * c->dirs, 0, c->hidden_size};
    if (want == 3) exp[1] = x->shape[c->batch_first ? 0 : 1];
    else exp[1] = c->hidden_size;
    bool ok = true;
    for (int i = 0; i < want; i++) ok = ok && h->shape[i] == exp[i];
    if (!ok) {
        const char *what = c->mode != NB__LSTM ? "hidden" : which ? "hidden[1]" : "hidden[0]";
        return nb__error(NB_ESHAPE, "%s: Expected %s size %s, got %s", type, what, tuple(want, exp),
                         nb__shape(h, 0));
    }
    return NB_OK;
}

nb_tensor *nb_rnn_forward(nb_module *m, nb_arena *ar, nb_tensor *x, nb_tensor *h0, nb_tensor *c0,
                          nb_tensor **h_n, nb_tensor **c_n) {
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    rnn_mod *r = as_rnn(m, false);
    if (!r)
        return nb__null(NB_EINVAL, "rnn_forward: module is %s, not an RNN, LSTM or GRU",
                        m ? m->ops->type : "NULL");
    if (!x) return NULL;
    if (!ar) return nb__null(NB_EINVAL, "rnn_forward: arena is NULL");
    const nb__rnn_cfg *c = &r->cfg;
    const char *type = m->ops->type;
    if (nb__check_f32(type, x, "input")) return NULL;
    if (x->ndim != 2 && x->ndim != 3)
        return nb__null(NB_ESHAPE, "%s: input must have 3 dimensions (2 if unbatched), got %d",
                        type, x->ndim);
    if (x->shape[x->ndim - 1] != c->input_size)
        return nb__null(NB_ESHAPE, "%s: input.size(-1) must be equal to input_size. Expected %lld, "
                        "got %lld", type, (long long)c->input_size, (long long)x->shape[x->ndim - 1]);
    if (x->shape[x->ndim == 3 && c->batch_first ? 1 : 0] == 0)
        return nb__null(NB_ESHAPE, "%s: Expected sequence length to be larger than 0 in RNN", type);
    if (c0 && c->mode != NB__LSTM)
        return nb__null(NB_EINVAL, "%s: c0 is only for LSTM (%s has no cell state)", type, type);
    if ((h0 && check_state(r, x, h0, 0)) || (c0 && check_state(r, x, c0, 1))) return NULL;
    nb__rnn_cfg run = *c;
    run.training = m->training;
    return nb__rnn(ar, &run, x, h0, c0, m->params, h_n, c_n);
}

nb_tensor *nb_rnn_cell_forward(nb_module *m, nb_arena *ar, nb_tensor *x, nb_tensor *h, nb_tensor *c,
                               nb_tensor **c_out) {
    if (c_out) *c_out = NULL;
    rnn_mod *r = as_rnn(m, true);
    if (!r)
        return nb__null(NB_EINVAL, "rnn_cell_forward: module is %s, not an RNNCell, LSTMCell or "
                        "GRUCell", m ? m->ops->type : "NULL");
    if (!x) return NULL;
    if (!ar) return nb__null(NB_EINVAL, "rnn_cell_forward: arena is NULL");
    const nb__rnn_cfg *cf = &r->cfg;
    const char *type = m->ops->type;
    if (nb__check_f32(type, x, "input")) return NULL;
    if (x->ndim != 1 && x->ndim != 2)
        return nb__null(NB_ESHAPE, "%s: Expected input to be 1-D or 2-D but received %d-D tensor",
                        type, x->ndim);
    if (x->shape[x->ndim - 1] != cf->input_size)
        return nb__null(NB_ESHAPE, "%s: input has inconsistent input_size: got %lld expected %lld",
                        type, (long long)x->shape[x->ndim - 1], (long long)cf->input_size);
    if (c && cf->mode != NB__LSTM)
        return nb__null(NB_EINVAL, "%s: c is only for LSTMCell (%s has no cell state)", type, type);
    nb_tensor *st[2] = {h, c};
    for (int i = 0; i < 2; i++) {
        const nb_tensor *s = st[i];
        if (!s) continue;
        if (nb__check_f32(type, s, i ? "c" : "h")) return NULL;
        if (s->ndim != x->ndim)
            return nb__null(NB_ESHAPE, "%s: Expected hidden%d to be %d-D for %d-D input but "
                            "received %d-D tensor", type, i, x->ndim, x->ndim, s->ndim);
        if (x->ndim == 2 && s->shape[0] != x->shape[0])
            return nb__null(NB_ESHAPE, "%s: Input batch size %lld doesn't match hidden%d batch "
                            "size %lld", type, (long long)x->shape[0], i, (long long)s->shape[0]);
        if (s->shape[s->ndim - 1] != cf->hidden_size)
            return nb__null(NB_ESHAPE, "%s: hidden%d has inconsistent hidden_size: got %lld, "
                            "expected %lld", type, i, (long long)s->shape[s->ndim - 1],
                            (long long)cf->hidden_size);
    }
    nb__rnn_cfg run = *cf;
    run.training = m->training;
    return nb__rnn(ar, &run, x, h, c, m->params, NULL, cf->mode == NB__LSTM ? c_out : NULL);
}
