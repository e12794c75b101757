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
(Sak et al. 2014). This configuration runs on ``torch.nn.LSTM`` (cuDNN on GPU, oneDNN on CPU).
The gate variants compared by Greff et al. (2016), "LSTM: A Search Space Odyssey", build on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

State = tuple[torch.Tensor, torch.Tensor]


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
    """Stacked (bi)directional LSTM over padded batches, with the forget bias of Gers et al. 2000."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        proj_size: int = 0,
        forget_bias: float = 1.0,
    ) -> None:
        """
        Args:
            input_size: Size of each input step (set by the model from the encoder).
            hidden_size: Size of the cell state C (and of h unless proj_size is set).
            num_layers: Number of stacked LSTM layers.
            bidirectional: Run a second LSTM backwards over each sequence and concatenate both.
            dropout: Dropout on the outputs of every layer but the last.
            proj_size: If > 0, project h to this size after each step (LSTMP, Sak et al. 2014).
            forget_bias: Initial forget-gate bias; 1.0 as Gers et al. (2000) recommend, so the
                cell starts by remembering.
        """
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"proj_size must be 0 or smaller than hidden_size ({hidden_size}), got {proj_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.proj_size = bidirectional, proj_size
        self.num_directions = 2 if bidirectional else 1
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
            proj_size=proj_size,
        )
        self.output_size = (proj_size or hidden_size) * self.num_directions
        self.reset_forget_bias(forget_bias)

    @torch.no_grad()
    def reset_forget_bias(self, value: float) -> None:
        H = self.hidden_size
        for name, param in self.lstm.named_parameters():
            # nn.LSTM orders gate rows (i, f, g, o); it has two bias vectors, so split the value.
            if name.startswith("bias_ih"):
                param[H : 2 * H].fill_(value)
            elif name.startswith("bias_hh"):
                param[H : 2 * H].zero_()

    def forward(self, x, lengths=None, state=None):
        B, T, _ = x.shape  # batch, time, input features
        if lengths is None:
            out, (h, c) = self.lstm(x, state)
            return out, (h, c)
        packed = pack_padded_sequence(x, lengths.detach().cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.lstm(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D), zeros on padding
        return out, (h, c)


def final_hidden(state: State, num_layers: int, num_directions: int) -> torch.Tensor:
    """The last layer's final h, both directions concatenated: (B, D)."""
    h = state[0]
    L, B, Hp = h.shape  # layers*directions, batch, hidden (or proj) size
    h = h.view(num_layers, num_directions, B, Hp)[-1]  # (dirs, B, H)
    return h.transpose(0, 1).reshape(B, num_directions * Hp)
