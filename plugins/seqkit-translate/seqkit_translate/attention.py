"""Attention over the encoder's states, the score functions of the two classic RNN NMT papers:

* ``dot``:      score(h, s) = hᵀ s                       (Luong, Pham & Manning 2015)
* ``general``:  score(h, s) = hᵀ W s                     (Luong et al. 2015)
* ``additive``: score(h, s) = vᵀ tanh(W_q h + W_k s)      (Bahdanau, Cho & Bengio 2015)

All three are used in Luong's framework, as OpenNMT-py does: the query is the decoder's current
top-layer state h_t, and the context vector is combined with it into the attentional state
h̃_t = tanh(W_c [c_t; h_t]). The memory-side products (W s, W_k s) depend only on the source, so
they are computed once per sentence (``keys``) and reused at every decoding step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from seqkit import SeqkitError

AttentionKind = Literal["none", "dot", "general", "additive"]


class Attention(nn.Module):
    """Scores a decoder query against the encoder memory and returns (context, weights).

    Letters: N rows (sentences, or sentences x beams), S source steps, T query steps, D memory
    size, H query size, A additive-attention size.
    """

    def __init__(self, kind: AttentionKind, query_size: int, memory_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        if kind not in ("dot", "general", "additive"):
            raise SeqkitError(f"model.head.init_args.attention: unknown kind {kind!r}; choose none, dot, general or additive")
        if kind == "dot" and query_size != memory_size:
            raise SeqkitError(
                f"model.head.init_args.attention: 'dot' needs the decoder size ({query_size}) to equal the encoder "
                f"output size ({memory_size}, doubled when bidirectional); use 'general' or change hidden_size"
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
        """The source-only part of the score, computed once: (N, S, D) -> (N, S, H or A)."""
        if self.kind == "general":
            return self.w(memory)
        if self.kind == "additive":
            return self.w_k(memory)
        return memory

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (N, H) or (N, T, H); mask (N, S) True on real source steps.
        Returns context (N, [T,] D) and weights (N, [T,] S)."""
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # (N, T, H)
        if self.kind == "additive":
            scores = self.v(torch.tanh(keys.unsqueeze(1) + self.w_q(q).unsqueeze(2))).squeeze(-1)  # (N, T, S)
        else:
            scores = torch.bmm(q, keys.transpose(1, 2))  # (N, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (N, T, S)
        context = torch.bmm(weights, memory)  # (N, T, D)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights
