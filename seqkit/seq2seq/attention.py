"""Attention over an encoder's states: the score functions of the classic RNN encoder-decoders.

* ``dot``:      score(q, s) = qᵀ s                       (Luong, Pham & Manning 2015)
* ``general``:  score(q, s) = qᵀ W s                     (Luong et al. 2015)
* ``additive``: score(q, s) = vᵀ tanh(W_q q + W_k s)      (Bahdanau, Cho & Bengio 2015; the MLP
  score Xu et al. 2015 use over image regions in Show, Attend and Tell)

The query q is a decoder state and s runs over the S memory steps (source words, image regions).
The memory-side products (W s, W_k s) depend only on the memory, so :meth:`Attention.keys`
computes them once per input and every decoding step reuses them. How the context vector enters
the decoder (Luong's attentional state after the LSTM step, or Bahdanau's and Xu's context fed into
it) is :class:`seqkit.seq2seq.AttentionDecoder`'s business, not this module's.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import nn

from seqkit.errors import SeqkitError

AttentionKind = Literal["none", "dot", "general", "additive"]
"""The attention a decoder uses; ``none`` (Sutskever et al. 2014) attends to nothing."""


class Attention(nn.Module):
    """Scores a query against a memory and returns (context, weights).

    Letters: N rows (inputs, or inputs x beams), S memory steps, T query steps, D memory size,
    H query size, A additive-attention size.
    """

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: Optional[int] = None,
                 where: str = "model.head.init_args.attention") -> None:
        """
        Args:
            kind: "dot", "general" or "additive".
            query_size: H, the size of the decoder state that asks.
            memory_size: D, the size of each memory step (doubled for a bidirectional encoder).
            attention_size: A, the hidden size of the additive score (default: query_size).
            where: The config key named in errors.
        """
        super().__init__()
        if kind not in ("dot", "general", "additive"):
            raise SeqkitError(f"{where}: unknown kind {kind!r}; choose none, dot, general or additive")
        if kind == "dot" and query_size != memory_size:
            raise SeqkitError(
                f"{where}: 'dot' needs the decoder size ({query_size}) to equal the encoder output size "
                f"({memory_size}, doubled when bidirectional); use 'general' or change hidden_size"
            )
        self.kind = kind
        if kind == "general":
            self.w = nn.Linear(memory_size, query_size, bias=False)
        elif kind == "additive":
            A = attention_size or query_size
            self.w_k = nn.Linear(memory_size, A, bias=False)
            self.w_q = nn.Linear(query_size, A)
            self.v = nn.Linear(A, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """The memory-only part of the score, computed once: (N, S, D) -> (N, S, H or A)."""
        if self.kind == "general":
            return self.w(memory)
        if self.kind == "additive":
            return self.w_k(memory)
        return memory

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend with ``query`` (N, H), or (N, T, H) for T queries at once.

        :param keys: (N, S, ·) what :meth:`keys` gave for ``memory``.
        :param memory: (N, S, D) the steps to attend over.
        :param mask: (N, S) True on real memory steps; None: every step is real.
        :returns: context (N, [T,] D) and weights (N, [T,] S), which sum to one over real steps.
        """
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # (N, T, H)
        if self.kind == "additive":
            scores = self.v(torch.tanh(keys.unsqueeze(1) + self.w_q(q).unsqueeze(2))).squeeze(-1)  # (N, T, S)
        else:
            scores = torch.bmm(q, keys.transpose(1, 2))  # (N, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (N, T, S)
        context = torch.bmm(weights, memory)  # (N, T, D)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights
