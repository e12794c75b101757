"""The LSTM X-ray: gate activations, candidate cell, cell state and h of every layer and
direction over time, recomputed from the weights, with heatmaps and a saturation summary.

What it records, per layer and direction, at every real step of the traced sequences (the
equations of Hochreiter & Schmidhuber 1997 with the forget gate of Gers et al. 2000, in the gate
variants of Greff et al. 2016, seqkit/cells.py)::

    input    i = σ(…)            (absent for nig; cifg couples it: i = 1 − f)
    forget   f = σ(…)            (absent for nfg)
    output   o = σ(…)            (absent for nog)
    candidate C̃ = tanh(…)        (linear for niaf)
    cell     C = f∗C₋₁ + i∗C̃,  cell_abs |C|
    h        o∗tanh(C)           (projected to proj_size with LSTMP)

torch.nn.LSTM computes its gates inside one fused kernel and never shows them, so they are
recomputed here from the stack's own weights (nn.LSTM's or seqkit's recurrence, one layout for
both, :class:`CellWeights`); ``tests/test_xray.py`` checks that the recomputation reproduces the
stack's h and C at every step. The simple RNN (:class:`seqkit.SimpleRNNStack`, h = tanh(W·[h₋₁, x]
+ b)) is traced too: it has h only, every gate and the cell are absent.

The "saturation" summary is the classic diagnostic of Hochreiter & Schmidhuber and of Karpathy,
Johnson & Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks": the share of gate
values below 0.1 (a closed gate: forgetting, ignoring) and above 0.9 (an open one: remembering,
writing) per gate per layer.

Used three ways: :func:`trace_model` in Python; the :class:`GateTrace` callback during training
(TensorBoard images every N validations, or PNGs next to the run); and ``seqkit trace
--ckpt_path X --input FILE --out DIR`` (:func:`trace_command`), which writes ``trace.npz``, PNG
heatmaps and ``saturation.csv`` / ``saturation.json``. The recurrence written here is also the one
``seqkit export`` puts into ONNX graphs (seqkit/export.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor

from seqkit.cells import CellSpec
from seqkit.errors import SeqkitError
from seqkit.lstm import LSTMStack
from seqkit.spec import Batch

GATES = ("input", "forget", "output")
"""The sigmoid gates, the ones the saturation summary counts."""
QUANTITIES = ("input", "forget", "output", "candidate", "cell", "cell_abs", "h")
"""What a trace holds per layer and direction, in the order the heatmaps show them."""
DIRECTIONS = ("forward", "backward")

_LN_EPS = 1e-5  # seqkit.cells' layer-norm epsilon


# ---------------------------------------------------------------------------------------------
# One layer and direction, in one layout for nn.LSTM, seqkit's recurrence and nn.RNN
# ---------------------------------------------------------------------------------------------


@dataclass
class CellWeights:
    """The weights of one layer in one direction. Rows of ``w_ih``, ``w_hh`` and ``bias`` are
    grouped by gate in ``gate_names`` order: nn.LSTM's (i, f, g, o), or seqkit's sigmoid gates then
    C̃ (``g``); ``kind`` is "lstm" or "srn" (the simple RNN: one block, tanh or relu)."""

    kind: str
    spec: CellSpec
    hidden_size: int
    gate_names: tuple[str, ...]
    w_ih: Tensor  # (G*H, I)
    w_hh: Tensor  # (G*H, P)
    bias: Tensor  # (G*H,): nn.LSTM's two biases summed
    peephole: Optional[Tensor] = None  # (len(spec.peephole_names), H)
    w_gg: Optional[Tensor] = None  # (S*H, S*H): full gate recurrence
    w_hr: Optional[Tensor] = None  # (P, H): projection of h
    ln_ih: Optional[Tensor] = None
    ln_hh: Optional[Tensor] = None
    ln_c_w: Optional[Tensor] = None
    ln_c_b: Optional[Tensor] = None
    nonlinearity: str = "tanh"  # the simple RNN's

    @property
    def out_size(self) -> int:
        return self.w_hh.shape[1]

    def present(self) -> dict[str, str]:
        """Each quantity -> "" when recorded, else why it is absent."""
        if self.kind == "srn":
            why = "absent: the simple RNN has no gates and no cell"
            return {q: ("" if q == "h" else why) for q in QUANTITIES}
        s = self.spec
        out = dict.fromkeys(QUANTITIES, "")
        if not s.input_gate and not s.coupled:
            out["input"] = f"absent: variant {s.variant} has no input gate"
        if not s.forget_gate:
            out["forget"] = f"absent: variant {s.variant} has no forget gate"
        if not s.output_gate:
            out["output"] = f"absent: variant {s.variant} has no output gate"
        return out


def stack_cells(stack: torch.nn.Module) -> list[CellWeights]:
    """The weights of every layer and direction of ``stack``, index ``layer * directions + d``.

    Works for :class:`seqkit.LSTMStack` on either backend and :class:`seqkit.SimpleRNNStack`;
    anything else is an error naming the class.
    """
    from seqkit.srn import SimpleRNNStack

    if isinstance(stack, SimpleRNNStack):
        rnn = stack.rnn
        cells = []
        for k in range(stack.num_layers * stack.num_directions):
            sfx = f"_l{k // stack.num_directions}" + ("_reverse" if k % stack.num_directions else "")
            b = getattr(rnn, "bias_ih" + sfx) + getattr(rnn, "bias_hh" + sfx) if rnn.bias else None
            w_ih = getattr(rnn, "weight_ih" + sfx)
            cells.append(CellWeights("srn", CellSpec(), stack.hidden_size, ("h",), w_ih, getattr(rnn, "weight_hh" + sfx),
                                     b if b is not None else w_ih.new_zeros(w_ih.shape[0]), nonlinearity=rnn.nonlinearity))
        return cells
    if not isinstance(stack, LSTMStack):
        raise SeqkitError(f"the X-ray and the export read LSTMStack or SimpleRNNStack, not {type(stack).__name__}")
    if stack.implementation == "seqkit":
        return [CellWeights("lstm", layer.spec, layer.hidden_size, layer.spec.gate_names, layer.weight_ih,
                            layer.weight_hh, layer.bias, layer.peephole, layer.weight_gg, layer.weight_hr,
                            layer.ln_ih, layer.ln_hh, layer.ln_c_weight, layer.ln_c_bias)
                for layer in stack.layers]
    lstm, cells = stack.lstm, []
    for k in range(stack.num_layers * stack.num_directions):
        sfx = f"_l{k // stack.num_directions}" + ("_reverse" if k % stack.num_directions else "")
        w_hr = getattr(lstm, "weight_hr" + sfx) if stack.proj_size else None
        cells.append(CellWeights("lstm", CellSpec(), stack.hidden_size, ("i", "f", "g", "o"),
                                 getattr(lstm, "weight_ih" + sfx), getattr(lstm, "weight_hh" + sfx),
                                 getattr(lstm, "bias_ih" + sfx) + getattr(lstm, "bias_hh" + sfx), w_hr=w_hr))
    return cells


def _ln(z: Tensor) -> Tensor:
    """Layer normalisation without gain over the last dim (seqkit.cells' epsilon). aten's
    layer_norm, not mean/var by hand: the ONNX exporter fails on a hand-written reduction inside
    a scan body (torch 2.13), and the result is the same to float rounding."""
    return torch.nn.functional.layer_norm(z, z.shape[-1:], eps=_LN_EPS)


def project(w: CellWeights, x: Tensor) -> Tensor:
    """Input projections of every step at once: (..., I) -> (..., G*H), bias included."""
    if w.ln_ih is None:
        return torch.nn.functional.linear(x, w.w_ih, w.bias)
    return _ln(torch.nn.functional.linear(x, w.w_ih)) * w.ln_ih + w.bias


def cell_step(w: CellWeights, a_x: Tensor, h: Tensor, c: Tensor, prev: Optional[Tensor]):
    """One step of one layer and direction, written out gate by gate.

    :param a_x: (B, G*H) the step's input projection (:func:`project`).
    :param h: (B, P) and ``c`` (B, H): the previous state.
    :param prev: (B, S*H) the previous step's sigmoid gate activations (full gate recurrence
        only; zeros before the first step), else None.
    :returns: h (B, P), C (B, H), the next ``prev`` (or None), and a dict of the quantities of
        :data:`QUANTITIES` this cell has (absent ones left out).
    """
    H = w.hidden_size
    q = h @ w.w_hh.t()  # (B, G*H)
    if w.kind == "srn":
        z = a_x + q
        h_new = torch.tanh(z) if w.nonlinearity == "tanh" else torch.relu(z)
        return h_new, c, None, {"h": h_new}
    s = w.spec
    if w.ln_hh is not None:
        q = _ln(q) * w.ln_hh
    a = a_x + q  # (B, G*H)
    if w.w_gg is not None and prev is not None:
        S = s.num_sigmoid
        # R·[i₋₁, f₋₁, o₋₁] reaches the sigmoid rows only: R padded with zero rows for C̃, so the
        # step needs no slice of `a` (a slice inside a scan body does not export, torch 2.13)
        r = torch.cat([w.w_gg, w.w_gg.new_zeros(a.shape[1] - S * H, S * H)], 0)  # (G*H, S*H)
        a = a + prev @ r.t()
    pre = dict(zip(w.gate_names, a.split(H, 1)))  # each (B, H)
    peep = dict(zip(s.peephole_names, w.peephole.unbind(0))) if w.peephole is not None else {}
    acts: dict[str, Tensor] = {}
    f = torch.sigmoid(pre["f"] + peep["f"] * c if "f" in peep else pre["f"]) if s.forget_gate else None
    if s.coupled:
        i = 1.0 - f
    elif s.input_gate:
        i = torch.sigmoid(pre["i"] + peep["i"] * c if "i" in peep else pre["i"])
    else:
        i = None
    g = torch.tanh(pre["g"]) if s.input_activation else pre["g"]
    c_new = (c if f is None else f * c) + (g if i is None else i * g)
    cl = _ln(c_new) * w.ln_c_w + w.ln_c_b if w.ln_c_w is not None else c_new
    y = torch.tanh(cl) if s.output_activation else cl
    o = torch.sigmoid(pre["o"] + peep["o"] * c_new if "o" in peep else pre["o"]) if s.output_gate else None
    m = y if o is None else o * y
    h_new = m @ w.w_hr.t() if w.w_hr is not None else m  # (B, P)
    for name, v in (("input", i), ("forget", f), ("output", o)):
        if v is not None:
            acts[name] = v
    acts.update(candidate=g, cell=c_new, cell_abs=c_new.abs(), h=h_new)
    nxt = None
    if w.w_gg is not None:
        nxt = torch.cat([v for v in (i if s.input_gate else None, f, o) if v is not None], 1)  # (B, S*H)
    return h_new, c_new, nxt, acts


def reverse_index(lengths: Tensor, T: int) -> Tensor:
    """(B, T) the time index that reverses each sequence within its own length (its last real
    step comes first); padding maps to itself, so applying it twice is the identity."""
    steps = torch.arange(T, device=lengths.device).unsqueeze(0)  # (1, T)
    r = lengths.unsqueeze(1) - 1 - steps  # (B, T)
    return torch.where(r >= 0, r, steps.expand_as(r))


def gather_time(x: Tensor, index: Tensor) -> Tensor:
    """``x`` (B, T, F) reordered along time by ``index`` (B, T)."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


