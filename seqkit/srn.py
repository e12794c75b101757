"""The simple recurrent network (SRN): the baseline the LSTM was invented to beat.

Elman's (1990) simple recurrent network, the net whose vanishing and exploding gradients
Hochreiter (1991) and Bengio, Simard & Frasconi (1994) analysed and whose failure on long time
lags motivates Hochreiter & Schmidhuber (1997), "Long Short-Term Memory":

    h = tanh(W_h·h₋₁ + W_x·x + b)

stacked, optionally bidirectional, with dropout between layers. It runs on ``torch.nn.RNN`` and
honours the same forward contract as :class:`seqkit.LSTMStack` (lengths, initial state, final
state shaped like ``torch.nn.LSTM``'s), so a config switches between the two by changing
``model.rnn.class_path`` alone.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkit.lstm import RecurrentStack, State
from seqkit.ranges import PositiveInt, Probability


class SimpleRNNStack(RecurrentStack):
    """Stacked (bi)directional simple RNN, h = tanh(W_h·h₋₁ + W_x·x + b), over padded batches.

    It has no cell: the state it returns is ``(h, c)`` with ``c`` all zeros, so code written for
    the LSTM's ``(h, c)`` keeps working; a given initial state is read from ``h`` alone (a bare
    tensor is accepted too).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: PositiveInt = 128,
        num_layers: PositiveInt = 1,
        bidirectional: bool = False,
        dropout: Probability = 0.0,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
    ) -> None:
        """
        Args:
            input_size: Size of each input step (set by the model from the encoder).
            hidden_size: Size of the hidden state h.
            num_layers: Number of stacked layers.
            bidirectional: Run a second RNN backwards over each sequence and concatenate both.
            dropout: Dropout on the outputs of every layer but the last.
            nonlinearity: "tanh" (the SRN of the LSTM paper) or "relu".
        """
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.rnn = nn.RNN(
            input_size,
            hidden_size,
            num_layers=num_layers,
            nonlinearity=nonlinearity,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_size = hidden_size * self.num_directions

    def forward(self, x, lengths=None, state=None) -> tuple[torch.Tensor, State]:
        B, T, _ = x.shape  # batch, time, input features
        h0 = state[0] if isinstance(state, (tuple, list)) else state  # (layers*dirs, B, H) or None
        if lengths is None:
            out, h = self.rnn(x, h0)
        else:
            packed = pack_padded_sequence(x, lengths.detach().cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
            out, h = self.rnn(packed, h0)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D), zeros on padding
        return out, (h, torch.zeros_like(h))
