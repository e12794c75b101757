"""``SequenceModel``: the core LightningModule, and the only place that touches Lightning hooks.

input encoder (token embedding / feature projection / a plugin's encoder)
  -> recurrent stack (seqkit's LSTM stack by default)        -> Encoded(outputs, lengths, state, final)
  -> task head (owns loss, metrics and decoding; never sees this module)

Every part is injected by ``class_path`` in YAML. Sizes come from the data module's spec, linked
in by the CLI, so they are never written in a config.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

from seqkit import tbptt as _tbptt
from seqkit.encoders import InputEncoder, default_encoder
from seqkit.errors import SeqkitError
from seqkit.head import Head, _names, supports_ensemble
from seqkit.lstm import LSTMStack, RecurrentStack, final_hidden
from seqkit.ranges import PositiveFloat, PositiveInt
from seqkit.spec import Batch, Encoded, Spec, State, last_step


def _head_class(head: Any) -> Optional[type]:
    """The class behind a head factory (a class, or jsonargparse's partial of one)."""
    seen = 0
    while not isinstance(head, type) and hasattr(head, "func") and seen < 5:
        head, seen = head.func, seen + 1
    return head if isinstance(head, type) else None


def check_pairing(head_cls: type, spec: Spec) -> None:
    """Refuse a head whose spec type the data does not give, naming the data modules that would."""
    need = getattr(head_cls, "spec_type", Spec)
    if isinstance(spec, need):
        return
    from seqkit import plugins as _plugins

    registry = _plugins.get_registry()
    fits = []
    for name in registry.names("datamodules"):
        gives = getattr(registry.classes["datamodules"][name], "spec_type", Spec)
        if isinstance(gives, type) and issubclass(gives, need if isinstance(need, tuple) else (need,)):
            fits.append(name)
    raise SeqkitError(
        f"model.head: {head_cls.__name__} needs data giving a {_names(need)}, but {spec.source or 'the data module'} "
        f"gives a {type(spec).__name__}; data modules that fit: {', '.join(fits) or '(none installed)'}"
    )


def run_stack(encoder: InputEncoder, rnn: Optional[RecurrentStack], batch: Batch,
              state: Optional[State] = None) -> Encoded:
    """Run ``encoder`` and the recurrent stack ``rnn`` over ``batch.inputs``, starting from ``state``."""
    x = encoder(batch.inputs, batch.lengths)  # (B, T, D)
    if rnn is None:
        return Encoded(x, batch.lengths, None, last_step(x, batch.lengths))
    out, final = rnn(x, batch.lengths, state)
    if hasattr(rnn, "num_layers") and hasattr(rnn, "num_directions"):
        summary = final_hidden(final, rnn.num_layers, rnn.num_directions)  # (B, D)
    else:
        summary = last_step(out, batch.lengths)
    return Encoded(out, batch.lengths, final, summary)


class _Member(nn.Module):
    """One extra member of an ensemble: its own encoder, stack and head."""

    def __init__(self, spec: Spec, encoder: InputEncoder, rnn: Optional[Callable[[int], RecurrentStack]],
                 head: Callable[[Spec, int], Head]) -> None:
        super().__init__()
        self.encoder = encoder
        self.rnn = rnn(encoder.output_size) if rnn is not None else None
        self.head = head(spec, self.rnn.output_size if self.rnn is not None else encoder.output_size)
        self.head.bind(encoder)


class SequenceModel(pl.LightningModule):
    """An LSTM sequence model: encoder, recurrent stack and task head, all chosen in YAML."""

    def __init__(
        self,
        head: Callable[[Spec, int], Head],
        rnn: Optional[Callable[[int], RecurrentStack]] = LSTMStack,
        encoder: Optional[Callable[[Spec], InputEncoder]] = None,
        spec: Optional[Any] = None,
        tbptt_steps: Optional[PositiveInt] = None,
        gradient_clip_val: Optional[PositiveFloat] = 1.0,
        ensemble: PositiveInt = 1,
        init_from: Optional[str] = None,
        freeze_pretrained_epochs: int = 0,
    ) -> None:
        """
        Args:
            head: The task head (class_path and init_args); it receives the spec and the stack's
                output size.
            rnn: The recurrent stack over the encoded inputs (default: seqkit's LSTMStack). null
                for heads that run their own decoder only (image captioning).
            encoder: The input encoder; by default a token embedding for token data and a
                linear projection for numeric features.
            spec: Sizes and vocabularies of the data; linked from the data module by the CLI,
                never written in YAML.
            tbptt_steps: Truncated BPTT: cut each training batch into windows of this many steps,
                carry the (h, c) state across windows detached, one optimizer step per window
                (seqkit.tbptt). null: full backpropagation through time.
            gradient_clip_val: Clip the gradient norm to this value (LSTMs still see exploding
                gradients, Pascanu et al. 2013); null: no clipping. trainer.gradient_clip_val,
                when set, takes precedence; with tbptt_steps only this one applies (Lightning
                has no automatic clipping under manual optimization).
            ensemble: Train this many independent members (encoder, stack and head each, from
                different initial weights) on the same batches and average their predictions:
                class probabilities, or the mean of regression outputs. The logged losses and
                metrics, test scores and predictions are the ensemble's; each member is trained
                on its own loss, with its own gradient clipping. Costs N times the compute of
                one member. Heads that combine members: ManyToOneHead, seqkit-forecast's
                ForecastHead (a plugin head joins by defining output, loss_from and
                predict_from, see seqkit.head.Head).
            init_from: A checkpoint whose encoder and recurrent-stack weights start this model
                (every ensemble member alike), e.g. a language model's trained on the task's own
                text (ULMFiT-style, docs/sentiment.md); the head starts fresh. Read with
                weights_only=True when a new fit starts, never when resuming, testing or
                predicting. The encoder and stack must be configured as in that run, and token
                data must use its vocabulary (data.init_args.vocab_from).
            freeze_pretrained_epochs: With init_from, train only the heads for this many epochs
                before the encoder and stack learn too (ULMFiT's gradual unfreezing, in one
                step), so fresh heads do not wash out what was pretrained.
        """
        super().__init__()
        if spec is None:
            raise SeqkitError("SequenceModel needs the data's spec; it is linked from the data module by the CLI")
        head_cls = _head_class(head)
        if head_cls is not None:
            check_pairing(head_cls, spec)
        self.spec: Spec = spec
        self.encoder = encoder(spec) if encoder is not None else default_encoder(spec)
        self.rnn = rnn(self.encoder.output_size) if rnn is not None else None
        self.head = head(spec, self.rnn.output_size if self.rnn is not None else self.encoder.output_size)
        self.head.bind(self.encoder)
        if getattr(spec, "causal", False) and getattr(self.rnn, "num_directions", 1) > 1:
            raise SeqkitError(f"model.rnn: {spec.source or 'this data'} predicts each next input, so the stack must be "
                              "unidirectional (a backward direction reads the token it predicts): set "
                              "model.rnn.init_args.bidirectional: false")
        if ensemble < 1:
            raise SeqkitError(f"model.ensemble must be >= 1, got {ensemble}")
        self.ensemble = ensemble
        if ensemble > 1:
            if not supports_ensemble(self.head):
                raise SeqkitError(
                    f"model.ensemble: {ensemble} needs a head that combines its members' outputs; "
                    f"{type(self.head).__name__} does not (heads that do: ManyToOneHead, ForecastHead; "
                    "a head joins by defining output, loss_from and predict_from)")
            if tbptt_steps is not None or spec.stateful:
                raise SeqkitError(f"model.ensemble: {ensemble} cannot be combined with model.tbptt_steps or stateful data")
            # member 0 is (encoder, rnn, head) above, so a 1-member model's checkpoint layout is unchanged
            self.ensemble_members = nn.ModuleList(
                _Member(spec, encoder(spec) if encoder is not None else default_encoder(spec),
                        rnn, head) for _ in range(ensemble - 1))
        self.seqkit_config: Optional[str] = None  # the resolved YAML, set by the CLI and kept in checkpoints
        self.seqkit_meta: dict[str, Any] = {}  # what the CLI records about the run (head, data, version)
        if tbptt_steps is not None and (tbptt_steps < 1 or self.rnn is None):
            raise SeqkitError(f"model.tbptt_steps must be >= 1 and needs a recurrent stack (got {tbptt_steps})")
        if gradient_clip_val is not None and gradient_clip_val <= 0:
            raise SeqkitError(f"model.gradient_clip_val must be > 0 or null, got {gradient_clip_val}")
        self.tbptt_steps = tbptt_steps
        self.gradient_clip_val = gradient_clip_val
        self.init_from = init_from
        self._pretrained_loaded = False
        if freeze_pretrained_epochs < 0 or (freeze_pretrained_epochs and init_from is None):
            raise SeqkitError(f"model.freeze_pretrained_epochs must be >= 0 and needs model.init_from "
                              f"(got {freeze_pretrained_epochs}, init_from {init_from!r})")
        self.freeze_pretrained_epochs = freeze_pretrained_epochs
        self.automatic_optimization = tbptt_steps is None  # TBPTT steps the optimizer once per window
        self._streams: dict[str, Optional[State]] = {}  # per stage: the state a stateful stream carries

    # -- the forward path -----------------------------------------------------------------
    def encode(self, batch: Batch, state: Optional[State] = None) -> Encoded:
        """Run the encoder and the recurrent stack over ``batch.inputs``, starting from ``state``
        (member 0's, when the model is an ensemble)."""
        return run_stack(self.encoder, self.rnn, batch, state)

    def members(self) -> list[tuple[InputEncoder, Optional[RecurrentStack], Head]]:
        """(encoder, rnn, head) of every ensemble member; one for a plain model."""
        extra = self.ensemble_members if self.ensemble > 1 else []
        return [(self.encoder, self.rnn, self.head)] + [(m.encoder, m.rnn, m.head) for m in extra]

    def forward(self, batch: Batch) -> Encoded:
        return self.encode(batch)

    def _encode_stage(self, batch: Batch, stage: str, batch_idx: int) -> Encoded:
        """``encode``, continuing a stateful stream's state from the stage's previous batch."""
        if not self.spec.stateful or self.rnn is None:
            return self.encode(batch)
        state = None if batch_idx == 0 else self._streams.get(stage)
        _tbptt.check_rows(state, batch.size)
        encoded = self.encode(batch, state)
        self._streams[stage] = _tbptt.carry(encoded, state)
        return encoded

    # -- Lightning hooks --------------------------------------------------------------------
    def _log_stage(self, loss: torch.Tensor, batch: Batch, stage: str) -> None:
        train = stage == "train"
        self.log(f"{stage}_loss", loss, batch_size=batch.size, prog_bar=True, sync_dist=not train,
                 on_step=train, on_epoch=True)
        metrics = self.head.metrics(stage)
        if metrics is not None:
            self.log_dict(metrics, batch_size=batch.size, on_step=False, on_epoch=True, prog_bar=not train)

    @staticmethod
    def _parameters_of(parts) -> list[nn.Parameter]:
        return [p for part in parts if part is not None for p in part.parameters()]

    def _member_outputs(self, batch: Batch) -> tuple[list[torch.Tensor], Encoded]:
        """Every member's head output for ``batch``, and member 0's Encoded."""
        outputs, first = [], None
        for enc, rnn, head in self.members():
            def encode(b: Batch, state: Optional[State] = None, enc=enc, rnn=rnn) -> Encoded:
                return run_stack(enc, rnn, b, state)
            encoded = encode(batch)
            if first is None:
                first = encoded
            outputs.append(head.output(encoded, batch, encode))
        return outputs, first

    def _ensemble_step(self, batch: Batch, stage: str) -> torch.Tensor:
        outputs, _ = self._member_outputs(batch)
        if stage != "train":
            loss = self.head.loss_from(self.head.combine(outputs), batch, stage)
            self._log_stage(loss, batch, stage)
            return loss
        # each member learns from its own loss (a sum, so each gets the gradient it would alone);
        # the logged loss and metrics are the ensemble's
        total = sum(head.loss_from(out, batch, stage, update_metrics=False)
                    for (_, _, head), out in zip(self.members(), outputs))
        with torch.no_grad():
            combined = self.head.loss_from(self.head.combine([o.detach() for o in outputs]), batch, stage)
        self._log_stage(combined, batch, stage)
        return total

    def _step(self, batch: Batch, stage: str, batch_idx: int) -> torch.Tensor:
        if self.ensemble > 1:
            return self._ensemble_step(batch, stage)
        loss = self.head.loss(self._encode_stage(batch, stage, batch_idx), batch, stage, self.encode)
        self._log_stage(loss, batch, stage)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.tbptt_steps is not None:
            return self._tbptt_step(batch, batch_idx)
        return self._step(batch, "train", batch_idx)

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val", batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test", batch_idx)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> list[dict]:
        if self.ensemble > 1:
            outputs, encoded = self._member_outputs(batch)
            return self.head.predict_from(self.head.combine(outputs), encoded, batch)
        return self.head.predict(self._encode_stage(batch, "predict", batch_idx), batch, self.encode)

    # -- truncated BPTT, under Lightning's manual optimization --------------------------------
    def _tbptt_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if getattr(self.rnn, "num_directions", 1) > 1:
            raise SeqkitError("model.tbptt_steps needs a unidirectional stack: a backward direction reads the future")
        opt = self.optimizers()
        num_steps = None
        if self.trainer.world_size > 1:  # every process runs as many windows as the longest batch needs
            T = torch.tensor(float(batch.inputs.shape[1]), device=self.device)
            num_steps = int(self.trainer.strategy.reduce(T, reduce_op="max"))

        def update(loss: torch.Tensor) -> None:
            opt.zero_grad()
            self.manual_backward(loss)
            if self.gradient_clip_val:
                self.clip_gradients(opt, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
            opt.step()
            _tbptt.step_schedulers(self.trainer, "step")

        def loss_fn(encoded: Encoded, window: Batch) -> torch.Tensor:
            loss = self.head.loss(encoded, window, "train", self.encode)
            self._log_stage(loss, window, "train")
            return loss

        def zero_loss() -> torch.Tensor:
            # a window with no real step on this process: still one backward (DDP expects the
            # same number on every rank), with a zero gradient
            return sum(p.sum() * 0.0 for p in self.parameters() if p.requires_grad)

        stateful = self.spec.stateful
        state = self._streams.get("train") if stateful and batch_idx > 0 else None
        per_step = _tbptt.targets_per_step(self.head, batch)
        losses, state = _tbptt.run_windows(self.encode, loss_fn, batch, self.tbptt_steps, per_step, update,
                                           zero_loss, state, num_steps)
        if stateful:
            self._streams["train"] = state
        return torch.stack(losses).mean() if losses else torch.zeros((), device=self.device)

    def _stage_start(self, stage: str) -> None:
        if not self.trainer.sanity_checking:
            for _, _, head in self.members():
                head.on_stage_start(stage)

    def on_train_epoch_start(self) -> None:
        self._stage_start("train")

    def on_validation_epoch_start(self) -> None:
        self._stage_start("val")

    def on_test_epoch_start(self) -> None:
        self._stage_start("test")

    def on_predict_epoch_start(self) -> None:
        self._stage_start("predict")

    # -- starting from a pretrained encoder ----------------------------------------------------
    def on_fit_start(self) -> None:
        if self.ensemble > 1 and type(self.trainer.strategy).__name__.startswith(("FSDP", "DeepSpeed")):
            raise SeqkitError(f"model.ensemble: {self.ensemble} cannot run under {type(self.trainer.strategy).__name__}: "
                              "each member's gradients are clipped by their own norm, which a sharded strategy "
                              "does not have; use the ddp strategy")
        # the CLI loads init_from before the strategy wraps the model (seqkit.cli, before_fit); a
        # model fitted from Python without it loads here, unless the fit resumes a checkpoint
        if self.init_from is not None and not self._pretrained_loaded and not self.trainer.ckpt_path:
            self.load_pretrained(self.init_from)

    def on_after_backward(self) -> None:
        if self.freeze_pretrained_epochs and self.current_epoch < self.freeze_pretrained_epochs:
            # gradients already reduced across processes; the optimizer skips a parameter without one
            for enc, rnn, _ in self.members():
                for p in self._parameters_of((enc, rnn)):
                    p.grad = None

    def load_pretrained(self, path: str) -> None:
        """Copy the encoder and stack weights of the checkpoint ``path`` into every member."""
        from seqkit.safeload import read_checkpoint
        from seqkit.text import Vocab

        ckpt = read_checkpoint(path, "model.init_from")
        state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise SeqkitError(f"model.init_from: {path} holds no model weights (state_dict)")
        mine = self.spec.vocabs.get("tokens") if self.spec.vocabs else None
        if mine is not None:
            saved = [e["vocab"] for e in ckpt.values() if isinstance(e, dict) and isinstance(e.get("vocab"), dict)]
            if not saved:
                raise SeqkitError(f"model.init_from: {path} keeps no vocabulary, so its embeddings cannot be matched "
                                  "to this data's tokens")
            theirs = Vocab.from_state(saved[0])
            if theirs.itos != mine.itos:
                raise SeqkitError(
                    f"model.init_from: {path} was trained with another vocabulary ({len(theirs)} "
                    f"tokens; this data has {len(mine)}): set data.init_args.vocab_from: {path}")
        for enc, rnn, _ in self.members():
            for prefix, part in (("encoder.", enc), ("rnn.", rnn)):
                if part is None:
                    continue
                want = part.state_dict()
                got = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
                if not got:
                    raise SeqkitError(f"model.init_from: {path} has no {prefix[:-1]} weights")
                extra = sorted(set(got) - set(want))
                if extra:
                    raise SeqkitError(f"model.init_from: {path} has {prefix}{extra[0]}, which this model lacks: "
                                      f"configure model.{prefix[:-1]} as in the run that wrote it")
                for key, value in want.items():
                    if key not in got:
                        raise SeqkitError(f"model.init_from: {path} lacks {prefix}{key}: configure model.{prefix[:-1]} "
                                          "as in the run that wrote it")
                    if tuple(got[key].shape) != tuple(value.shape):
                        raise SeqkitError(
                            f"model.init_from: {prefix}{key} is {tuple(got[key].shape)} in {path} but "
                            f"{tuple(value.shape)} here: configure model.{prefix[:-1]} as in the run that wrote it")
                part.load_state_dict({k: got[k] for k in want})
        self._pretrained_loaded = True

    def configure_callbacks(self):
        fitting = self.trainer.state.fn == TrainerFn.FITTING
        if self.tbptt_steps is not None and fitting and self.trainer.gradient_clip_val:
            raise SeqkitError(
                f"trainer.gradient_clip_val={self.trainer.gradient_clip_val} cannot be used with model.tbptt_steps "
                "(Lightning has no automatic clipping under manual optimization): set model.gradient_clip_val instead"
            )
        return []

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # the trainer's setting wins when a config gives one; otherwise the model's default
        if gradient_clip_val is None:
            gradient_clip_val = self.gradient_clip_val
        if not gradient_clip_val:
            return
        if self.ensemble > 1 and (gradient_clip_algorithm or "norm") == "norm":
            if getattr(optimizer, "defaults", {}).get("fused") and "16" in str(getattr(self._trainer, "precision", "")):
                raise SeqkitError("model.ensemble with a fused optimizer under 16-bit precision: its gradients are "
                                  "still scaled when clipped; drop optimizer fused: true or use bf16/32")
            for parts in self.members():  # each member clipped by its own norm, as it would be trained alone
                torch.nn.utils.clip_grad_norm_([p for p in self._parameters_of(parts) if p.grad is not None],
                                               gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val,
                            gradient_clip_algorithm=gradient_clip_algorithm or "norm")

    def on_train_epoch_end(self) -> None:
        if self.tbptt_steps is not None:
            _tbptt.step_schedulers(self.trainer, "epoch")

    def configure_optimizers(self):
        # Used only when the config has no `optimizer:` section: Adam with the defaults of
        # Kingma & Ba (2015), beta1 0.9, beta2 0.999, eps 1e-8.
        return torch.optim.Adam(self.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["seqkit"] = {"config": self.seqkit_config, **self.seqkit_meta}