# ---------------------------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------------------------


@dataclass
class Trace:
    """What :func:`trace_stack` recorded. ``values[(layer, direction, quantity)]`` is (B, T, units)
    in input time order (the backward direction un-reversed), NaN on padding."""

    values: dict[tuple[int, str, str], np.ndarray]
    lengths: np.ndarray
    num_layers: int
    directions: tuple[str, ...]
    absent: dict[tuple[int, str, str], str]
    description: str = ""
    labels: list[list[str]] = field(default_factory=list)
    """Per example, the x-axis label of every step (its token), or empty: step numbers."""
    final: Optional[tuple[Tensor, Tensor]] = None
    """The (h, C) the recomputation ends in, shaped like torch.nn.LSTM's state."""
    outputs: Optional[Tensor] = None
    """(B, T, D) the last layer's outputs, zeros on padding, as the stack returns them."""

    def key(self, layer: int, direction: str, quantity: str) -> str:
        return f"l{layer}.{direction}.{quantity}"

    def to_npz(self, path: str) -> None:
        """Write the traces: one (B, T, units) float32 array per ``l{layer}.{direction}.{quantity}``,
        ``lengths``, ``labels`` (B, T) strings, and ``meta`` (a JSON string: layers, directions,
        absent quantities and why)."""
        arrays = {self.key(*k): v.astype(np.float32) for k, v in self.values.items()}
        T = max((v.shape[1] for v in self.values.values()), default=0)
        labels = np.array([list(row) + [""] * (T - len(row)) for row in self.labels] or np.zeros((0, T)), dtype=str)
        meta = {"num_layers": self.num_layers, "directions": list(self.directions), "quantities": list(QUANTITIES),
                "absent": {self.key(*k): why for k, why in self.absent.items()}, "description": self.description,
                "padding": "NaN"}
        np.savez_compressed(path, lengths=self.lengths, labels=labels, meta=np.array(json.dumps(meta)), **arrays)

    def saturation(self, low: float = 0.1, high: float = 0.9) -> list[dict[str, Any]]:
        """Per layer, direction and gate: the share of real-step values below ``low`` and above
        ``high`` (absent gates: a row saying so)."""
        rows = []
        for layer in range(self.num_layers):
            for d in self.directions:
                for gate in GATES:
                    k = (layer, d, gate)
                    if k in self.absent:
                        rows.append({"layer": layer, "direction": d, "gate": gate, "below": None, "above": None,
                                     "mean": None, "count": 0, "note": self.absent[k]})
                        continue
                    v = self.values[k]
                    v = v[~np.isnan(v)]
                    n = int(v.size)
                    rows.append({"layer": layer, "direction": d, "gate": gate,
                                 "below": round(float((v < low).mean()), 4) if n else None,
                                 "above": round(float((v > high).mean()), 4) if n else None,
                                 "mean": round(float(v.mean()), 4) if n else None, "count": n, "note": ""})
        return rows


def trace_stack(stack: torch.nn.Module, x: Tensor, lengths: Optional[Tensor] = None,
                state: Optional[tuple[Tensor, Tensor]] = None) -> Trace:
    """Run ``stack`` (an :class:`~seqkit.LSTMStack` or :class:`~seqkit.SimpleRNNStack`) over
    ``x`` (B, T, I) step by step from its weights, recording every quantity of every layer and
    direction. Eval-mode semantics: no dropout between layers."""
    B, T, _ = x.shape  # batch, time, input features
    cells = stack_cells(stack)
    L, D = stack.num_layers, stack.num_directions
    lengths = torch.full((B,), T, dtype=torch.long) if lengths is None else lengths.detach().to("cpu", torch.long)
    lens = lengths.to(x.device)
    mask = (torch.arange(T, device=x.device).unsqueeze(0) < lens.unsqueeze(1))  # (B, T)
    rev = reverse_index(lens, T)
    values, absent, hs, cs = {}, {}, [], []
    dirs = DIRECTIONS[:D]
    inp = x
    with torch.no_grad():
        for layer in range(L):
            outs = []
            for d in range(D):
                w = cells[layer * D + d]
                k = layer * D + d
                H, P = w.hidden_size, w.out_size
                h = x.new_zeros(B, P) if state is None else state[0][k]
                c = x.new_zeros(B, H) if state is None else state[1][k]
                prev = x.new_zeros(B, w.spec.num_sigmoid * H) if w.w_gg is not None else None
                xp = project(w, inp if d == 0 else gather_time(inp, rev))  # (B, T, G*H)
                rec: dict[str, list[Tensor]] = {}
                out = []
                for t in range(T):
                    live = mask[:, t].unsqueeze(1)  # (B, 1): padding keeps the state
                    h_new, c_new, prev_new, acts = cell_step(w, xp[:, t], h, c, prev)
                    h, c = torch.where(live, h_new, h), torch.where(live, c_new, c)
                    if prev is not None:
                        prev = torch.where(live, prev_new, prev)
                    out.append(torch.where(live, h_new, torch.zeros_like(h_new)))
                    for name, v in acts.items():
                        rec.setdefault(name, []).append(torch.where(live, v, torch.full_like(v, float("nan"))))
                y = torch.stack(out, 1)  # (B, T, P)
                outs.append(y if d == 0 else gather_time(y, rev))
                hs.append(h)
                cs.append(c)
                for name, why in w.present().items():
                    if why:
                        absent[(layer, dirs[d], name)] = why
                        continue
                    seq = torch.stack(rec[name], 1)  # (B, T, units)
                    values[(layer, dirs[d], name)] = (seq if d == 0 else gather_time(seq, rev)).cpu().numpy()
            inp = outs[0] if D == 1 else torch.cat(outs, -1)  # (B, T, D*P)
    w0 = cells[0]
    if w0.kind == "srn":
        desc = "SimpleRNNStack"
    else:
        s = w0.spec
        desc = (f"LSTMStack({stack.implementation}, variant={s.variant}, peepholes={s.has_peepholes}, "
                f"layer_norm={s.layer_norm}, proj_size={getattr(stack, 'proj_size', 0)})")
    return Trace(values, lengths.numpy(), L, dirs, absent, desc, final=(torch.stack(hs), torch.stack(cs)), outputs=inp)


