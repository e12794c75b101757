"""The one-to-many head: an LSTM decoder that writes a sequence from one input (an image, a vector).

Two ways to condition the decoder on the encoder's S region features (B, S, D), chosen with
``mode``:

- ``show_tell`` - Show and Tell (Vinyals et al. 2015, "Show and Tell: A Neural Image Caption
  Generator"): the input is seen once, at the start; here its mean feature initialises the
  decoder's (h, c) through a learned projection (the initialisation of Xu et al. 2015).
- ``show_attend_tell`` - Show, Attend and Tell (Xu et al. 2015, "Show, Attend and Tell: Neural
  Image Caption Generation with Visual Attention"): the same start, and at every step soft
  attention over the S regions (an MLP score as in Bahdanau et al. 2015) gives a context vector,
  scaled by a learned gate beta = sigmoid(w . h) (Xu et al. sec. 4.2.1), that is fed to the LSTM
  with the previous word and to the output layer. ``attention_reg`` adds their "doubly stochastic"
  penalty sum_i (1 - sum_t alpha_ti)^2, which pushes the decoder to look at every region.

The decoder is seqkit's shared ``seqkit.seq2seq.AttentionDecoder`` with the attention placed at
its input (the translation head places it at the output, as Luong et al. 2015): an LSTM stack
(Hochreiter & Schmidhuber 1997) with forget-gate bias 1 (Gers et al. 2000).

Training uses teacher forcing: the decoder reads the reference caption shifted by one
(``teacher_forcing`` < 1 feeds its own previous prediction instead with that probability -
scheduled sampling, Bengio et al. 2015). Decoding - greedy and beam search - is
``seqkit.seq2seq``'s, the same code the translation head uses.

Metrics: BLEU-1 to BLEU-4 (Papineni et al. 2002; torchmetrics) of the decoded output against all
of an input's references, and exact match (the output equals one of the references). Validation
decodes greedily (fast); test and predict use ``beam_size``. Attention pictures are drawn by the
``seqkit.seq2seq.AttentionPlot`` callback from what this head records in ``attention_log``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torchmetrics import Metric, MetricCollection
from torchmetrics.text import BLEUScore

from seqkit import EncodeFn, Encoded, Head, SeqkitError, length_mask, records_for
from seqkit.seq2seq import AttentionDecoder, AttentionLog, AttentionMap, DecoderState, Hypotheses
from seqkit_caption.spec import CaptionSpec, OneToManyBatch, OneToManySpec


class ExactMatch(Metric):
    """Share of outputs equal to one of their references (after tokenisation)."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: list[str], target: list[list[str]]) -> None:
        self.correct += sum(1.0 for p, refs in zip(preds, target) if p in refs)
        self.total += len(preds)

    def compute(self) -> torch.Tensor:
        return self.correct / self.total.clamp(min=1.0)


