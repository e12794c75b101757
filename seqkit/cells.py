"""seqkit's own LSTM recurrence: the gate variants of Greff et al. (2016) and layer normalisation.

References: Hochreiter & Schmidhuber (1997), "Long Short-Term Memory"; Gers, Schmidhuber &
Cummins (2000), "Learning to Forget" (forget gate); Gers & Schmidhuber (2000), "Recurrent Nets
that Time and Count" (peepholes); Greff, Srivastava, Koutník, Steunebrink & Schmidhuber (2016),
"LSTM: A Search Space Odyssey" (the variants); Ba, Kiros & Hinton (2016), "Layer Normalization";
Sak, Senior & Beaufays (2014) (projection of h, LSTMP).

seqkit's ``vanilla`` is the LSTM of torch.nn.LSTM, *without* peepholes (Greff et al.'s "NP").
Greff et al.'s own "vanilla" (their "V") has peepholes: that is seqkit's ``peephole``. Every other
variant changes seqkit's ``vanilla`` in one place; add ``peepholes=True`` to get the variant
exactly as Greff et al. ran it (their NIG is ``variant="nig", peepholes=True``).

With x the step's input, h₋₁ and C₋₁ the previous state, σ the logistic sigmoid, ∗ elementwise::

    vanilla   i = σ(W_i·[h₋₁,x] + b_i)   f = σ(W_f·[h₋₁,x] + b_f)   o = σ(W_o·[h₋₁,x] + b_o)
              C̃ = tanh(W_C·[h₋₁,x] + b_C)   C = f∗C₋₁ + i∗C̃   h = o∗tanh(C)
    peephole  i = σ(… + p_i∗C₋₁)   f = σ(… + p_f∗C₋₁)   o = σ(… + p_o∗C)      (Gers & Schmidhuber 2000)
    nig       no input gate:              C = f∗C₋₁ + C̃
    nfg       no forget gate:             C = C₋₁ + i∗C̃
    nog       no output gate:             h = tanh(C)
    niaf      no input activation:        C̃ = W_C·[h₋₁,x] + b_C
    noaf      no output activation:       h = o∗C
    cifg      coupled input-forget gate:  i = 1 − f,  C = f∗C₋₁ + (1 − f)∗C̃
    fgr       full gate recurrence:       i, f, o also receive R·[i₋₁, f₋₁, o₋₁] (nine more H×H
              matrices); the gate activations of the step before the first are zero
    layer_norm (any variant, Ba et al. 2016): the gate pre-activations are
              LN(W_x·x; α_x) + LN(W_h·h₋₁; α_h) + b (+ peephole / gate-recurrence terms), and
              h = o∗tanh(LN(C; α_C, β_C)); each LN normalises over all gates of one step together

and with ``proj_size`` P > 0, h = W_hr·(o∗tanh(C)) has size P (LSTMP).

How it runs fast: the input projection W_x·x (+ b) of every step is one matrix product before the
time loop; inside the loop there is one recurrent product per step plus elementwise work. The loop
runs in an ``autograd.Function`` with a hand-written backward pass (one product per step back, the
weight gradients as single products over all steps afterwards), and both loops are TorchScript
functions, which measured 3x faster than the same Python loop on a CPU. On CPU in float32, large
recurrent products go through oneDNN with a prepacked weight, which measured about 2x faster than
MKL's addmm at H=512. Variable lengths run like a packed sequence: the batch is sorted by length and
each step computes only the sequences still running, so padding never touches a state.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

VARIANTS = ("vanilla", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr")

_LN_EPS = 1e-5


@dataclass(frozen=True)
class CellSpec:
    """The structure of one variant: which gates exist and which activations apply."""

    variant: str = "vanilla"
    peepholes: bool = False
    layer_norm: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown LSTM variant {self.variant!r}; valid variants: {', '.join(VARIANTS)}")

    @property
    def has_peepholes(self) -> bool:
        return self.peepholes or self.variant == "peephole"

    @property
    def input_gate(self) -> bool:
        """A sigmoid input gate of its own (NIG has none; CIFG derives it from f)."""
        return self.variant not in ("nig", "cifg")

    @property
    def forget_gate(self) -> bool:
        return self.variant != "nfg"

    @property
    def output_gate(self) -> bool:
        return self.variant != "nog"

    @property
    def coupled(self) -> bool:
        return self.variant == "cifg"

    @property
    def input_activation(self) -> bool:
        return self.variant != "niaf"

    @property
    def output_activation(self) -> bool:
        return self.variant != "noaf"

    @property
    def full_recurrence(self) -> bool:
        return self.variant == "fgr"

    @property
    def gate_names(self) -> tuple[str, ...]:
        """Row blocks of the weights, in order: the sigmoid gates, then the candidate C̃ ("g")."""
        names = [n for n, on in (("i", self.input_gate), ("f", self.forget_gate), ("o", self.output_gate)) if on]
        return (*names, "g")

    @property
    def num_sigmoid(self) -> int:
        return len(self.gate_names) - 1

    @property
    def num_if(self) -> int:
        """Sigmoid gates that see C₋₁ through a peephole (i and f, those that exist)."""
        return int(self.input_gate) + int(self.forget_gate)

    @property
    def peephole_names(self) -> tuple[str, ...]:
        return self.gate_names[:-1] if self.has_peepholes else ()

    @property
    def is_plain(self) -> bool:
        """True for the configuration torch.nn.LSTM computes."""
        return self.variant == "vanilla" and not self.peepholes and not self.layer_norm


# ---------------------------------------------------------------------------------------------
# The time loops. Written in the TorchScript subset; scripted on first use (see _loops()).
# Gate layout of the (n, G*H) pre-activation rows: sigmoid gates [i?, f?, o?] then C̃ ("g").
# ---------------------------------------------------------------------------------------------


def _linear(x: Tensor, wT: Tensor, packed: Optional[Tensor], add: Optional[Tensor]) -> Tensor:
    """``add + x @ wT``; through oneDNN with a prepacked weight when ``packed`` is given (then
    ``add`` must be given too: a zero tensor when there is nothing to add)."""
    if packed is not None and add is not None:
        return torch.ops.mkldnn._linear_pointwise(x, add, packed, None, "add")  # the .binary overload
    if add is not None:
        return torch.addmm(add, x, wT)
    return torch.mm(x, wT)


def _rows(x: Optional[Tensor], n: int) -> Optional[Tensor]:
    if x is None or x.shape[0] == n:
        return x
    return x[:n]


# Loop code style, for speed (each tensor op costs ~1.5 us in TorchScript, ~4 us in Python, and at
# small sizes the ops, not the arithmetic, are the cost): narrow() rather than a[:, i:j] (one op,
# not two), weights transposed once outside the loop, no row slice when every row is running.


def _ln_backward(dy: Tensor, xn: Tensor, rstd: Tensor, w: Tensor) -> Tensor:
    """Grad of x for y = w∗(x − mean(x))∗rstd over the last dim, given xn = (x − mean)∗rstd.
    (aten's layer_norm runs an OpenMP region per call, which costs milliseconds per step on a
    busy machine; these few small ops do not.)"""
    dxn = dy * w
    m1 = dxn.mean(1, keepdim=True)
    m2 = (dxn * xn).mean(1, keepdim=True)
    return torch.addcmul(dxn - m1, xn, m2, value=-1.0) * rstd


def _forward_loop(
    xs: List[Tensor],
    h0: Tensor,
    c0: Tensor,
    batch_sizes: List[int],
    w_hhT: Tensor,
    w_hh_packed: Optional[Tensor],
    zeros_g: Optional[Tensor],
    w_ggT: Optional[Tensor],
    p_if: Optional[Tensor],
    p_o: Optional[Tensor],
    w_hrT: Optional[Tensor],
    w_hr_packed: Optional[Tensor],
    zeros_p: Optional[Tensor],
    ln_hh: Optional[Tensor],
    ln_c_w: Optional[Tensor],
    ln_c_b: Optional[Tensor],
    H: int,
    ig: bool,
    fg: bool,
    og: bool,
    coupled: bool,
    iact: bool,
    oact: bool,
) -> Tuple[List[Tensor], List[Tensor], List[Tensor], List[Tensor], List[Tensor], List[Tensor], List[Tensor], Tensor, Tensor]:
    """Runs the recurrence over ``xs`` (per step: (B, G*H) input projections incl. bias, the batch
    sorted by decreasing length; ``batch_sizes[t]`` sequences run at step t).

    Returns per step: h (n, P), gate activations (n, G*H), C (n, H), y = act(C) (n, H), m = o∗y
    before the projection, recurrent LN stats [q, mean, rstd] and cell LN stats [mean, rstd]; and
    the final (h, C) of every sequence (B, P), (B, H).
    """
    S = int(ig) + int(fg) + int(og)
    K = int(ig) + int(fg)
    G = (S + 1) * H
    B = h0.shape[0]
    hs: List[Tensor] = []
    gates: List[Tensor] = []
    cs: List[Tensor] = []
    ys: List[Tensor] = []
    ms: List[Tensor] = []
    q_stats: List[Tensor] = []
    c_stats: List[Tensor] = []
    left_h: List[Tensor] = []
    left_c: List[Tensor] = []
    h = h0
    c = c0
    for t in range(len(xs)):
        n = batch_sizes[t]
        if n < h.shape[0]:  # the sequences in rows n: ended at step t - 1: keep their final state
            left_h.append(h[n:])
            left_c.append(c[n:])
            h = h[:n]
            c = c[:n]
        x_t = xs[t]
        if n < B:
            x_t = x_t[:n]
        if ln_hh is not None:
            q = _linear(h, w_hhT, w_hh_packed, _rows(zeros_g, n))  # (n, G)
            q_var, q_mean = torch.var_mean(q, [1], unbiased=False, keepdim=True)
            q_rstd = torch.rsqrt(q_var + 1e-5)
            qn = (q - q_mean) * q_rstd
            a = torch.addcmul(x_t, qn, ln_hh)  # (n, G)
            q_stats.append(qn)
            q_stats.append(q_rstd)
        else:
            a = _linear(h, w_hhT, w_hh_packed, x_t)  # (n, G)
        if w_ggT is not None and t > 0:
            a.narrow(1, 0, S * H).addmm_(gates[t - 1].narrow(0, 0, n).narrow(1, 0, S * H), w_ggT)
        parts = a.chunk(S + 1, 1)  # views: [i?, f?, o?, g], each (n, H)
        g = parts[S]
        if p_if is not None:
            a_if = a.narrow(1, 0, K * H)
            a_if.addcmul_(c if K == 1 else torch.cat([c, c], 1), p_if)
            a_if.sigmoid_()
        else:
            a.narrow(1, 0, S * H).sigmoid_()
        if iact:
            g.tanh_()
        if coupled:  # i = 1 - f:  C = f*C' + (1 - f)*g = g + f*(C' - g)
            c = torch.lerp(g, c, parts[0])
        elif not ig:
            c = torch.addcmul(g, parts[0], c)
        elif not fg:
            c = torch.addcmul(c, parts[0], g)
        else:
            c = torch.addcmul(parts[1] * c, parts[0], g)
        if ln_c_w is not None:
            c_var, c_mean = torch.var_mean(c, [1], unbiased=False, keepdim=True)
            c_rstd = torch.rsqrt(c_var + 1e-5)
            cn = (c - c_mean) * c_rstd
            l = torch.addcmul(ln_c_b, cn, ln_c_w) if ln_c_b is not None else cn * ln_c_w
            c_stats.append(cn)
            c_stats.append(c_rstd)
        else:
            l = c
        y = torch.tanh(l) if oact else l
        if og:
            o = parts[K]
            if p_o is not None:
                o.addcmul_(c, p_o)
                o.sigmoid_()
            m = o * y
        else:
            m = y
        if w_hrT is not None:
            ms.append(m)
            h = _linear(m, w_hrT, w_hr_packed, _rows(zeros_p, n))  # (n, P)
        else:
            h = m
        hs.append(h)
        gates.append(a)
        cs.append(c)
        ys.append(y)
    left_h.append(h)
    left_c.append(c)
    left_h.reverse()
    left_c.reverse()
    return hs, gates, cs, ys, ms, q_stats, c_stats, torch.cat(left_h, 0), torch.cat(left_c, 0)


def _backward_loop(
    Ds: List[Tensor],
    dhs: List[Tensor],
    dhT: Tensor,
    dcT: Tensor,
    gates: List[Tensor],
    cs: List[Tensor],
    ys: List[Tensor],
    q_stats: List[Tensor],
    c_stats: List[Tensor],
    c0: Tensor,
    batch_sizes: List[int],
    w_hh: Tensor,
    w_hhT_packed: Optional[Tensor],
    zeros_h: Optional[Tensor],
    w_gg: Optional[Tensor],
    p_ifs: List[Tensor],
    p_o: Optional[Tensor],
    w_hr: Optional[Tensor],
    w_hrT_packed: Optional[Tensor],
    zeros_c: Optional[Tensor],
    ln_hh: Optional[Tensor],
    ln_c_w: Optional[Tensor],
    ln_c_b: Optional[Tensor],
    H: int,
    ig: bool,
    fg: bool,
    og: bool,
    coupled: bool,
    iact: bool,
    oact: bool,
) -> Tuple[List[Tensor], List[Tensor], List[Tensor], Tensor, Tensor]:
    """Back-propagates through ``_forward_loop``, writing the grads of the gate pre-activations
    of step t into ``Ds[t]`` ((B, G*H); rows past a sequence's end are left alone). Returns, per
    step from the last back to the first: grads of the recurrent product (without layer norm:
    none, they are ``Ds``), grads of h before the projection (with proj_size), LN weight grads;
    and the grads of h0 and C0 (B, P), (B, H). ``p_ifs``: peephole weights of the i / f gates
    that exist, in order (empty without peepholes)."""
    S = int(ig) + int(fg) + int(og)
    K = int(ig) + int(fg)
    G = (S + 1) * H
    B = dhT.shape[0]
    T = len(gates)
    dqs: List[Tensor] = []
    dhps: List[Tensor] = []
    dlns: List[Tensor] = []
    n = batch_sizes[T - 1]
    # dh holds dL/dh_t for the running rows, the output grad of step t included: each step's
    # recurrent product adds into the previous step's output grad (one addmm, no extra add)
    dh = dhT[:n] + dhs[T - 1][:n]
    dc = dcT[:n]
    dgp = torch.zeros(0, 0)
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        k = dh.shape[0]
        if n > k:  # rows k:n have their last step at t: their final-state grads enter here
            dh = torch.cat([dh, dhT[k:n] + dhs[t][k:n]], 0)
            dc = torch.cat([dc, dcT[k:n]], 0)
            if w_gg is not None and t < T - 1:
                dgp = torch.cat([dgp, dgp.new_zeros(n - k, S * H)], 0)
        a = gates[t]
        y = ys[t]
        cp = cs[t - 1] if t > 0 else c0
        if cp.shape[0] != n:
            cp = cp[:n]
        has_dgp = w_gg is not None and t < T - 1
        dgps: List[Tensor] = dgp.chunk(S, 1) if has_dgp else []
        if w_hr is not None:
            dhps.append(dh)
            dm = _linear(dh, w_hr, w_hrT_packed, _rows(zeros_c, n))  # (n, H)
        else:
            dm = dh
        parts = a.chunk(S + 1, 1)  # views of the activations: [i?, f?, o?, g]
        g = parts[S]
        pieces: List[Tensor] = []  # grads of the pre-activations, in weight-row order
        # output gate and output activation
        da_o = dm  # placeholder when there is no output gate
        if og:
            o = parts[K]
            do = dm * y
            if has_dgp:
                do = do + dgps[K]
            dy = dm * o
            da_o = torch.ops.aten.sigmoid_backward(do, o)
        else:
            dy = dm
        dl = torch.ops.aten.tanh_backward(dy, y) if oact else dy
        if ln_c_w is not None:
            dc = dc + _ln_backward(dl, c_stats[2 * t], c_stats[2 * t + 1], ln_c_w)
            dlns.append(dl)
        else:
            dc = dc + dl
        if p_o is not None:  # the o peephole sees C: its grad joins dC before the cell's
            dc = torch.addcmul(dc, da_o, p_o)
        # the cell: C = f*C' + i*g, with i = 1 - f (CIFG), i = 1 (NIG) or f = 1 (NFG)
        if coupled:
            f = parts[0]
            d_f = dc * (cp - g)
            dg = torch.addcmul(dc, dc, f, value=-1.0)
            dcp = dc * f
            if has_dgp:
                d_f = d_f + dgps[0]
            pieces.append(torch.ops.aten.sigmoid_backward(d_f, f))
        elif not ig:
            f = parts[0]
            d_f = dc * cp
            dg = dc
            dcp = dc * f
            if has_dgp:
                d_f = d_f + dgps[0]
            pieces.append(torch.ops.aten.sigmoid_backward(d_f, f))
        elif not fg:
            i = parts[0]
            d_i = dc * g
            dg = dc * i
            dcp = dc
            if has_dgp:
                d_i = d_i + dgps[0]
            pieces.append(torch.ops.aten.sigmoid_backward(d_i, i))
        else:
            i = parts[0]
            f = parts[1]
            d_i = dc * g
            d_f = dc * cp
            dg = dc * i
            dcp = dc * f
            if has_dgp:
                d_i = d_i + dgps[0]
                d_f = d_f + dgps[1]
            pieces.append(torch.ops.aten.sigmoid_backward(d_i, i))
            pieces.append(torch.ops.aten.sigmoid_backward(d_f, f))
        for j in range(len(p_ifs)):  # i / f peepholes see C'
            dcp = torch.addcmul(dcp, pieces[j], p_ifs[j])
        if og:
            pieces.append(da_o)
        pieces.append(torch.ops.aten.tanh_backward(dg, g) if iact else dg)
        d = torch.cat(pieces, 1, out=Ds[t] if n == B else Ds[t][:n])  # (n, G)
        if ln_hh is not None:
            dq = _ln_backward(d, q_stats[2 * t], q_stats[2 * t + 1], ln_hh)
            dqs.append(dq)
        else:
            dq = d
        if t > 0:
            dh_prev = dhs[t - 1]
            dh = _linear(dq, w_hh, w_hhT_packed, dh_prev if n == B else dh_prev[:n])  # (n, P)
        else:
            dh = _linear(dq, w_hh, w_hhT_packed, _rows(zeros_h, n))
        if w_gg is not None:
            dgp = torch.mm(d.narrow(1, 0, S * H), w_gg)
        dc = dcp
    n0 = batch_sizes[0]
    if n0 < B:  # sequences of length 0: their final state is the initial one
        dh = torch.cat([dh, dhT[n0:]], 0)
        dc = torch.cat([dc, dcT[n0:]], 0)
    return dqs, dhps, dlns, dh, dc


_LOOPS: dict = {}


@contextlib.contextmanager
def _unoptimized_jit():
    """Run scripted functions in TorchScript's plain interpreter. Its profiling executor would
    re-specialise the loops for each new set of shapes (every layer and direction of a stack has
    its own), costing up to a second each time, and has nothing to fuse on CPU anyway."""
    flag = torch._C._get_graph_executor_optimize()
    torch._C._set_graph_executor_optimize(False)
    try:
        yield
    finally:
        torch._C._set_graph_executor_optimize(flag)


def _loops():
    """The two time loops, scripted with TorchScript once per process (measured 3x faster than the
    Python loop on CPU); the plain Python functions when scripting is unavailable or disabled
    with SEQKIT_LSTM_JIT=0."""
    if not _LOOPS:
        fwd, bwd = _forward_loop, _backward_loop
        if os.environ.get("SEQKIT_LSTM_JIT", "1") != "0":
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # torch.jit.script is deprecated in torch 2.x
                    fwd, bwd = torch.jit.script(_forward_loop), torch.jit.script(_backward_loop)
            except Exception as exc:  # noqa: BLE001 - an optimisation; the Python loops are exact
                warnings.warn(f"seqkit: TorchScript unavailable for the LSTM loops, using Python loops ({exc})")
        _LOOPS.update(forward=fwd, backward=bwd)
    return _LOOPS["forward"], _LOOPS["backward"]


# oneDNN's prepacked linear beats MKL's addmm for large recurrent products on CPU (H=512: ~2x) and
# loses on small ones (fixed overhead): use it from this many weight elements on.
_ONEDNN_MIN_WEIGHT = 1 << 17
_ONEDNN: dict = {}


def _onednn_ok() -> bool:
    if "ok" not in _ONEDNN:
        ok = os.environ.get("SEQKIT_LSTM_ONEDNN", "1") != "0" and torch.backends.mkldnn.is_available()
        if ok:
            try:  # private op: check it exists and computes what we expect
                w, x, a = torch.randn(16, 8), torch.randn(3, 8), torch.randn(3, 16)
                p = torch.ops.mkldnn._reorder_linear_weight(w, 3)
                y = torch.ops.mkldnn._linear_pointwise.binary(x, a, p, None, "add")
                ok = bool(torch.allclose(y, torch.addmm(a, x, w.t()), atol=1e-4))
            except Exception:  # noqa: BLE001
                ok = False
        _ONEDNN["ok"] = ok
    return _ONEDNN["ok"]


def torch_lstm_layer(x: Tensor, h0: Tensor, c0: Tensor, weights: List[Tensor], train: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """One layer in one direction of torch's own LSTM kernel (oneDNN on CPU), batch first, with
    the given weights ``[w_ih, w_hh, b_ih, b_hh]`` (+ ``w_hr`` with a projection), in nn.LSTM's
    gate order (i, f, g, o). h0, c0: (1, B, ·). Returns out (B, T, P), h_T, C_T (1, B, ·).

    ``torch.lstm`` is the undocumented op nn.LSTM.forward itself calls; it is the only way to run
    that kernel with weights of our own making (seqkit.lstm adds a column to w_ih). Kept here,
    with the other private torch APIs, and guarded by tests/test_lstm_dense.py."""
    return torch.lstm(x, (h0, c0), weights, True, 1, 0.0, train, False, True)


def _pack(w: Tensor, batch: int) -> Optional[Tensor]:
    """oneDNN-prepacked copy of ``w`` (N, K) for ``x @ w.T``, or None where addmm is faster."""
    if w.device.type != "cpu" or w.dtype != torch.float32 or w.numel() < _ONEDNN_MIN_WEIGHT or not _onednn_ok():
        return None
    return torch.ops.mkldnn._reorder_linear_weight(w.detach().contiguous(), batch)


def _stack_padded(xs: List[Tensor] | tuple, batch_sizes: List[int], B: int) -> Tensor:
    """Stack per-step (n_t, F) tensors into (T, B, F), zeros where a sequence has ended."""
    if batch_sizes[-1] == B:
        return torch.stack(list(xs))
    T, Fdim = len(xs), xs[0].shape[-1]
    out = xs[0].new_zeros(T, B, Fdim)
    t0 = 0
    while t0 < T:  # one copy per run of steps with the same batch size
        n, t1 = batch_sizes[t0], t0 + 1
        while t1 < T and batch_sizes[t1] == n:
            t1 += 1
        if n > 0:
            out[t0:t1, :n] = torch.stack(list(xs[t0:t1]))
        t0 = t1
    return out


def _split_peepholes(peep: Optional[Tensor], spec: CellSpec, H: int) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """The peephole weights of the i and f gates as one (K*H,) row, and the o gate's (H,)."""
    if peep is None:
        return None, None
    K = spec.num_if
    return peep[:K].reshape(K * H), (peep[K] if spec.output_gate else None)


class _Scan(torch.autograd.Function):
    """One direction of one layer over a whole sequence, with a hand-written backward pass."""

    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, w_gg, peep, w_hr, ln_hh, ln_c_w, ln_c_b, batch_sizes, spec, H):
        T, B, _ = xp.shape  # time, batch, gate rows G*H
        fwd, _ = _loops()
        zeros_g = zeros_p = None
        w_hh_packed = _pack(w_hh, B)
        if w_hh_packed is not None and ln_hh is not None:
            zeros_g = xp.new_zeros(B, w_hh.shape[0])
        w_hr_packed = _pack(w_hr, B) if w_hr is not None else None
        if w_hr_packed is not None:
            zeros_p = xp.new_zeros(B, w_hr.shape[0])
        p_if, p_o = _split_peepholes(peep, spec, H)
        with _unoptimized_jit():
            hs, gates, cs, ys, ms, q_stats, c_stats, hT, cT = fwd(
                list(xp.unbind(0)), h0, c0, batch_sizes, w_hh.t(), w_hh_packed, zeros_g,
                None if w_gg is None else w_gg.t(), p_if, p_o, None if w_hr is None else w_hr.t(), w_hr_packed,
                zeros_p, ln_hh, ln_c_w, ln_c_b, H, spec.input_gate, spec.forget_gate, spec.output_gate,
                spec.coupled, spec.input_activation, spec.output_activation,
            )
        out = _stack_padded(hs, batch_sizes, B)  # (T, B, P)
        ctx.spec, ctx.H, ctx.batch_sizes = spec, H, batch_sizes
        ctx.saved = (gates, cs, ys, ms, q_stats, c_stats)
        ctx.save_for_backward(h0, c0, w_hh, w_gg, peep, w_hr, ln_hh, ln_c_w, ln_c_b, out)
        return out, hT, cT

    @staticmethod
    @once_differentiable  # the backward loop is not itself differentiable: no double backward
    def backward(ctx, dout, dhT, dcT):
        h0, c0, w_hh, w_gg, peep, w_hr, ln_hh, ln_c_w, ln_c_b, out = ctx.saved_tensors
        gates, cs, ys, ms, q_stats, c_stats = ctx.saved
        spec, H, bs = ctx.spec, ctx.H, ctx.batch_sizes
        T, B, P = out.shape
        S, K = spec.num_sigmoid, spec.num_if
        _, bwd = _loops()
        w_hhT_packed = _pack(w_hh.t(), B)
        zeros_h = dout.new_zeros(B, w_hh.shape[1]) if w_hhT_packed is not None else None
        w_hrT_packed = _pack(w_hr.t(), B) if w_hr is not None else None
        zeros_c = dout.new_zeros(B, H) if w_hrT_packed is not None else None
        p_ifs = list(peep[: spec.num_if].unbind(0)) if peep is not None else []
        p_o = peep[spec.num_if] if peep is not None and spec.output_gate else None
        G = gates[0].shape[1]
        # (T, B, G*H): the grads of the input projections, written step by step by the loop
        D = dout.new_zeros(T, B, G) if bs[-1] < B else dout.new_empty(T, B, G)
        with _unoptimized_jit():
            dqs, dhps, dlns, dh0, dc0 = bwd(
                list(D.unbind(0)), list(dout.contiguous().unbind(0)), dhT.contiguous(), dcT.contiguous(), gates, cs,
                ys, q_stats, c_stats, c0, bs, w_hh, w_hhT_packed, zeros_h, w_gg, p_ifs, p_o, w_hr, w_hrT_packed,
                zeros_c, ln_hh, ln_c_w, ln_c_b, H, spec.input_gate, spec.forget_gate, spec.output_gate,
                spec.coupled, spec.input_activation, spec.output_activation,
            )
        Gn = D.shape[-1]
        dw_hh = dw_gg = dpeep = dw_hr = d_ln_hh = d_ln_c_w = d_ln_c_b = None
        if ctx.needs_input_grad[3]:
            Dq = D if ln_hh is None else _stack_padded(dqs[::-1], bs, B)
            dw_hh = Dq[0].t().mm(h0)  # (G*H, P): step t's product saw h_{t-1} (h0, then the outputs)
            if T > 1:
                dw_hh.addmm_(Dq[1:].reshape(-1, Gn).t(), out[:-1].reshape(-1, P))
        if w_gg is not None and ctx.needs_input_grad[4]:
            dw_gg = w_gg.new_zeros(w_gg.shape)
            if T > 1:  # step t's gates see step t-1's activations
                A = _stack_padded([g[:, : S * H] for g in gates[:-1]], bs[:-1], B)  # (T-1, B, S*H)
                dw_gg = D[1:, :, : S * H].reshape(-1, S * H).t().mm(A.reshape(-1, S * H))
        if peep is not None and ctx.needs_input_grad[5]:
            C = _stack_padded(cs, bs, B)  # (T, B, H)
            C_prev = torch.cat([c0.unsqueeze(0), C[:-1]], 0)
            parts = []
            if K:
                parts.append((D[..., : K * H].reshape(T, B, K, H) * C_prev.unsqueeze(2)).sum((0, 1)))
            if spec.output_gate:
                parts.append((D[..., K * H : (K + 1) * H] * C).sum((0, 1)).unsqueeze(0))
            dpeep = torch.cat(parts, 0)
        if w_hr is not None and ctx.needs_input_grad[6]:
            dhps.reverse()
            dHp = _stack_padded(dhps, bs, B)  # (T, B, P)
            M = _stack_padded(ms, bs, B)  # (T, B, H)
            dw_hr = dHp.reshape(-1, P).t().mm(M.reshape(-1, H))  # (P, H)
        if ln_c_w is not None:  # gain and bias of LN(C): sums over all steps of dL/dl∗Ĉ and dL/dl
            dlns.reverse()
            dL = _stack_padded(dlns, bs, B)  # (T, B, H)
            d_ln_c_w = (dL * _stack_padded(c_stats[0::2], bs, B)).sum((0, 1))
            d_ln_c_b = dL.sum((0, 1))
        if ln_hh is not None:  # gain of LN(W_h·h₋₁)
            d_ln_hh = (D * _stack_padded(q_stats[0::2], bs, B)).sum((0, 1))
        return D, dh0, dc0, dw_hh, dw_gg, dpeep, dw_hr, d_ln_hh, d_ln_c_w, d_ln_c_b, None, None, None


class _Projection(torch.autograd.Function):
    """``x @ w.T + b`` over all steps at once. Autograd would compute the weight gradient as
    D^T·x (to match the transposed weight's layout), which MKL runs up to 4x slower than (x^T·D)^T
    when the input is narrow (I=2: 41 vs 10 ms for 32k rows); this computes the latter."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return F.linear(x, w, b)

    @staticmethod
    def backward(ctx, d):
        x, w = ctx.saved_tensors
        d2 = d.reshape(-1, d.shape[-1])  # (T*B, G)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = d.matmul(w)  # (T, B, I)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            # weight and bias grads in one pass over d: [x, 1]^T·d
            x1 = torch.cat([x.reshape(-1, x.shape[-1]), x.new_ones(d2.shape[0], 1)], 1)  # (T*B, I+1)
            dwb = x1.t().mm(d2)  # (I+1, G)
            dw, db = dwb[:-1].t(), dwb[-1]
        elif ctx.needs_input_grad[1]:
            dw = x.reshape(-1, x.shape[-1]).t().mm(d2).t()  # (G, I)
        return dx, dw if ctx.needs_input_grad[1] else None, db


# ---------------------------------------------------------------------------------------------
# Parameters of one layer in one direction
# ---------------------------------------------------------------------------------------------


class LSTMLayer(nn.Module):
    """Parameters and recurrence of one LSTM layer in one direction, for any variant.

    Weight rows are grouped by gate in ``spec.gate_names`` order (sigmoid gates, then C̃), which
    differs from torch.nn.LSTM's (i, f, g, o); there is one bias (nn.LSTM's two biases summed).
    """

    def __init__(self, input_size: int, hidden_size: int, spec: CellSpec, proj_size: int = 0,
                 forget_bias: float = 1.0) -> None:
        super().__init__()
        self.spec, self.input_size, self.hidden_size, self.proj_size = spec, input_size, hidden_size, proj_size
        H, P = hidden_size, proj_size or hidden_size
        G = len(spec.gate_names) * H
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))
        self.weight_hh = nn.Parameter(torch.empty(G, P))
        self.bias = nn.Parameter(torch.empty(G))
        S = spec.num_sigmoid
        self.weight_gg = nn.Parameter(torch.empty(S * H, S * H)) if spec.full_recurrence else None
        self.peephole = nn.Parameter(torch.empty(len(spec.peephole_names), H)) if spec.has_peepholes else None
        self.weight_hr = nn.Parameter(torch.empty(proj_size, H)) if proj_size else None
        if spec.layer_norm:
            self.ln_ih = nn.Parameter(torch.ones(G))
            self.ln_hh = nn.Parameter(torch.ones(G))
            self.ln_c_weight = nn.Parameter(torch.ones(H))
            self.ln_c_bias = nn.Parameter(torch.zeros(H))
        else:
            self.ln_ih = self.ln_hh = self.ln_c_weight = self.ln_c_bias = None
        self.reset_parameters(forget_bias)

    @torch.no_grad()
    def reset_parameters(self, forget_bias: float = 1.0) -> None:
        """nn.LSTM's initialisation, U(-1/√H, 1/√H) for every weight, and the forget-gate bias."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            if not name.startswith("ln_"):
                p.uniform_(-bound, bound)
        if self.spec.forget_gate:
            H, j = self.hidden_size, self.spec.gate_names.index("f")
            self.bias[j * H : (j + 1) * H].fill_(forget_bias)

    def gate(self, name: str, tensor: Tensor) -> Tensor:
        """The rows of ``tensor`` (a weight or the bias) that belong to gate ``name``."""
        j, H = self.spec.gate_names.index(name), self.hidden_size
        return tensor[j * H : (j + 1) * H]

    def project(self, x: Tensor) -> Tensor:
        """Input projections of all steps in one product: (T, B, I) -> (T, B, G*H), bias included."""
        if self.ln_ih is None:
            return _Projection.apply(x, self.weight_ih, self.bias)
        z = _Projection.apply(x, self.weight_ih, None)
        # LN by hand: aten's layer_norm opens an OpenMP region even for a few rows, which waits
        # milliseconds per call for a second core on a busy machine
        var, mean = torch.var_mean(z, -1, correction=0, keepdim=True)
        return torch.addcmul(self.bias, (z - mean) * torch.rsqrt(var + _LN_EPS), self.ln_ih)

    def scan(self, xp: Tensor, h0: Tensor, c0: Tensor, batch_sizes: List[int] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The recurrence over projected inputs (T, B, G*H). Without ``batch_sizes`` every row
        runs every step; with them the batch is sorted by decreasing length and step t computes
        only its first ``batch_sizes[t]`` rows. Returns outputs (T, B, P), zero past each
        sequence's end, and the final (h, C)."""
        if batch_sizes is None:
            batch_sizes = [xp.shape[1]] * xp.shape[0]
        return _Scan.apply(xp.contiguous(), h0.contiguous(), c0.contiguous(), self.weight_hh, self.weight_gg,
                           self.peephole, self.weight_hr, self.ln_hh, self.ln_c_weight, self.ln_c_bias,
                           batch_sizes, self.spec, self.hidden_size)

    def reference_scan(self, xp: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None = None):
        """The same recurrence written step by step with autograd and masks: slow, for tests."""
        return _reference_scan(self, xp, h0, c0, lengths)

    def extra_repr(self) -> str:
        s = self.spec
        return (f"{self.input_size}, {self.hidden_size}, variant={s.variant!r}, peepholes={s.has_peepholes}, "
                f"layer_norm={s.layer_norm}, proj_size={self.proj_size}")


def _reference_scan(layer: LSTMLayer, xp: Tensor, h0: Tensor, c0: Tensor, lengths: Tensor | None):
    """Straightforward autograd version of ``_Scan`` (a step that is past a sequence's length
    keeps its state and outputs zeros); the cross-check for the fast path."""
    spec, H = layer.spec, layer.hidden_size
    T, B, _ = xp.shape
    names = spec.gate_names
    h, c = h0, c0
    prev = None  # previous step's sigmoid gate activations (FGR)
    outs = []
    for t, x_t in enumerate(xp.unbind(0)):
        q = h @ layer.weight_hh.t()
        if layer.ln_hh is not None:
            q = F.layer_norm(q, q.shape[-1:], layer.ln_hh, None, _LN_EPS)
        a = x_t + q
        if layer.weight_gg is not None and prev is not None:
            S = spec.num_sigmoid
            a = torch.cat([a[:, : S * H] + prev @ layer.weight_gg.t(), a[:, S * H :]], 1)
        pre = dict(zip(names, a.split(H, 1)))
        peep = dict(zip(spec.peephole_names, layer.peephole.unbind(0))) if layer.peephole is not None else {}
        f = torch.sigmoid(pre["f"] + peep.get("f", 0) * c) if spec.forget_gate else None
        if spec.coupled:
            i = 1 - f
        elif spec.input_gate:
            i = torch.sigmoid(pre["i"] + peep.get("i", 0) * c)
        else:
            i = None
        g = torch.tanh(pre["g"]) if spec.input_activation else pre["g"]
        c_new = (c if f is None else f * c) + (g if i is None else i * g)
        l = F.layer_norm(c_new, (H,), layer.ln_c_weight, layer.ln_c_bias, _LN_EPS) if layer.ln_c_weight is not None else c_new
        y = torch.tanh(l) if spec.output_activation else l
        o = torch.sigmoid(pre["o"] + peep.get("o", 0) * c_new) if spec.output_gate else None
        h_new = y if o is None else o * y
        if layer.weight_hr is not None:
            h_new = h_new @ layer.weight_hr.t()
        acts = [v for v in (i if spec.input_gate else None, f, o) if v is not None]
        if lengths is not None:
            live = (t < lengths).to(xp.device).unsqueeze(1)  # (B, 1)
            h, c = torch.where(live, h_new, h), torch.where(live, c_new, c)
            outs.append(torch.where(live, h_new, torch.zeros_like(h_new)))
        else:
            h, c = h_new, c_new
            outs.append(h_new)
        prev = torch.cat(acts, 1) if acts else None
    return torch.stack(outs), h, c