def _step_labels(model: Any, batch: Batch, B: int, T: int) -> list[list[str]]:
    """Per example, the token of every step (token inputs with a vocabulary), else []."""
    spec = getattr(model, "spec", None)
    vocab = None
    if spec is not None and spec.input_kind == "tokens" and isinstance(batch.inputs, Tensor):
        vocabs = spec.vocabs or {}
        vocab = vocabs.get("tokens") or vocabs.get("source") or next(iter(vocabs.values()), None)
    if vocab is None or not hasattr(vocab, "decode"):
        return []
    lengths = batch.lengths.tolist() if batch.lengths is not None else [T] * B
    return [vocab.decode(batch.inputs[b, : lengths[b]].tolist(), strip_specials=False) for b in range(B)]


def trace_model(model: Any, batch: Batch, examples: Optional[int] = None) -> Trace:
    """Trace the recurrent stack of a :class:`~seqkit.SequenceModel` on the first ``examples``
    sequences of ``batch`` (all of them when None), through the model's own encoder (member 0's,
    when the model is an ensemble)."""
    rnn = getattr(model, "rnn", None)
    if rnn is None:
        raise SeqkitError("this model has no recurrent stack (model.rnn is null): there is nothing to trace")
    n = batch.size if examples is None else min(examples, batch.size)
    inputs = batch.inputs[:n]
    lengths = batch.lengths[:n] if batch.lengths is not None else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = model.encoder(inputs, lengths)  # (n, T, I)
            trace = trace_stack(rnn, x, lengths)
    finally:
        model.train(was_training)
    trace.labels = _step_labels(model, Batch(inputs=inputs, lengths=lengths), n, x.shape[1])
    return trace


