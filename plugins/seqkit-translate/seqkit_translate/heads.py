"""The encoder-decoder head for translation: an LSTM decoder with attention over the core
encoder's states.

* Sutskever, Vinyals & Le (2014): the decoder starts from the encoder's final state (here through
  a learned bridge, so a bidirectional or differently sized encoder works) — ``attention: none``.
* Bahdanau, Cho & Bengio (2015) and Luong, Pham & Manning (2015): attention over every encoder
  state (additive / dot / general scores, see ``attention.py``); Luong's input feeding passes the
  previous attentional state into the next step.
* Press & Wolf (2017): optionally tie the output layer to the target embedding.
* Bengio et al. (2015): with ``teacher_forcing`` < 1 the decoder is fed its own previous
  prediction instead of the reference token that share of the time.

The loss is the token cross-entropy summed over each sentence and averaged over sentences
(OpenNMT-py's default "sents" normalisation); it is exact under DDP, where every process holds an
equal share of each global batch. Validation, test and predict decode with ``seqkit.decoding``
(greedy, or beam search with a length penalty), batched over sentences; BLEU and chrF are scored
on detokenised text.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import CHRFScore, Perplexity, SacreBLEUScore

from seqkit import (
    Batch,
    Head,
    Hypotheses,
    LSTMStack,
    SeqkitError,
    Spec,
    atomic_write,
    beam_search,
    final_hidden,
    greedy_search,
    length_mask,
)
from seqkit_translate.attention import Attention, AttentionKind


class Seq2SeqHead(Head):
    """LSTM decoder with attention, input feeding, greedy/beam decoding, BLEU and chrF."""

    prediction_format = "txt"

    def __init__(
        self,
        spec: Spec,
        input_size: int,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        attention: AttentionKind = "general",
        attention_size: int | None = None,
        input_feeding: bool = True,
        bridge: Literal["dense", "zero"] = "dense",
        tie_embeddings: bool = False,
        teacher_forcing: float = 1.0,
        label_smoothing: float = 0.0,
        beam_size: int = 5,
        val_beam_size: int = 1,
        length_penalty: float = 1.0,
        max_length_ratio: float = 1.5,
        max_length_extra: int = 10,
        attention_plots: list[int] = [0, 1, 2],  # noqa: B006 - copied below; a list reads best in --help
    ) -> None:
        """
        Args:
            spec: Sizes and vocabularies from the data module (linked automatically).
            input_size: Size of the encoder's outputs (set by the model; doubled when bidirectional).
            embedding_dim: Size of the target-token embeddings.
            hidden_size: Size of the decoder LSTM's state.
            num_layers: Decoder LSTM layers.
            dropout: Dropout on embeddings, between decoder layers and before the output layer.
            attention: "none" (Sutskever et al. 2014), "dot" or "general" (Luong et al. 2015),
                "additive" (Bahdanau et al. 2015).
            attention_size: Hidden size of additive attention (default: hidden_size).
            input_feeding: Feed the previous attentional state into the next decoder step
                (Luong et al. 2015); ignored without attention.
            bridge: How the decoder starts: "dense" maps the encoder's final state (both
                directions) through a tanh layer to every decoder layer's (h, c); "zero" starts
                from zeros.
            tie_embeddings: Share the output layer's weights with the target embedding (Press &
                Wolf 2017); a projection is added when hidden_size != embedding_dim.
            teacher_forcing: Probability of feeding the reference token (else the model's own
                previous prediction) at each training step; 1.0 is plain teacher forcing.
            label_smoothing: Label smoothing of the training loss (Szegedy et al. 2016).
            beam_size: Beam size for test and predict; 1 is greedy search.
            val_beam_size: Beam size for validation BLEU (1, greedy, keeps validation cheap).
            length_penalty: Hypotheses are ranked by log-prob / length ** length_penalty (0:
                raw log-probability, which favours short outputs; 1: per-token mean).
            max_length_ratio: Longest output = max_length_ratio * source length + max_length_extra
                tokens (and never more than the data's max_target_length).
            max_length_extra: See max_length_ratio.
            attention_plots: Indices (in input order) of test/predict sentences whose attention
                weights are drawn as PNG heatmaps next to the run's logs; [] for none.
        """
        super().__init__(spec, input_size)
        target = spec.vocabs.get("target")
        if target is None:
            raise SeqkitError("Seq2SeqHead needs a data module with a target vocabulary (spec.vocabs['target']), "
                              "such as ParallelTextData")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise SeqkitError(f"model.head.init_args.teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if beam_size < 1 or val_beam_size < 1:
            raise SeqkitError("model.head.init_args.beam_size and val_beam_size must be >= 1")
        self.vocab = target
        self.tokenizer = spec.extra.get("target_tokenizer")
        self.max_target_length = int(spec.extra.get("max_target_length", 100))
        V, E, H, L = len(target), embedding_dim, hidden_size, num_layers
        self.hidden_size, self.num_layers = H, L
        self.attention_kind = attention
        self.input_feeding = input_feeding and attention != "none"
        self.teacher_forcing, self.label_smoothing = teacher_forcing, label_smoothing
        self.beam_size, self.val_beam_size, self.length_penalty = beam_size, val_beam_size, length_penalty
        self.max_length_ratio, self.max_length_extra = max_length_ratio, max_length_extra
        self.attention_plots = set(attention_plots or [])
        self._plot_dir: str | None = None

        self.embedding = nn.Embedding(V, E, padding_idx=target.pad_id)
        self.decoder = LSTMStack(E + (H if self.input_feeding else 0), hidden_size=H, num_layers=L, dropout=dropout)
        self.attention = Attention(attention, H, input_size, attention_size) if attention != "none" else None
        self.combine = nn.Linear(input_size + H, H) if self.attention is not None else None  # W_c of Luong et al.
        self.bridge = nn.Linear(input_size, 2 * L * H) if bridge == "dense" else None
        self.drop = nn.Dropout(dropout)
        if tie_embeddings:
            self.out_proj = nn.Linear(H, E) if H != E else nn.Identity()
            self.out_bias = nn.Parameter(torch.zeros(V))
            self.out = None
        else:
            self.out = nn.Linear(H, V)

        pad = target.pad_id
        base = {"acc": MulticlassAccuracy(V, ignore_index=pad, average="micro"), "ppl": Perplexity(ignore_index=pad)}
        self.set_metrics(MetricCollection(base, compute_groups=False))
        for stage in ("val", "test"):  # decoding metrics only where the head decodes
            metrics = {**{k: m.clone() for k, m in base.items()}, "bleu": SacreBLEUScore(tokenize="13a"), "chrf": CHRFScore()}
            setattr(self, f"{stage}_metrics", MetricCollection(metrics, prefix=f"{stage}_", compute_groups=False))

    # -- the decoder -------------------------------------------------------------------------
    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.out is not None:
            return self.out(x)
        return F.linear(self.out_proj(x), self.embedding.weight, self.out_bias)

    def init_state(self, model, encoded) -> dict[str, Any]:
        """The decoder's starting state, every tensor batch-first so beam search can reorder it."""
        memory = encoded.outputs  # (B, S, D)
        B, S, D = memory.shape
        lengths = encoded.lengths
        if lengths is None:
            lengths = torch.full((B,), S, dtype=torch.long)
        mask = length_mask(lengths.to(memory.device).clamp(min=1), S)  # (B, S); a blank source keeps one step
        H, L = self.hidden_size, self.num_layers
        if self.bridge is not None:
            summary = self._summary(model, encoded, mask)  # (B, D)
            hc = torch.tanh(self.bridge(summary)).view(B, 2, L, H)
            h, c = hc[:, 0], hc[:, 1]  # (B, L, H) each
        else:
            h = c = memory.new_zeros(B, L, H)
        with_attention = self.attention is not None
        return {
            "h": h,
            "c": c,
            "feed": memory.new_zeros(B, H) if self.input_feeding else None,
            "memory": memory if with_attention else None,
            "keys": self.attention.keys(memory) if with_attention else None,
            "mask": mask if with_attention else None,
        }

    def _summary(self, model, encoded, mask: torch.Tensor) -> torch.Tensor:
        """The encoder's final state, both directions of its last layer: (B, D)."""
        rnn = getattr(model, "rnn", None)
        if encoded.state is not None and hasattr(rnn, "num_layers") and hasattr(rnn, "num_directions"):
            summary = final_hidden(encoded.state, rnn.num_layers, rnn.num_directions)
            if summary.shape[-1] == self.input_size:
                return summary
        # no recurrent stack (or one with another state layout): the mean of the real steps
        m = mask.unsqueeze(-1).to(encoded.outputs.dtype)  # (B, S, 1)
        return (encoded.outputs * m).sum(1) / m.sum(1).clamp(min=1)

    def decode_step(self, tokens: torch.Tensor, state: dict[str, Any]) -> tuple[torch.Tensor, dict, torch.Tensor | None]:
        """One decoder step for N rows: tokens (N,) -> logits (N, V), new state, attention (N, S)."""
        x = self.drop(self.embedding(tokens))  # (N, E)
        if self.input_feeding:
            x = torch.cat([x, state["feed"]], -1)  # (N, E + H)
        h0, c0 = state["h"].transpose(0, 1).contiguous(), state["c"].transpose(0, 1).contiguous()  # (L, N, H)
        out, (h, c) = self.decoder(x.unsqueeze(1), None, (h0, c0))  # (N, 1, H)
        top = out[:, 0]  # (N, H)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(top, state["keys"], state["memory"], state["mask"])  # (N, D), (N, S)
            top = torch.tanh(self.combine(torch.cat([context, top], -1)))  # attentional state h̃ (N, H)
        top = self.drop(top)
        new_state = dict(state, h=h.transpose(0, 1), c=c.transpose(0, 1))
        if self.input_feeding:
            new_state["feed"] = top
        return self._logits(top), new_state, weights

    def teacher_forced(self, state: dict[str, Any], targets: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for targets (B, T) (which end in <eos>), feeding <bos> + targets[:, :-1]."""
        B, T = targets.shape
        bos = torch.full((B, 1), self.vocab.bos_id, dtype=torch.long, device=targets.device)
        inputs = torch.cat([bos, targets[:, :-1]], 1)  # (B, T)
        scheduled = self.training and self.teacher_forcing < 1.0
        if not self.input_feeding and not scheduled:
            # every input is known: run the LSTM over the whole sequence at once
            h0, c0 = state["h"].transpose(0, 1).contiguous(), state["c"].transpose(0, 1).contiguous()
            out, _ = self.decoder(self.drop(self.embedding(inputs)), None, (h0, c0))  # (B, T, H)
            if self.attention is not None:
                context, _ = self.attention(out, state["keys"], state["memory"], state["mask"])  # (B, T, D)
                out = torch.tanh(self.combine(torch.cat([context, out], -1)))
            return self._logits(self.drop(out))  # (B, T, V)
        logits = []
        tokens = inputs[:, 0]
        for t in range(T):
            step_logits, state, _ = self.decode_step(tokens, state)
            logits.append(step_logits)
            if t + 1 < T:
                tokens = inputs[:, t + 1]
                if scheduled:  # scheduled sampling: sometimes feed the model's own guess
                    own = step_logits.detach().argmax(-1)
                    gold = torch.rand(B, device=tokens.device) < self.teacher_forcing
                    tokens = torch.where(gold, tokens, own)
        return torch.stack(logits, 1)  # (B, T, V)

    # -- decoding ----------------------------------------------------------------------------
    def max_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) longest output per sentence: a ratio of its source length plus a margin."""
        limit = (lengths.float() * self.max_length_ratio).ceil().long() + self.max_length_extra
        return limit.clamp(min=1, max=self.max_target_length + 1)  # + 1: room for <eos>

    def generate(self, state: dict[str, Any], lengths: torch.Tensor, beam_size: int) -> Hypotheses:
        """Translate a batch: greedy (beam_size 1) or beam search, all sentences at once."""
        B = lengths.shape[0]

        def step(tokens, st):
            logits, st, weights = self.decode_step(tokens, st)
            return torch.log_softmax(logits.float(), -1), st, weights

        v = self.vocab
        max_len = self.max_lengths(lengths.to(state["h"].device))
        if beam_size == 1:
            return greedy_search(step, state, B, v.bos_id, v.eos_id, max_len, pad_id=v.pad_id)
        return beam_search(step, state, B, beam_size, v.bos_id, v.eos_id, max_len, self.length_penalty, pad_id=v.pad_id)

    def to_text(self, hyps: Hypotheses) -> list[list[str]]:
        """Output tokens of each hypothesis (up to <eos>, specials dropped)."""
        rows = hyps.tokens.tolist()
        return [self.vocab.decode(row[: int(n)]) for row, n in zip(rows, hyps.lengths.tolist())]

    def detokenize(self, tokens: list[str]) -> str:
        return self.tokenizer.detokenize(tokens) if self.tokenizer is not None else " ".join(tokens)

    # -- the Head contract -------------------------------------------------------------------
    def step(self, model, batch: Batch, stage: str) -> torch.Tensor:
        encoded = model.encode(batch)
        state = self.init_state(model, encoded)
        targets = batch.targets  # (B, T), ends in <eos>, padded with <pad>
        logits = self.teacher_forced(state, targets)  # (B, T, V)
        B, T, V = logits.shape
        token_loss = F.cross_entropy(
            logits.reshape(B * T, V).float(), targets.reshape(-1), ignore_index=self.vocab.pad_id,
            label_smoothing=self.label_smoothing, reduction="sum",
        )
        loss = token_loss / B  # summed over tokens, averaged over sentences
        metrics = self.metrics(stage)
        with torch.no_grad():
            metrics["acc"].update(logits.argmax(-1).reshape(-1), targets.reshape(-1))
            metrics["ppl"].update(logits.float(), targets)
            if stage != "train":
                beam = self.val_beam_size if stage == "val" else self.beam_size
                hyps = self.generate(state, batch.lengths, beam)
                texts = [self.detokenize(toks) for toks in self.to_text(hyps)]
                metrics["bleu"].update(texts, [[r] for r in batch.extra["references"]])
                metrics["chrf"].update(texts, [[r] for r in batch.extra["references"]])
                if stage == "test":
                    self._plots(model, batch, hyps, "test")
        return loss

    @torch.no_grad()
    def predict(self, model, batch: Batch) -> list[dict[str, Any]]:
        encoded = model.encode(batch)
        state = self.init_state(model, encoded)
        hyps = self.generate(state, batch.lengths, self.beam_size)
        self._plots(model, batch, hyps, "predict")
        records = []
        for i, toks, n, score in zip(batch.index.tolist(), self.to_text(hyps), batch.lengths.tolist(), hyps.scores.tolist()):
            blank = n == 0  # a blank input line gives a blank output line
            records.append({"index": i, "text": "" if blank else self.detokenize(toks),
                            "log_prob": None if blank else round(score, 4)})
        return records

    # -- attention pictures ------------------------------------------------------------------
    def _plots(self, model, batch: Batch, hyps: Hypotheses, stage: str) -> None:
        if not self.attention_plots or hyps.attention is None or batch.index is None:
            return
        trainer = getattr(model, "_trainer", None)
        if trainer is None:
            return
        if self._plot_dir is None:  # trainer.log_dir is a collective call: every rank asks at its first step
            self._plot_dir = trainer.log_dir or trainer.default_root_dir
        outputs = self.to_text(hyps)
        for row, index in enumerate(batch.index.tolist()):
            if index in self.attention_plots:
                src = batch.extra["source_tokens"][row]
                n_out = int(hyps.lengths[row])
                out = outputs[row] + (["<eos>"] if len(outputs[row]) < n_out else [])
                weights = hyps.attention[row, : len(out), : len(src)].float().cpu()
                path = os.path.join(self._plot_dir, f"attention_{stage}_{index}.png")
                plot_attention(path, src, out, weights)


def plot_attention(path: str, source: list[str], output: list[str], weights: torch.Tensor) -> None:
    """Draw attention ``weights`` (len(output), len(source)) as a heatmap PNG at ``path``."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no GUI backend

    T, S = max(1, len(output)), max(1, len(source))
    fig = Figure(figsize=(min(2 + 0.45 * S, 20), min(1.5 + 0.4 * T, 20)))
    ax = fig.add_subplot()
    ax.imshow(weights.numpy() if weights.numel() else torch.zeros(T, S).numpy(), cmap="Greys", vmin=0.0, vmax=1.0,
              aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(len(output)), output, fontsize=9)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)

