#!/usr/bin/python3
"""gen_rnn.py - golden vectors for the recurrent modules (tests/test_rnn.c).

For each case, a PyTorch module (nn.RNN tanh/relu, nn.LSTM, nn.GRU or a cell) with its default
init (seed 0), a fixed input and (optionally) initial states, and the loss
    sum(out * w_out) + sum(h_n * w_h) + sum(c_n * w_c)
with fixed random weights w_*, so that gradients flow in from every output. Saves the
configuration, parameters, inputs, outputs, final states and the gradients of the input, the
initial states and every parameter. Run: /usr/bin/python3 gen_rnn.py"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
MODES = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru": 3}
I, H, T, B = 3, 4, 5, 2

g = Golden()
ncase = 0


def add_case(mode, layers=1, bidir=False, batch_first=False, bias=True, states=False,
             batched=True, cell=False):
    global ncase
    torch.manual_seed(100 + ncase)
    if cell:
        cls = {"rnn_tanh": nn.RNNCell, "rnn_relu": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[mode]
        kw = {"nonlinearity": "relu"} if mode == "rnn_relu" else {}
        m = cls(I, H, bias=bias, **kw)
        xshape = (B, I) if batched else (I,)
        sshape = (B, H) if batched else (H,)
    else:
        cls = {"rnn_tanh": nn.RNN, "rnn_relu": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[mode]
        kw = {"nonlinearity": "relu"} if mode == "rnn_relu" else {}
        m = cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidir, **kw)
        D = 2 if bidir else 1
        xshape = ((B, T, I) if batch_first else (T, B, I)) if batched else (T, I)
        sshape = (layers * D, B, H) if batched else (layers * D, H)
    x = torch.randn(*xshape, requires_grad=True)
    h0 = torch.randn(*sshape, requires_grad=True) if states else None
    c0 = torch.randn(*sshape, requires_grad=True) if states and mode == "lstm" else None
    if cell:
        if mode == "lstm":
            out, cn = m(x, (h0, c0) if states else None)
        else:
            out, cn = m(x, h0), None
        hn = None
    elif mode == "lstm":
        out, (hn, cn) = m(x, (h0, c0) if states else None)
    else:
        (out, hn), cn = m(x, h0), None
    wo = torch.randn_like(out)
    loss = (out * wo).sum()
    p = f"case{ncase}."
    if hn is not None:
        wh = torch.randn_like(hn)
        loss = loss + (hn * wh).sum()
        g.add(p + "w_h", wh)
        g.add(p + "h_n", hn)
    if cn is not None:
        wc = torch.randn_like(cn)
        loss = loss + (cn * wc).sum()
        g.add(p + "w_c", wc)
        g.add(p + "c_n", cn)
    loss.backward()
    cfg = [MODES[mode], I, H, layers, int(bidir), int(batch_first), int(bias), int(batched),
           int(states), int(cell)]
    g.add(p + "cfg", torch.tensor(cfg, dtype=torch.int32))
    g.add(p + "nparams", torch.tensor([len(list(m.parameters()))], dtype=torch.int32))
    for i, (name, prm) in enumerate(m.named_parameters()):
        g.add(p + f"param{i}", prm)
        g.add(p + f"grad{i}", prm.grad)
        g.add(p + f"name{i}", torch.tensor(list(name.encode()), dtype=torch.int32))
    g.add(p + "x", x)
    g.add(p + "grad_x", x.grad)
    if h0 is not None:
        g.add(p + "h0", h0)
        g.add(p + "grad_h0", h0.grad)
    if c0 is not None:
        g.add(p + "c0", c0)
        g.add(p + "grad_c0", c0.grad)
    g.add(p + "out", out)
    g.add(p + "w_out", wo)
    ncase += 1


for mode in MODES:
    add_case(mode)                                            # 1 layer, zero states
    add_case(mode, layers=2, states=True)                     # 2 layers, initial states
    add_case(mode, layers=2, bidir=True, states=True)         # bidirectional, 2 layers
    add_case(mode, bidir=True, batch_first=True, states=True) # batch_first, bidirectional
    add_case(mode, batch_first=True)                          # batch_first (the classifier's layout)
    add_case(mode, bias=False, states=True)                   # no bias
    add_case(mode, layers=2, batched=False, states=True)      # unbatched [T, I]
    add_case(mode, cell=True, states=True)                    # cell with states
    add_case(mode, cell=True, batched=False)                  # unbatched cell, zero state

g.save(os.path.join(OUT, "rnn.nbg.gz"))
print("wrote", os.path.join(OUT, "rnn.nbg.gz"), ncase, "cases")