# ---------------------------------------------------------------------------------------------
# Pictures and tables
# ---------------------------------------------------------------------------------------------

_CMAPS = {"input": "viridis", "forget": "viridis", "output": "viridis", "candidate": "RdBu_r", "cell": "RdBu_r",
          "cell_abs": "magma", "h": "RdBu_r"}
_TITLES = {"input": "input gate i", "forget": "forget gate f", "output": "output gate o",
           "candidate": "candidate C̃", "cell": "cell C", "cell_abs": "|C|", "h": "h"}


def plot_example(trace: Trace, example: int, layer: int, direction: str, max_units: int = 64,
                 max_steps: int = 400, quantities: Sequence[str] = QUANTITIES):
    """A matplotlib figure: one units × time heatmap per quantity of one example, layer and
    direction, with the input tokens (or step numbers) on the x axis. Absent quantities get a
    panel saying so."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = int(trace.lengths[example])
    steps = min(n, max_steps)
    labels = trace.labels[example][:steps] if trace.labels else []
    fig, axes = plt.subplots(len(quantities), 1, figsize=(min(max(5.0, 2.0 + 0.12 * steps), 14), 1.1 * len(quantities) + 0.8),
                             squeeze=False, sharex=True)
    for ax, q in zip(axes[:, 0], quantities):
        k = (layer, direction, q)
        if k in trace.absent or k not in trace.values:
            ax.text(0.5, 0.5, f"{_TITLES[q]}: {trace.absent.get(k, 'not recorded')}", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8, color="0.4")
            ax.set_yticks([])
            ax.set_ylabel(_TITLES[q], fontsize=8)
            continue
        v = trace.values[k][example, :steps, :max_units].T  # (units, steps)
        if q in GATES:
            lo, hi = 0.0, 1.0
        elif q == "cell_abs":
            lo, hi = 0.0, float(np.nanmax(v)) if v.size else 1.0
        else:
            m = float(np.nanmax(np.abs(v))) if v.size else 1.0
            lo, hi = -m, m
        im = ax.imshow(v, aspect="auto", interpolation="nearest", cmap=_CMAPS[q], vmin=lo, vmax=hi or 1.0)
        ax.set_ylabel(_TITLES[q], fontsize=8)
        ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03).ax.tick_params(labelsize=6)
    ax = axes[-1, 0]
    if labels and steps <= 80:
        ax.set_xticks(range(steps))
        ax.set_xticklabels(labels, fontsize=6, rotation=90 if max(map(len, labels), default=1) > 2 else 0)
    ax.set_xlabel("step" + (" (input token)" if labels else ""), fontsize=8)
    fig.suptitle(f"example {example}, layer {layer}, {direction}\n{trace.description}", fontsize=7)
    # fixed margins: tight_layout doubles the drawing time of these many-panel figures
    fig.subplots_adjust(left=0.13, right=0.9, top=1 - 0.45 / fig.get_figheight(), bottom=0.75 / fig.get_figheight(),
                        hspace=0.25)
    return fig


def figures(trace: Trace, examples: Optional[int] = None, **kwargs):
    """(name, figure) for every traced example, layer and direction."""
    n = len(trace.lengths) if examples is None else min(examples, len(trace.lengths))
    for b in range(n):
        for layer in range(trace.num_layers):
            for d in trace.directions:
                yield f"example{b}_layer{layer}_{d}", plot_example(trace, b, layer, d, **kwargs)


def write_outputs(trace: Trace, out_dir: str, examples: Optional[int] = None, dpi: int = 80) -> dict[str, Any]:
    """Write ``trace.npz``, one PNG per example, layer and direction, and ``saturation.csv`` /
    ``saturation.json`` into ``out_dir``; returns the saturation rows and the files written."""
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    files = [os.path.join(out_dir, "trace.npz")]
    trace.to_npz(files[0])
    for name, fig in figures(trace, examples):
        path = os.path.join(out_dir, f"{name}.png")
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        files.append(path)
    rows = trace.saturation()
    with open(os.path.join(out_dir, "saturation.json"), "w", encoding="utf-8") as fh:
        json.dump({"low": 0.1, "high": 0.9, "stack": trace.description, "rows": rows}, fh, indent=2)
    with open(os.path.join(out_dir, "saturation.csv"), "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["layer"])
        writer.writeheader()
        writer.writerows(rows)
    files += [os.path.join(out_dir, "saturation.json"), os.path.join(out_dir, "saturation.csv")]
    return {"saturation": rows, "files": files}


def format_saturation(rows: list[dict[str, Any]]) -> str:
    """The saturation rows as an aligned text table."""
    lines = [f"{'layer':>5} {'direction':<9} {'gate':<7} {'< 0.1':>7} {'> 0.9':>7} {'mean':>7}"]
    for r in rows:
        if r["below"] is None:
            lines.append(f"{r['layer']:>5} {r['direction']:<9} {r['gate']:<7} {r['note'] or 'no steps'}")
        else:
            lines.append(f"{r['layer']:>5} {r['direction']:<9} {r['gate']:<7} {r['below']:>7.1%} {r['above']:>7.1%} "
                         f"{r['mean']:>7.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The callback
# ---------------------------------------------------------------------------------------------


class GateTrace(pl.Callback):
    """Trace the gates of a few validation sequences every N validations: images in TensorBoard
    when the run logs there (``configs/trainer/tensorboard.yaml``), PNGs and the saturation table
    in ``<log dir>/xray/step_<global step>/`` otherwise.

    In YAML: ``trainer.callbacks: [{class_path: seqkit.xray.GateTrace, init_args: {every_n: 5}}]``.
    """

    def __init__(self, every_n: int = 1, examples: int = 2, max_units: int = 64, max_steps: int = 200,
                 out_dir: Optional[str] = None) -> None:
        """
        Args:
            every_n: Trace after every N-th validation run (the sanity check does not count).
            examples: How many validation sequences to trace (the first ones of the first batch).
            max_units: Show at most this many units per heatmap (the NPZ keeps them all).
            max_steps: Show at most this many steps per heatmap.
            out_dir: Folder for the PNGs when the logger is not TensorBoard; default: the
                logger's log_dir (else the trainer's default_root_dir) + ``/xray``.
        """
        super().__init__()
        if every_n < 1 or examples < 1:
            raise SeqkitError(f"GateTrace: every_n and examples must be >= 1 (got {every_n} and {examples})")
        self.every_n, self.examples = every_n, examples
        self.max_units, self.max_steps, self.out_dir = max_units, max_steps, out_dir
        self._count = 0
        self._batch: Optional[Batch] = None

    def _first_batch(self, trainer: pl.Trainer) -> Optional[Batch]:
        if self._batch is None:
            loaders = trainer.val_dataloaders
            loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
            if loader is None:
                return None
            batch = next(iter(loader))
            n = min(self.examples, batch.size)
            self._batch = Batch(inputs=batch.inputs[:n], lengths=None if batch.lengths is None else batch.lengths[:n])
        return self._batch

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._count += 1
        if self._count % self.every_n or not trainer.is_global_zero:
            return
        batch = self._first_batch(trainer)
        if batch is None:
            return
        dev = pl_module.device
        batch = Batch(inputs=batch.inputs.to(dev), lengths=batch.lengths)
        trace = trace_model(pl_module, batch, self.examples)
        self.log_trace(trainer, trace)

    def log_trace(self, trainer: pl.Trainer, trace: Trace) -> None:
        """Send ``trace`` to TensorBoard (every figure as an image, the saturation as scalars), or
        write it as files."""
        import matplotlib.pyplot as plt
        from lightning.pytorch.loggers import TensorBoardLogger

        step = trainer.global_step
        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is not None:
            writer = tb.experiment
            for name, fig in figures(trace, self.examples, max_units=self.max_units, max_steps=self.max_steps):
                writer.add_figure(f"xray/{name}", fig, global_step=step, close=True)
            for r in trace.saturation():
                if r["below"] is not None:
                    tag = f"xray_saturation/l{r['layer']}.{r['direction']}.{r['gate']}"
                    writer.add_scalar(f"{tag}.below", r["below"], step)
                    writer.add_scalar(f"{tag}.above", r["above"], step)
            writer.flush()
            return
        root = self.out_dir
        if root is None:
            logger = trainer.logger
            root = os.path.join(getattr(logger, "log_dir", None) or trainer.default_root_dir, "xray")
        out = os.path.join(root, f"step_{step}")
        os.makedirs(out, exist_ok=True)
        trace.to_npz(os.path.join(out, "trace.npz"))
        for name, fig in figures(trace, self.examples, max_units=self.max_units, max_steps=self.max_steps):
            fig.savefig(os.path.join(out, f"{name}.png"), dpi=80)
            plt.close(fig)
        with open(os.path.join(out, "saturation.json"), "w", encoding="utf-8") as fh:
            json.dump({"stack": trace.description, "rows": trace.saturation()}, fh, indent=2)


# ---------------------------------------------------------------------------------------------
# seqkit trace
# ---------------------------------------------------------------------------------------------


def _read_input(path: str, model: Any, datamodule: Any, n: int) -> Batch:
    """The first ``n`` sequences of ``path``: an .npz with ``inputs`` (N, T[, F]) and optional
    ``lengths`` (N,), or a file the data module's predict path reads (its ``predict_file``)."""
    if not os.path.exists(path):
        raise SeqkitError(f"--input: file not found: {path}")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            if "inputs" not in z:
                raise SeqkitError(f"--input {path}: an .npz needs an 'inputs' array (N, T) or (N, T, F); found {', '.join(z.files)}")
            inputs = torch.from_numpy(np.asarray(z["inputs"])[:n])
            lengths = torch.from_numpy(np.asarray(z["lengths"])[:n]).long() if "lengths" in z else None
        if model.spec.input_kind == "tokens":
            inputs = inputs.long()
        else:
            inputs = inputs.float()
        return Batch(inputs=inputs, lengths=lengths)
    if not hasattr(datamodule, "predict_file"):
        raise SeqkitError(f"--input {path}: {type(datamodule).__name__} has no predict_file to read it with; "
                          "give an .npz with 'inputs' (and 'lengths'), or --split val|test")
    datamodule.predict_file = path
    dataset = datamodule.dataset("predict")
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    if not items:
        raise SeqkitError(f"--input {path}: no sequences")
    return datamodule.collate(items)


