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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkit.cells import VARIANTS, CellSpec, LSTMLayer
from seqkit.errors import SeqkitError

State = tuple[torch.Tensor, torch.Tensor]

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
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        proj_size: int = 0,
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
        B, T, _ = x.shape  # batch, time, input features
        if lengths is None:
            out, (h, c) = self.lstm(x, state)
            return out, (h, c)
        lens = lengths.detach().cpu()
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
        order = inverse = rev = None
        batch_sizes = [B] * T
        T_run = T
        if lengths is not None:
            lens = lengths.detach().to("cpu", torch.long)
            if int(lens.max()) > T or int(lens.min()) < 0:
                raise SeqkitError(f"LSTMStack: lengths must be in [0, {T}] for {T} steps, got {lens.tolist()}")
            if int(lens.min()) < T:
                # Run like a packed sequence: sort by decreasing length, so step t computes only
                # the batch_sizes[t] sequences still running and padding never reaches a state.
                lens, order_cpu = torch.sort(lens, descending=True, stable=True)
                T_run = int(lens[0])
                steps = torch.arange(T_run)
                batch_sizes = (lens.unsqueeze(0) > steps.unsqueeze(1)).sum(1).tolist()
                order = order_cpu.to(x.device)
                inverse = torch.empty_like(order_cpu).scatter_(0, order_cpu, torch.arange(B)).to(x.device)
                xt = xt[:T_run].index_select(1, order)
                h0, c0 = h0.index_select(1, order), c0.index_select(1, order)
                if D == 2:  # time index that reverses each sequence within its own length
                    r = lens.unsqueeze(0) - 1 - steps.unsqueeze(1)  # (T_run, B)
                    rev = torch.where(r >= 0, r, steps.unsqueeze(1).expand_as(r)).to(x.device)
        finals_h, finals_c = [], []
        inp = xt  # (T_run, B, I)
        for layer in range(L):
            outs = []
            for d in range(D):
                cell = self.layers[layer * D + d]
                src = inp if d == 0 else _reverse(inp, rev)
                k = layer * D + d
                if T_run == 0:  # every sequence is empty: nothing runs, the state is kept
                    out_d, hT, cT = src.new_zeros(0, B, P), h0[k], c0[k]
                else:
                    out_d, hT, cT = cell.scan(cell.project(src), h0[k], c0[k], batch_sizes)  # (T_run, B, P)
                outs.append(out_d if d == 0 else _reverse(out_d, rev))
                finals_h.append(hT)
                finals_c.append(cT)
            inp = outs[0] if D == 1 else torch.cat(outs, -1)  # (T_run, B, D*P)
            if self.dropout and layer < L - 1:
                inp = nn.functional.dropout(inp, self.dropout, self.training)
        h, c = torch.stack(finals_h), torch.stack(finals_c)  # (L*D, B, P), (L*D, B, H)
        if T_run < T:
            inp = nn.functional.pad(inp, (0, 0, 0, 0, 0, T - T_run))  # (T, B, D*P), zeros on padding
        if inverse is not None:
            return inp.transpose(0, 1)[inverse], (h[:, inverse], c[:, inverse])
        return inp.transpose(0, 1).contiguous(), (h, c)


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
