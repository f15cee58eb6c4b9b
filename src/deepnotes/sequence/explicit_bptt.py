"""One RNN / LSTM / GRU layer with backpropagation through time written out by hand.

Autograd on the unrolled loop is correct but slow: it records ~20 nodes per step and replays them
one by one. Written out, BPTT is a short recurrence running backwards over time; everything that
does not depend on the incoming gradient (gate derivatives, ``tanh(c_t)``, …) is computed for all
steps at once, so each step costs a couple of element-wise products and one matrix product. The
weight gradients are sums over time, ``∂L/∂W_hh = Σ_t δ_tᵀ h_{t−1}``, done as *one* matrix
product after the loop.

``rnn_layer`` / ``lstm_layer`` / ``gru_layer`` are the fast versions used by
:class:`~deepnotes.sequence.RNN`, :class:`~deepnotes.sequence.LSTM` and
:class:`~deepnotes.sequence.GRU`; the ``*_autograd`` functions are the plain loops they are tested
against (and ``gradcheck``). The hand-written backward is not itself
differentiable (no double backward).

Shapes: ``xw`` Tensor[T, N, H] (RNN) or Tensor[T, N, 4H] (LSTM: ``x W_ihᵀ + b_ih + b_hh``), ``gi`` Tensor[T, N, 3H]
(GRU: ``x W_ihᵀ + b_ih``), states Tensor[N, H], ``w_hh`` Tensor[G·H, H], ``b_hh`` Tensor[3H] or None.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from deepnotes.sequence.cells import gru_pointwise, lstm_pointwise


class _RNNLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, h0, w_hh, relu: bool):
        out = xw.new_empty(xw.shape[0], xw.shape[1], h0.shape[-1])
        w_t = w_hh.t()
        h = h0
        for t in range(xw.shape[0]):
            torch.addmm(xw[t], h, w_t, out=out[t])
            if relu:
                out[t].clamp_(min=0)
            else:
                out[t].tanh_()
            h = out[t]
        ctx.save_for_backward(out, h0, w_hh)
        ctx.relu = relu
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn):
        out, h0, w_hh = ctx.saved_tensors
        # act'(pre) from the output alone, for all steps at once: tanh' = 1 − h², relu' = [h > 0]
        deriv = (out > 0).to(out.dtype) if ctx.relu else 1 - out * out
        d_pre = torch.empty_like(out)
        dh = d_hn.clone()
        for t in range(out.shape[0] - 1, -1, -1):
            dh += d_out[t]
            torch.mul(dh, deriv[t], out=d_pre[t])
            dh = d_pre[t] @ w_hh  # one factor W_hh·diag(act') per step back: the product that vanishes/explodes
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        d_w_hh = d_pre.flatten(0, 1).t() @ h_prev.flatten(0, 1)
        return d_pre, dh, d_w_hh, None


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, h0, c0, w_hh):
        steps, n, four_h = xw.shape
        hid = four_h // 4
        act = xw.new_empty(steps, n, four_h)  # σ(i), σ(f), tanh(g), σ(o) per step
        cs = xw.new_empty(steps + 1, n, hid)  # c_0 … c_T
        out = xw.new_empty(steps, n, hid)  # h_1 … h_T
        cs[0] = c0
        w_t = w_hh.t()
        h = h0
        for t in range(steps):
            pre = torch.addmm(xw[t], h, w_t)
            a = act[t]
            torch.sigmoid(pre, out=a)
            torch.tanh(pre[:, 2 * hid : 3 * hid], out=a[:, 2 * hid : 3 * hid])
            i, f, g, o = a.chunk(4, dim=1)
            torch.addcmul(f * cs[t], i, g, out=cs[t + 1])  # c_t = f·c_{t−1} + i·g
            torch.mul(o, torch.tanh(cs[t + 1]), out=out[t])  # h_t = o·tanh(c_t)
            h = out[t]
        ctx.save_for_backward(act, cs, out, h0, w_hh)
        return out, out[-1].clone(), cs[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn, d_cn):
        act, cs, out, h0, w_hh = ctx.saved_tensors
        steps, n, hid = out.shape
        i, f, g, o = act.chunk(4, dim=2)
        tc = torch.tanh(cs[1:])
        # everything that does not depend on the incoming gradient, for all steps at once:
        # δc_t += δh_t · o·(1 − tanh²c_t);  δpre = [δc·g·i(1−i), δc·c_{t−1}·f(1−f), δc·i·(1−g²), δh·tanh c·o(1−o)]
        dc_from_dh = o * (1 - tc * tc)
        gate_factor = torch.cat([g * i * (1 - i), cs[:-1] * f * (1 - f), i * (1 - g * g)], dim=2).view(
            steps, n, 3, hid)
        out_factor = tc * o * (1 - o)
        d_pre = act.new_empty(steps, n, 4 * hid)
        dh = d_hn.clone()
        dc = d_cn.clone()
        for t in range(steps - 1, -1, -1):
            dh += d_out[t]
            dc = torch.addcmul(dc, dh, dc_from_dh[t])
            torch.mul(dc.unsqueeze(1), gate_factor[t], out=d_pre[t, :, : 3 * hid].view(n, 3, hid))
            torch.mul(dh, out_factor[t], out=d_pre[t, :, 3 * hid :])
            dc = dc * f[t]  # the cell path: only the forget gate scales the gradient
            dh = d_pre[t] @ w_hh
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        d_w_hh = d_pre.flatten(0, 1).t() @ h_prev.flatten(0, 1)  # Σ_t δ_tᵀ h_{t−1} in one product
        return d_pre, dh, dc, d_w_hh


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh):
        steps, n, three_h = gi.shape
        hid = three_h // 3
        act = gi.new_empty(steps, n, three_h)  # r, z, n per step
        gh_n = gi.new_empty(steps, n, hid)  # h W_hnᵀ + b_hn (r multiplies it)
        out = gi.new_empty(steps, n, hid)
        w_t = w_hh.t()
        h = h0
        for t in range(steps):
            gh = h @ w_t if b_hh is None else torch.addmm(b_hh, h, w_t)
            a = act[t]
            torch.sigmoid(gi[t, :, : 2 * hid] + gh[:, : 2 * hid], out=a[:, : 2 * hid])
            gh_n[t] = gh[:, 2 * hid :]
            torch.tanh(torch.addcmul(gi[t, :, 2 * hid :], a[:, :hid], gh_n[t]), out=a[:, 2 * hid :])
            nn_ = a[:, 2 * hid :]
            torch.addcmul(nn_, a[:, hid : 2 * hid], h - nn_, out=out[t])  # h' = n + z·(h − n)
            h = out[t]
        ctx.save_for_backward(act, gh_n, out, h0, w_hh)
        ctx.has_bias = b_hh is not None
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hn):
        act, gh_n, out, h0, w_hh = ctx.saved_tensors
        steps, n, hid = out.shape
        r, z, nn_ = act.chunk(3, dim=2)
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]])
        # per unit: δn_pre = δh·(1−z)(1−n²); δz_pre = δh·(h−n)·z(1−z); δr_pre = δn_pre·gh_n·r(1−r)
        p = (1 - z) * (1 - nn_ * nn_)
        q = (h_prev - nn_) * z * (1 - z)
        s = p * gh_n * r * (1 - r)
        gi_factor = torch.cat([s, q, p], dim=2).view(steps, n, 3, hid)
        gh_factor = torch.cat([s, q, p * r], dim=2).view(steps, n, 3, hid)  # r multiplies W_hn h + b_hn
        d_gi = act.new_empty(steps, n, 3 * hid)
        d_gh = act.new_empty(steps, n, 3 * hid)
        dh = d_hn.clone()
        for t in range(steps - 1, -1, -1):
            dh += d_out[t]
            dh3 = dh.unsqueeze(1)
            torch.mul(dh3, gi_factor[t], out=d_gi[t].view(n, 3, hid))
            torch.mul(dh3, gh_factor[t], out=d_gh[t].view(n, 3, hid))
            dh = torch.addmm(dh * z[t], d_gh[t], w_hh)  # direct path through z plus the recurrent product
        flat = d_gh.flatten(0, 1)
        d_w_hh = flat.t() @ h_prev.flatten(0, 1)
        d_b_hh = flat.sum(0) if ctx.has_bias else None
        return d_gi, dh, d_w_hh, d_b_hh


def rnn_layer(xw: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, nonlinearity: str = "tanh"):
    """Run one Elman layer (``xw`` Tensor[T, N, H] holds ``x W_ihᵀ + b_ih + b_hh``); returns ``(out, h_T)``."""
    return _RNNLayer.apply(xw, h0, w_hh, nonlinearity == "relu")


def lstm_layer(xw: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh: torch.Tensor):
    """Run one LSTM layer; returns ``(out Tensor[T, N, H], h_T, c_T)``. Backward: hand-written BPTT."""
    return _LSTMLayer.apply(xw, h0, c0, w_hh)


def gru_layer(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor | None):
    """Run one GRU layer; returns ``(out Tensor[T, N, H], h_T)``. Backward: hand-written BPTT."""
    return _GRULayer.apply(gi, h0, w_hh, b_hh)


def rnn_layer_autograd(xw, h0, w_hh, nonlinearity="tanh"):
    """The readable loop that :func:`rnn_layer` must agree with (autograd does the BPTT)."""
    act = torch.relu if nonlinearity == "relu" else torch.tanh
    h, outs = h0, []
    for t in range(xw.shape[0]):
        h = act(torch.addmm(xw[t], h, w_hh.t()))
        outs.append(h)
    return torch.stack(outs), h


def lstm_layer_autograd(xw, h0, c0, w_hh):
    """The readable loop that :func:`lstm_layer` must agree with (autograd does the BPTT)."""
    h, c, outs = h0, c0, []
    for t in range(xw.shape[0]):
        h, c = lstm_pointwise(torch.addmm(xw[t], h, w_hh.t()), c)
        outs.append(h)
    return torch.stack(outs), h, c


def gru_layer_autograd(gi, h0, w_hh, b_hh):
    """The readable loop that :func:`gru_layer` must agree with (autograd does the BPTT)."""
    h, outs = h0, []
    for t in range(gi.shape[0]):
        gh = h @ w_hh.t() if b_hh is None else torch.addmm(b_hh, h, w_hh.t())
        h = gru_pointwise(gi[t], gh, h)
        outs.append(h)
    return torch.stack(outs), h