def _split_batch(datamodule: Any, split: str, n: int) -> Batch:
    dataset = datamodule.dataset(split)
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    if not items:
        raise SeqkitError(f"--split {split}: {type(datamodule).__name__} has no {split} sequences")
    return datamodule.collate(items)


def trace_command(argv: list[str]) -> int:
    """``seqkit trace --ckpt_path X (--input FILE | --split val) [--examples N] --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="seqkit trace",
        description="Record the LSTM's gates, candidate, cell state and h of a checkpoint over a few input "
                    "sequences: trace.npz, PNG heatmaps (units x time) and a saturation table.",
        epilog="--input: a file the task's predict path reads (its data.init_args.predict_file format, e.g. one "
               "space-separated token sequence per line for MarkerTaskData), or an .npz with 'inputs' (N, T) / "
               "(N, T, F) and optional 'lengths' (N,). --split val|test: the data module's own sequences "
               "(generated tasks need no file).",
    )
    parser.add_argument("--ckpt_path", required=True, help="checkpoint written by seqkit fit")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="sequences to trace (see below)")
    src.add_argument("--split", choices=("train", "val", "test"), help="trace sequences of the data module's split")
    parser.add_argument("--examples", type=int, default=4, help="how many sequences to trace (default 4)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        from seqkit.checkpoint import load_model

        if args.examples < 1:
            raise SeqkitError(f"--examples must be >= 1, got {args.examples}")
        model, datamodule = load_model(args.ckpt_path)
        batch = (_read_input(args.input, model, datamodule, args.examples) if args.input
                 else _split_batch(datamodule, args.split, args.examples))
        trace = trace_model(model, batch, args.examples)
        result = write_outputs(trace, args.out)
    except SeqkitError as exc:
        sys.stderr.write(f"seqkit trace: error: {exc}\n")
        return 1
    print(f"traced {len(trace.lengths)} sequences through {trace.description}")
    print(format_saturation(result["saturation"]))
    print(f"wrote {len(result['files'])} files to {args.out} (trace.npz, PNG heatmaps, saturation.csv/json)")
    return 0