class OneToManyHead(Head):
    """LSTM decoder generating a token sequence from the encoder's region features (one-to-many)."""

    spec_type = OneToManySpec
    prediction_format = "csv"
    attention_log: Optional[AttentionLog] = None
    """Set by ``seqkit.seq2seq.AttentionPlot`` while testing or predicting: the head records the
    attention of the examples it asks for."""

    def __init__(
        self,
        spec: OneToManySpec,
        input_size: int,
        mode: Literal["show_tell", "show_attend_tell"] = "show_attend_tell",
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        attention_size: int = 128,
        dropout: float = 0.0,
        teacher_forcing: float = 1.0,
        attention_reg: float = 0.0,
        beam_size: int = 1,
        val_beam_size: int = 1,
        length_penalty: float = 1.0,
        max_len: Optional[int] = None,
        min_length: int = 0,
        block_ngram_repeat: int = 0,
        word_dropout: float = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        """
        Args:
            spec: Sizes and the target vocabulary from the data module (linked automatically).
            input_size: Size D of each region feature (set by the model from the encoder).
            mode: "show_tell": the input only initialises the decoder state (Vinyals et al.
                2015); "show_attend_tell": also soft attention over the regions at every step
                (Xu et al. 2015).
            embedding_dim: Size of the word embeddings.
            hidden_size: Size of the decoder LSTM's state.
            num_layers: Stacked decoder LSTM layers.
            attention_size: Size of the attention MLP (show_attend_tell only).
            dropout: Dropout on the word embeddings and before the output layer (and between
                LSTM layers).
            teacher_forcing: Probability of feeding the reference word (not the model's own
                previous prediction) at each training step; 1.0 is plain teacher forcing.
            attention_reg: Weight of the doubly stochastic attention penalty (Xu et al. 2015,
                eq. 14); 0 turns it off.
            beam_size: Beam width for test and predict (1 = greedy).
            val_beam_size: Beam width for validation BLEU (1, greedy, keeps validation cheap);
                ``seqkit validate --model.head.init_args.val_beam_size=3`` measures a beam on
                the validation images, to choose ``beam_size`` there and not on test.
            length_penalty: Beam search ranks finished outputs by log-prob / length**this.
            max_len: Most tokens to generate (default: the longest training target + <eos>).
            min_length: The decoder may not end a caption before this many words (the core
                search's constraint, as in translation).
            block_ngram_repeat: Never repeat an n-gram of this many words within one caption
                (OpenNMT-py's option; 0: off) - against "a red a red ..." loops.
            word_dropout: Probability of replacing each teacher-forced input word by <unk> in
                training (Bowman et al. 2016), so the decoder leans on the image rather than on
                the words so far.
            label_smoothing: Label smoothing of the word cross-entropy (Szegedy et al. 2016).
        """
        super().__init__(spec, input_size)
        vocab = spec.vocabs.get("target")
        if vocab is None:
            raise SeqkitError(f"OneToManyHead needs a target vocabulary (spec.vocabs['target']); "
                              f"{spec.source or 'the data module'} gives none")
        if mode not in ("show_tell", "show_attend_tell"):
            raise SeqkitError(f"model.head.init_args.mode: unknown mode {mode!r}; choose show_tell or show_attend_tell")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise SeqkitError(f"model.head.init_args.teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if beam_size < 1 or val_beam_size < 1:
            raise SeqkitError(f"model.head.init_args.beam_size and val_beam_size must be >= 1, got {beam_size}, {val_beam_size}")
        self.val_beam_size = val_beam_size
        for name, value in (("min_length", min_length), ("block_ngram_repeat", block_ngram_repeat)):
            if value < 0:
                raise SeqkitError(f"model.head.init_args.{name} must be >= 0, got {value}")
        for name, value in (("word_dropout", word_dropout), ("label_smoothing", label_smoothing)):
            if not 0.0 <= value < 1.0:
                raise SeqkitError(f"model.head.init_args.{name} must be in [0, 1), got {value}")
        self.constraints = {"min_length": min_length, "block_ngram_repeat": block_ngram_repeat}
        self.word_dropout, self.label_smoothing = word_dropout, label_smoothing
        self.vocab = vocab
        self.mode = mode
        self.teacher_forcing, self.attention_reg = teacher_forcing, attention_reg
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_len = max_len or int(spec.max_target_len)
        attend = mode == "show_attend_tell"
        self.decoder = AttentionDecoder(
            len(vocab), input_size, embedding_dim, hidden_size, num_layers, dropout,
            attention="additive" if attend else "none", attention_size=attention_size, placement="input",
            input_feeding=False, context_gate=attend, bridge="dense", pad_id=vocab.pad_id,
        )
        self.set_metrics(MetricCollection(
            {f"bleu{n}": BLEUScore(n_gram=n) for n in range(1, 5)} | {"exact": ExactMatch()}, compute_groups=False
        ))
        del self.train_metrics  # training is teacher-forced: nothing decoded to score

    def monitor(self) -> tuple[str, str]:
        return "val_bleu4", "max"  # greedy BLEU-4 on the validation images, every validation

    # -- decoding -----------------------------------------------------------------------------
    def start(self, encoded: Encoded) -> DecoderState:
        """The decoder's state from the region features: (h, c) from their mean, plus what
        attention reuses at every step."""
        return self.decoder.start(encoded.outputs, encoded.lengths)

    def search(self, state: DecoderState, beam_size: int) -> Hypotheses:
        """Decode a batch from its initial state: greedy (beam_size 1) or beam search."""
        v = self.vocab
        return self.decoder.generate(state, v.bos_id, v.eos_id, self.max_len, beam_size, self.length_penalty,
                                     pad_id=v.pad_id, **self.constraints)

    def texts(self, tokens: torch.Tensor) -> list[str]:
        """Decoded ids (B, L) as space-joined tokens, the form references are compared in."""
        return [" ".join(self.vocab.decode(row)) for row in tokens.tolist()]

    # -- the Head contract --------------------------------------------------------------------
    def loss(self, encoded: Encoded, batch: OneToManyBatch, stage: str, encode: EncodeFn) -> torch.Tensor:
        state = self.start(encoded)
        B = state.h.shape[0]
        targets = batch.targets  # (C, T + 1): <bos> w1 ... w_n <eos>, padded
        C, T1 = targets.shape
        owner = batch.target_example  # (C,): the input each caption belongs to
        if owner is not None:  # several captions per input: encoded once, decoded per caption
            owner = owner.to(targets.device)
            tf_state = state.rows(owner)
        else:
            owner = torch.arange(C, device=targets.device)
            tf_state = state
        lengths = batch.target_lengths.to(targets.device)  # (C,) with <bos> and <eos>
        targets = targets.masked_fill(~length_mask(lengths, T1), self.vocab.pad_id)  # padding never counts
        inputs = targets[:, :-1]
        if stage == "train" and self.word_dropout > 0:
            drop = (torch.rand(inputs.shape, device=inputs.device) < self.word_dropout) & (inputs != self.vocab.pad_id)
            drop[:, 0] = False  # <bos> stays
            inputs = inputs.masked_fill(drop, self.vocab.unk_id)
        logits, alphas = self.decoder.teacher_forced(tf_state, inputs, self.teacher_forcing)  # (C, T, V)
        gold = targets[:, 1:]  # (C, T)
        T = gold.shape[1]
        n = (lengths - 1).clamp(min=1)  # (C,) real target steps
        mask = length_mask(n, T).to(logits.dtype)  # (C, T)
        smoothing = self.label_smoothing if stage == "train" else 0.0  # validation loss stays the NLL
        nll = F.cross_entropy(logits.transpose(1, 2), gold, reduction="none", label_smoothing=smoothing) * mask  # (C, T)
        per_caption = nll.sum(1) / n.to(nll.dtype)  # (C,) mean per word
        if alphas is not None and self.attention_reg > 0:
            cover = (alphas * mask.unsqueeze(-1)).sum(1)  # (C, S)
            per_caption = per_caption + self.attention_reg * ((1.0 - cover) ** 2).sum(1)
        # mean over each input's captions, then over inputs: the same loss whichever way a batch
        # of inputs is split across DDP ranks
        counts = torch.zeros(B, device=gold.device, dtype=nll.dtype).index_add_(0, owner, torch.ones_like(per_caption))
        loss = (per_caption / counts[owner]).sum() / B
        metrics = self.metrics(stage)
        if metrics is not None:
            with torch.no_grad():
                hyps = self.search(state, self.val_beam_size if stage == "val" else self.beam_size)
            metrics.update(self.texts(hyps.tokens), batch.references)
            self._record_attention(batch, hyps)
        return loss

    @torch.no_grad()
    def predict(self, encoded: Encoded, batch: OneToManyBatch, encode: EncodeFn) -> list[dict[str, Any]]:
        hyps = self.search(self.start(encoded), self.beam_size)
        self._record_attention(batch, hyps)
        spec = self.spec
        records = records_for(batch)
        for b, rec in enumerate(records):
            words = self.vocab.decode(hyps.tokens[b].tolist())
            if spec.source_field != "input":
                rec[spec.source_field] = rec.pop("input", "")
            rec[spec.target_field] = spec.tokenizer.detokenize(words) if spec.tokenizer is not None else " ".join(words)
            rec["log_prob"] = round(float(hyps.scores[b]), 4)
        return records

    def _record_attention(self, batch: OneToManyBatch, hyps: Hypotheses) -> None:
        """Hand the attention of the inputs the AttentionPlot callback asked for to its log: over
        the image for image data."""
        log = self.attention_log
        if log is None or hyps.attention is None:
            return
        image = isinstance(self.spec, CaptionSpec) and self.spec.input_kind == "image"
        if image:
            mean = torch.tensor(self.spec.mean).view(3, 1, 1)
            std = torch.tensor(self.spec.std).view(3, 1, 1)
        names = batch.names or [None] * batch.size
        for b, index in enumerate(batch.index.tolist()):
            if not log.wants(index):
                continue
            n = int(hyps.lengths[b])
            words = [self.vocab.itos[t] for t in hyps.tokens[b, :n].tolist()]
            picture = (batch.inputs[b].detach().float().cpu() * std + mean).clamp(0, 1) if image else None  # (3, H, W)
            log.add(AttentionMap(index, words, hyps.attention[b, :n].float().cpu(), image=picture, name=names[b]))
