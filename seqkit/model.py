"""``SequenceModel``: the core LightningModule.

input encoder (token embedding / feature projection / a plugin's encoder)
  -> recurrent stack (seqkit's LSTM stack by default)
  -> task head (from a plugin; owns loss, metrics and decoding)

Every part is injected by ``class_path`` in YAML. Sizes come from the data module's spec, linked
in by the CLI, so they are never written in a config.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import lightning.pytorch as pl
import torch

from seqkit import tbptt as _tbptt
from seqkit.encoders import InputEncoder, default_encoder
from seqkit.errors import SeqkitError
from seqkit.head import Head
from seqkit.lstm import LSTMStack, RecurrentStack, State
from seqkit.spec import Batch, Spec


class Encoded(NamedTuple):
    """What ``SequenceModel.encode`` returns."""

    outputs: torch.Tensor  # (B, T, D): the stack's output at every step (zeros on padding)
    lengths: torch.Tensor | None  # (B,)
    state: State | None  # final (h, c) of the stack, shaped like torch.nn.LSTM's


class SequenceModel(pl.LightningModule):
    """An LSTM sequence model: encoder, recurrent stack and task head, all chosen in YAML."""

    def __init__(
        self,
        head: Callable[[Spec, int], Head],
        rnn: Optional[Callable[[int], RecurrentStack]] = LSTMStack,
        encoder: Optional[Callable[[Spec], InputEncoder]] = None,
        spec: Optional[Any] = None,
        tbptt_steps: Optional[int] = None,
    ) -> None:
        """
        Args:
            head: The task head (class_path and init_args); it receives the spec and the stack's
                output size.
            rnn: The recurrent stack over the encoded inputs (default: seqkit's LSTMStack). null
                for heads that run their own decoder only (image captioning).
            encoder: The input encoder; by default a token embedding for token data and a
                linear projection for numeric features.
            spec: Sizes and vocabularies of the data; linked from ``data.spec`` by the CLI, never
                written in YAML.
            tbptt_steps: Truncated BPTT: cut each training batch into windows of this many steps,
                carry the (h, c) state across windows detached, one optimizer step per window
                (seqkit.tbptt). null: full backpropagation through time.
        """
        super().__init__()
        if spec is None:
            raise SeqkitError("SequenceModel needs the data's spec; it is linked from the data module by the CLI")
        self.spec: Spec = spec
        self.encoder = encoder(spec) if encoder is not None else default_encoder(spec)
        self.rnn = rnn(self.encoder.output_size) if rnn is not None else None
        self.head = head(spec, self.rnn.output_size if self.rnn is not None else self.encoder.output_size)
        self.seqkit_config: str | None = None  # the resolved YAML, set by the CLI and kept in checkpoints
        if tbptt_steps is not None and (tbptt_steps < 1 or self.rnn is None):
            raise SeqkitError(f"model.tbptt_steps must be >= 1 and needs a recurrent stack (got {tbptt_steps})")
        self.tbptt_steps = tbptt_steps
        self.automatic_optimization = tbptt_steps is None  # TBPTT steps the optimizer once per window
        self._carries: dict[str, _tbptt.StateCarry] = {}  # per stage, for stateful streams

    # -- the forward path -----------------------------------------------------------------
    def encode(self, batch: Batch, state: State | None = None) -> Encoded:
        """Run the encoder and the recurrent stack over ``batch.inputs``."""
        x = self.encoder(batch.inputs, batch.lengths)  # (B, T, D)
        if self.rnn is None:
            return Encoded(x, batch.lengths, None)
        out, final = self.rnn(x, batch.lengths, state)
        return Encoded(out, batch.lengths, final)

    def forward(self, batch: Batch):
        return self.head(self.encode(batch), batch)

    # -- Lightning hooks --------------------------------------------------------------------
    def _step(self, batch: Batch, stage: str) -> torch.Tensor:
        loss = self.head.step(self, batch, stage)
        self.log(f"{stage}_loss", loss, batch_size=batch.size, prog_bar=True, sync_dist=stage != "train",
                 on_step=stage == "train", on_epoch=True)
        metrics = self.head.metrics(stage)
        if metrics is not None:
            self.log_dict(metrics, batch_size=batch.size, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.tbptt_steps is not None:
            return _tbptt.tbptt_training_step(self, batch, _tbptt.stream_carry(self, "train", batch_idx))
        with _tbptt.stream_state(self, "train", batch_idx):
            return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        with _tbptt.stream_state(self, "val", batch_idx):
            return self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        with _tbptt.stream_state(self, "test", batch_idx):
            return self._step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> list[dict]:
        with _tbptt.stream_state(self, "predict", batch_idx):
            return self.head.predict(self, batch)

    # Truncated BPTT runs under manual optimization, where Lightning neither accepts the
    # trainer's gradient clipping nor steps epoch schedulers: seqkit.tbptt does both per window.
    def configure_callbacks(self):
        if self.tbptt_steps is not None:
            _tbptt.take_over_clipping(self)
        return []

    def on_train_epoch_end(self) -> None:
        if self.tbptt_steps is not None:
            _tbptt.on_train_epoch_end(self)

    def teardown(self, stage: str) -> None:
        _tbptt.give_back_clipping(self)

    def configure_optimizers(self):
        # Used only when the config has no `optimizer:` section: Adam with the defaults of
        # Kingma & Ba (2015), beta1 0.9, beta2 0.999, eps 1e-8.
        return torch.optim.Adam(self.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["seqkit"] = {"config": self.seqkit_config, "spec_input_kind": self.spec.input_kind}
