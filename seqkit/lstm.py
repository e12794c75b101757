"""The LSTM stack: the core recurrent layer seqkit models are built on.

Follows the LSTM of Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", with the forget
gate of Gers, Schmidhuber & Cummins (2000), "Learning to Forget":

    f = σ(W_f·[h₋₁, x] + b_f)      forget gate
    i = σ(W_i·[h₋₁, x] + b_i)      input gate
    C̃ = tanh(W_C·[h₋₁, x] + b_C)   candidate cell
    C = f ∗ C₋₁ + i ∗ C̃
    o = σ(W_o·[h₋₁, x] + b_o)      output gate
    h = o ∗ tanh(C)

stacked, optionally bidirectional, with dropout between layers and an optional projection of h
(Sak et al. 2014). This configuration (``variant: vanilla``) runs on ``torch.nn.LSTM`` (cuDNN on
GPU, oneDNN on CPU).

``variant`` selects one of the gate variants compared by Greff et al. (2016), "LSTM: A Search
Space Odyssey", and ``peepholes`` / ``layer_norm`` add the peephole connections of Gers &
Schmidhuber (2000) and the layer normalisation of Ba et al. (2016); those run on seqkit's own
recurrence (``seqkit/cells.py``, where each variant's equations are written out). Note that
seqkit's ``vanilla`` has no peepholes, while Greff et al.'s "vanilla" does: theirs is seqkit's
``peephole``.

Lengths. Padding comes after each sequence's real steps, so nothing real depends on it; how the
stack avoids its cost and keeps it out of the state:

- Equal lengths (any backend, any device): the steps up to that length run as one batch; there
  is nothing to mask.
- torch backend on CPU, ragged lengths: the dense path (``_forward_dense``), one call of
  nn.LSTM's own oneDNN kernel per layer and direction over the padded batch, with a padding flag
  that saturates the gates so C passes through padding unchanged and no gradient enters it; the
  backward direction reverses each sequence within its own length (a gather), runs the same way
  and is reversed back. The flag is what lets one dense call give C at each sequence's own end:
  nn.LSTM returns h at every step (gathered there) but C only at the last. Parameters stay nn.LSTM's
  (``lstm.weight_ih_l0`` ...). Packing (``pack_padded_sequence``) is used instead only where a
  cost model (``_pack``) says it wins: B >= 32, H >= 256 and few rows still running in most
  steps. Measured with ``benchmarks/lstm_speed.py --pack-vs-dense --threads 1 --clock cpu``
  (forward + backward, packed time / dense time, median of 5 pairs, > 1: dense wins): lognormal
  lengths 2.72 (B16 T20 H64), 2.31 (B32 T100 H256), 1.51 (B64 T50 H512); a quarter of the rows
  long, the rest of length 5: 2.57, 1.31, 0.72; one long row, the rest of length 5: 2.46, 0.61,
  0.36. (Packed backward on CPU zero-fills a full-size tensor per step, so it grows with T².)
- torch backend off the CPU: packed, as before (cuDNN runs packed sequences natively; no GPU was
  available to measure the dense path there).
- seqkit's own recurrence (cells.py): sorted by length, each step computing only the rows still
  running (packing done by the loop itself, which has none of torch's packed backward cost, so
  the dense method has nothing to win there). Equal lengths skip the sort.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Literal, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkit.cells import VARIANTS, CellSpec, LSTMLayer, torch_lstm_layer
from seqkit.errors import SeqkitError
from seqkit.ranges import NonNegativeInt, PositiveInt, Probability

State = tuple[torch.Tensor, torch.Tensor]

# Gate pre-activation that saturates σ exactly in float32/64 (σ(1e4) = 1, σ(-1e4) = 0) and is
# still finite in float16 (max 65504), so 0 × it stays 0 on real steps under autocast.
_PAD_BIG = 1e4
_FORCE: dict = {}  # {"torch": True (pack) / False (dense)}: overrides LSTMStack._pack, for tests and benchmarks

Variant = Literal["vanilla", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "cifg", "fgr"]


class LSTMConfigError(SeqkitError, ValueError):
    """An LSTMStack option that is invalid, alone or together with another."""


class RecurrentStack(nn.Module, ABC):
    """Base of recurrent stacks. Subclasses take ``input_size`` first and set ``output_size``.

    ``forward(x, lengths, state)`` maps (B, T, I) to ((B, T, D), final state), where steps at or
    past ``lengths`` are padding: they never change the outputs at real steps nor the final state.
    """

    output_size: int

    @abstractmethod
    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None, state: State | None = None
    ) -> tuple[torch.Tensor, State]: ...


class LSTMStack(RecurrentStack):
    """Stacked (bi)directional LSTM over padded batches, in any of the gate variants of Greff et
    al. (2016), with the forget bias of Gers et al. (2000).

    The plain configuration runs torch.nn.LSTM; any other runs seqkit's own recurrence
    (``implementation`` says which one ran: ``"torch"`` or ``"seqkit"``). Both take and return
    states shaped like torch.nn.LSTM's: h (layers*directions, B, proj_size or hidden_size) and
    C (layers*directions, B, hidden_size).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: PositiveInt = 128,
        num_layers: PositiveInt = 1,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        proj_size: NonNegativeInt = 0,
        forget_bias: Optional[float] = None,
        variant: Variant = "vanilla",
        peepholes: bool = False,
        layer_norm: bool = False,
        backend: Literal["auto", "torch", "seqkit"] = "auto",
    ) -> None:
        """
        Args:
            input_size: Size of each input step (set by the model from the encoder).
            hidden_size: Size of the cell state C (and of h unless proj_size is set).
            num_layers: Number of stacked LSTM layers.
            bidirectional: Run a second LSTM backwards over each sequence and concatenate both.
            dropout: Dropout on the outputs of every layer but the last.
            proj_size: If > 0, project h to this size after each step (LSTMP, Sak et al. 2014).
            forget_bias: Initial forget-gate bias; default 1.0 as Gers et al. (2000) recommend, so
                the cell starts by remembering. Not allowed with variant nfg (no forget gate).
            variant: The gate structure (Greff et al. 2016). vanilla: torch.nn.LSTM's LSTM, no
                peepholes (Greff's "NP"); peephole: vanilla plus peepholes (Greff's "vanilla");
                nig / nfg / nog: no input / forget / output gate; niaf / noaf: no input / output
                activation function; cifg: coupled input and forget gate (i = 1 - f); fgr: full
                gate recurrence. Equations in seqkit/cells.py and docs/lstm.md.
            peepholes: Add peephole connections (Gers & Schmidhuber 2000) to any variant, as in
                all of Greff et al.'s variants (``variant: peephole`` implies it).
            layer_norm: Layer-normalise the gate pre-activations and the cell (Ba et al. 2016).
            backend: "auto": torch.nn.LSTM for the plain configuration (vanilla, no peepholes,
                no layer norm), seqkit's own recurrence otherwise; "seqkit": always seqkit's own
                (for checks and comparisons); "torch": torch.nn.LSTM, an error for any other
                configuration.
        """
        super().__init__()
        if variant not in VARIANTS:
            raise LSTMConfigError(f"LSTMStack: unknown variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
        if backend not in ("auto", "torch", "seqkit"):
            raise LSTMConfigError(f"LSTMStack: unknown backend {backend!r}; valid: auto, torch, seqkit")
        if num_layers < 1:
            raise LSTMConfigError(f"LSTMStack: num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise LSTMConfigError(f"LSTMStack: dropout must be in [0, 1), got {dropout}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise LSTMConfigError(
                f"LSTMStack: proj_size must be 0 or smaller than hidden_size ({hidden_size}), got {proj_size}"
            )
        spec = CellSpec(variant, peepholes, layer_norm)
        if forget_bias is not None and not spec.forget_gate:
            raise LSTMConfigError(
                f"LSTMStack: forget_bias={forget_bias} cannot be used with variant={variant!r}, which has no forget gate"
            )
        if backend == "torch" and not spec.is_plain:
            extra = [f"variant={variant!r}"] if variant != "vanilla" else []
            extra += ["peepholes=True"] * peepholes + ["layer_norm=True"] * layer_norm
            raise LSTMConfigError(
                f"LSTMStack: backend='torch' (torch.nn.LSTM) cannot run {', '.join(extra)}; use backend 'auto' or 'seqkit'"
            )
        forget_bias = 1.0 if forget_bias is None else forget_bias
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.proj_size, self.dropout = bidirectional, proj_size, dropout
        self.num_directions = 2 if bidirectional else 1
        self.cell_spec = spec  # the variant's gate structure (seqkit.cells.CellSpec)
        self.output_size = (proj_size or hidden_size) * self.num_directions
        self.implementation = "torch" if spec.is_plain and backend != "seqkit" else "seqkit"
        if self.implementation == "torch":
            self.lstm = nn.LSTM(
                input_size,
                hidden_size,
                num_layers=num_layers,
                batch_first=True,
                bidirectional=bidirectional,
                dropout=dropout if num_layers > 1 else 0.0,
                proj_size=proj_size,
            )
            self.reset_forget_bias(forget_bias)
            # the w_ih column for the padding flag of _forward_dense, in nn.LSTM's gate order
            # (i, f, g, o): shut i, open f, shut o (not a parameter: outside the state dict)
            big = torch.tensor([-_PAD_BIG, _PAD_BIG, 0.0, -_PAD_BIG]).repeat_interleave(hidden_size)
            self.register_buffer("_pad_gates", big.unsqueeze(1), persistent=False)
        else:
            out = proj_size or hidden_size
            self.layers = nn.ModuleList(
                LSTMLayer(input_size if layer == 0 else out * self.num_directions, hidden_size, spec, proj_size,
                          forget_bias)
                for layer in range(num_layers)
                for _ in range(self.num_directions)
            )

    @torch.no_grad()
    def reset_forget_bias(self, value: float) -> None:
        H = self.hidden_size
        if self.implementation == "seqkit":
            for layer in self.layers:
                if layer.spec.forget_gate:
                    layer.gate("f", layer.bias).fill_(value)
            return
        for name, param in self.lstm.named_parameters():
            # nn.LSTM orders gate rows (i, f, g, o); it has two bias vectors, so split the value.
            if name.startswith("bias_ih"):
                param[H : 2 * H].fill_(value)
            elif name.startswith("bias_hh"):
                param[H : 2 * H].zero_()

    def forward(self, x, lengths=None, state=None):
        if self.implementation == "seqkit":
            return self._forward_seqkit(x, lengths, state)
        if lengths is None:
            out, (h, c) = self.lstm(x, state)
            return out, (h, c)
        B, T, _ = x.shape  # batch, time, input features
        lens, lo, T_run = _check_lengths(lengths, T)
        if T_run == 0:  # every sequence is empty: nothing runs, the state is kept
            L, D, H = self.num_layers, self.num_directions, self.hidden_size
            P = self.proj_size or H
            if state is None:
                state = (x.new_zeros(L * D, B, P), x.new_zeros(L * D, B, H))
            return x.new_zeros(B, T, D * P), state
        if lo == T_run:  # all equal: no padding within the first T_run steps, nothing to mask
            out, (h, c) = self.lstm(x[:, :T_run] if T_run < T else x, state)
            return _pad_time(out, T), (h, c)
        if x.device.type == "cpu" and not self._pack(lens, T_run):
            return self._forward_dense(x[:, :T_run] if T_run < T else x, lens, lo, state, T)
        return self._forward_packed(x, lens, state)

    def _pack(self, lens: torch.Tensor, T_run: int) -> bool:
        """Whether torch's packed sequences beat the dense path for these lengths on CPU: a cost
        model fitted to benchmarks of both (module docstring). Packing saves the rows of
        sequences that have ended, but its backward grows with T_run²/H, and below B = 32 or
        H = 256 its fixed costs outweigh what it saves."""
        if self.implementation in _FORCE:  # set by tests and benchmarks to time one path
            return _FORCE[self.implementation]
        B, H = len(lens), self.hidden_size
        if B < 32 or H < 256:
            return False
        running = (lens.unsqueeze(0) > torch.arange(T_run).unsqueeze(1)).sum(1)  # (T_run,) rows per step
        rows = float(running.clamp(min=4).sum()) / (T_run * B)  # a step costs at least ~4 rows
        return rows * (1.2 + 3.6 * T_run / H) + 0.2 < 0.8

    def _forward_packed(self, x: torch.Tensor, lens: torch.Tensor, state: State | None):
        """torch's packed sequences (see the module docstring for where they are used)."""
        B, T, _ = x.shape  # batch, time, input features
        packed = pack_padded_sequence(x, lens.clamp(min=1), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.lstm(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D), zeros on padding
        if bool((lens == 0).any()):  # packing needs a step per sequence: undo it for empty ones
            empty = (lens == 0).to(x.device)
            h0, c0 = state if state is not None else (torch.zeros_like(h), torch.zeros_like(c))
            h = torch.where(empty.view(1, B, 1), h0, h)
            c = torch.where(empty.view(1, B, 1), c0, c)
            out = out.masked_fill(empty.view(B, 1, 1), 0.0)
        return out, (h, c)

    def _forward_dense(self, x: torch.Tensor, lens: torch.Tensor, lo: int, state: State | None, T: int):
        """torch.nn.LSTM's dense kernel over a padded batch with ragged lengths, as exact as
        packing; ``x`` (B, T_run, I) holds the steps up to the longest sequence, of ``T`` in all;
        ``lens`` (B,) on the CPU, ``lo`` the shortest.

        One kernel call per layer and direction, each with w_ih widened by a column that an extra
        input feature, 1 on padding and 0 on real steps, drives to ±_PAD_BIG on the gates: there σ
        gives exactly f = 1, i = 0 and o = 0, so C passes through every padding step unchanged
        (C_T is C at the sequence's own end), h is 0, and every gate derivative is 0, so no
        gradient flows through padding either. Real steps see a 0 in that column: they compute
        what nn.LSTM computes. h at each sequence's own end is gathered from the outputs.
        Written with as few tensor ops as it takes: at (B16, T20, H64) each one costs about 1 %
        of a forward + backward.
        """
        B, T_run, _ = x.shape  # batch, steps up to the longest sequence, input features
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        P = self.proj_size or H
        pad = torch.arange(T_run).unsqueeze(0) >= lens.unsqueeze(1)  # (B, T_run), True on padding
        last = (lens - 1).clamp_(min=0)  # (B,) each sequence's last step
        rev = None
        if D == 2:  # time index that reverses each sequence within its own length
            r = lens.unsqueeze(1) - 1 - torch.arange(T_run)  # (B, T_run)
            rev = torch.where(r >= 0, r, torch.arange(T_run)).unsqueeze(-1).to(x.device)  # (B, T_run, 1)
        pad = pad.to(x.device)
        flag = pad.unsqueeze(-1).to(x.dtype)  # (B, T_run, 1): the extra input feature
        rows = torch.arange(B, device=x.device)
        last = last.to(x.device)
        if state is None:
            h0 = x.new_zeros(L * D, B, P)
            c0 = x.new_zeros(L * D, B, H)
        else:
            h0, c0 = state
        # Zero the padding, so the gates saturate whatever it held. A product, not masked_fill
        # (5x slower here), unless the sum says some value is not finite.
        if math.isfinite(float(x.detach().sum())):
            inp = x * (1.0 - flag)
        else:
            inp = x.masked_fill(pad.unsqueeze(-1), 0.0)
        col = self._pad_gates  # (4H, 1)
        weights = self.lstm._flat_weights  # per layer and direction: w_ih, w_hh, b_ih, b_hh (, w_hr)
        n = len(weights) // (L * D)
        hs, cs = [], []
        for layer in range(L):
            outs = []
            for d in range(D):
                k = layer * D + d
                w = weights[k * n : (k + 1) * n]
                w = [torch.cat([w[0], col], 1)] + w[1:]  # w_ih (4H, I + 1)
                src = inp if d == 0 else inp.gather(1, rev.expand(-1, -1, inp.shape[-1]))
                y, _, cT = torch_lstm_layer(torch.cat([src, flag], -1), h0[k : k + 1], c0[k : k + 1], w,
                                            self.training)  # (B, T_run, P)
                hs.append(y[rows, last])  # (B, P): h at each sequence's own end
                cs.append(cT)
                outs.append(y if d == 0 else y.gather(1, rev.expand(-1, -1, P)))
            inp = outs[0] if D == 1 else torch.cat(outs, -1)  # (B, T_run, D*P)
            if self.dropout and layer < L - 1:
                inp = nn.functional.dropout(inp, self.dropout, self.training)
        h, c = torch.stack(hs), (cs[0] if L * D == 1 else torch.cat(cs))  # (L*D, B, P), (L*D, B, H)
        if lo == 0:  # C passed through untouched; h must be the given one too
            h = torch.where((lens == 0).to(x.device).view(1, B, 1), h0, h)
        # h on padding is o·tanh(C) with o = σ(-_PAD_BIG) = 0 exactly: out is zero there already
        return _pad_time(inp, T), (h, c)

    def _forward_seqkit(self, x: torch.Tensor, lengths: torch.Tensor | None, state: State | None):
        # The recurrence computes in the weights' dtype: under autocast (mixed precision) its
        # hand-written backward would otherwise meet mixed dtypes.
        dtype = self.layers[0].weight_hh.dtype
        if _autocast_on(x.device.type) or x.dtype != dtype:
            with torch.autocast(device_type=x.device.type, enabled=False):
                state = None if state is None else (state[0].to(dtype), state[1].to(dtype))
                return self._run_seqkit(x.to(dtype), lengths, state)
        return self._run_seqkit(x, lengths, state)

    def _run_seqkit(self, x: torch.Tensor, lengths: torch.Tensor | None, state: State | None):
        B, T, _ = x.shape  # batch, time, input features
        L, D, H, P = self.num_layers, self.num_directions, self.hidden_size, self.proj_size or self.hidden_size
        if state is None:
            h0 = x.new_zeros(L * D, B, P)
            c0 = x.new_zeros(L * D, B, H)
        else:
            h0, c0 = state
        xt = x.transpose(0, 1)  # (T, B, I): time-major, so each step is a contiguous (B, ·) block
        inverse = rev = batch_sizes = None
        T_run = T
        if lengths is not None:
            lens, lo, T_run = _check_lengths(lengths, T)
            if T_run == 0:  # every sequence is empty: nothing runs, the state is kept
                return x.new_zeros(B, T, D * P), (h0, c0)
            if lo < T_run:
                # Packed (measured faster than running every row densely, see the module
                # docstring): sort by decreasing length, so step t computes only the
                # batch_sizes[t] sequences still running and padding never reaches a state.
                lens, order_cpu = torch.sort(lens, descending=True, stable=True)
                steps = torch.arange(T_run)
                batch_sizes = (lens.unsqueeze(0) > steps.unsqueeze(1)).sum(1).tolist()
                order = order_cpu.to(x.device)
                inverse = torch.empty_like(order_cpu).scatter_(0, order_cpu, torch.arange(B)).to(x.device)
                xt = xt[:T_run].index_select(1, order)
                h0, c0 = h0.index_select(1, order), c0.index_select(1, order)
                if D == 2:  # time index that reverses each sequence within its own length
                    r = lens.unsqueeze(0) - 1 - steps.unsqueeze(1)  # (T_run, B)
                    rev = torch.where(r >= 0, r, steps.unsqueeze(1).expand_as(r)).to(x.device)
            elif T_run < T:
                xt = xt[:T_run]  # all equal: steps past them are never computed
        finals_h, finals_c = [], []
        inp = xt  # (T_run, B, I)
        for layer in range(L):
            outs = []
            for d in range(D):
                cell = self.layers[layer * D + d]
                src = inp if d == 0 else _reverse(inp, rev)
                k = layer * D + d
                out_d, hT, cT = cell.scan(cell.project(src), h0[k], c0[k], batch_sizes)  # (T_run, B, P)
                outs.append(out_d if d == 0 else _reverse(out_d, rev))
                finals_h.append(hT)
                finals_c.append(cT)
            inp = outs[0] if D == 1 else torch.cat(outs, -1)  # (T_run, B, D*P)
            if self.dropout and layer < L - 1:
                inp = nn.functional.dropout(inp, self.dropout, self.training)
        h, c = torch.stack(finals_h), torch.stack(finals_c)  # (L*D, B, P), (L*D, B, H)
        out = inp.transpose(0, 1)  # (B, T_run, D*P), zeros on padding
        if inverse is not None:
            out, h, c = out[inverse], h[:, inverse], c[:, inverse]
        return (_pad_time(out, T) if T_run < T else out.contiguous()), (h, c)


def _check_lengths(lengths: torch.Tensor, T: int) -> tuple[torch.Tensor, int, int]:
    """``lengths`` as a CPU long tensor, checked to be in [0, T], with its min and max."""
    lens = lengths.detach().to("cpu", torch.long)
    if not lens.numel():
        return lens, 0, 0
    lo, hi = torch.aminmax(lens)
    lo, hi = int(lo), int(hi)
    if hi > T or lo < 0:
        raise SeqkitError(f"LSTMStack: lengths must be in [0, {T}] for {T} steps, got {lens.tolist()}")
    return lens, lo, hi


def _pad_time(out: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T', F) -> (B, T, F) with zeros after step T'."""
    if out.shape[1] == T:
        return out
    return nn.functional.pad(out, (0, 0, 0, T - out.shape[1]))


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _reverse(x: torch.Tensor, rev: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of time-major ``x`` (T, B, F) within its own length (its own end
    comes first); padding stays where it is."""
    if rev is None:
        return x.flip(0)
    return torch.gather(x, 0, rev.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def final_hidden(state: State, num_layers: int, num_directions: int) -> torch.Tensor:
    """The last layer's final h, both directions concatenated: (B, D)."""
    h = state[0]
    L, B, Hp = h.shape  # layers*directions, batch, hidden (or proj) size
    h = h.view(num_layers, num_directions, B, Hp)[-1]  # (dirs, B, H)
    return h.transpose(0, 1).reshape(B, num_directions * Hp)
