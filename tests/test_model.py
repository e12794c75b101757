"""The core model on its own: padding never reaches the output, the forget bias starts at 1.0,
the head reads an Encoded whose ``final`` is each sequence's own last state, a head paired with
data that cannot feed it fails when the model is built, checkpoints are written atomically."""

from __future__ import annotations

import os
from functools import partial

import pytest
import torch

from seqkit import Batch, LSTMStack, ManyToOneHead, PerStepHead, SeqkitError, SequenceModel, Spec, pad
from seqkit.callbacks import AtomicCheckpointIO
from seqkit.head import Head

SPEC = Spec(input_kind="tokens", input_size=12, pad_id=0, num_classes=3)


def _model(pooling: str, bidirectional: bool, num_layers: int = 2) -> SequenceModel:
    torch.manual_seed(0)
    model = SequenceModel(
        head=partial(ManyToOneHead, pooling=pooling),
        rnn=partial(LSTMStack, hidden_size=16, num_layers=num_layers, bidirectional=bidirectional),
        spec=SPEC,
    )
    return model.eval()


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_the_output(pooling, bidirectional):
    model = _model(pooling, bidirectional)
    seq = [3, 5, 7, 2, 9]
    alone, lengths = pad([seq], value=0, dtype=torch.long)
    # the same sequence in a batch padded to 11 steps, next to a longer one, with junk-free pads
    padded, lengths2 = pad([[4] * 11, seq], value=0, dtype=torch.long)
    with torch.no_grad():
        a = model.head(model(Batch(inputs=alone, lengths=lengths)))[0]
        b = model.head(model(Batch(inputs=padded, lengths=lengths2)))[1]
        # padding with a real token id instead of <pad> must not matter either
        padded[1, len(seq):] = 6
        c = model.head(model(Batch(inputs=padded, lengths=lengths2)))[1]
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(a, c, atol=1e-6, rtol=0)


def test_encoded_final_is_each_sequences_own_last_state():
    model = _model("last", bidirectional=False, num_layers=1)
    x, lengths = pad([[3, 5, 7], [4, 4, 4, 4, 4, 4]], value=0, dtype=torch.long)
    with torch.no_grad():
        enc = model.encode(Batch(inputs=x, lengths=lengths))
    B, T, D = enc.outputs.shape
    assert enc.final.shape == (B, D)
    torch.testing.assert_close(enc.final[0], enc.outputs[0, 2])  # its 3rd step, not the padded 6th
    torch.testing.assert_close(enc.final[1], enc.outputs[1, 5])
    assert float(enc.outputs[0, 3:].abs().sum()) == 0.0  # zeros on padding


class _NeedsForecast(Spec):
    pass


class _ForecastOnlyHead(Head):
    spec_type = _NeedsForecast

    def loss(self, encoded, batch, stage, encode):
        return encoded.final.sum()


def test_a_head_paired_with_data_that_cannot_feed_it_fails_at_build():
    spec = Spec(input_kind="tokens", input_size=12, num_classes=3, source="MarkerTaskData")
    with pytest.raises(SeqkitError) as err:
        SequenceModel(head=_ForecastOnlyHead, spec=spec)
    message = str(err.value)
    assert "_ForecastOnlyHead" in message and "MarkerTaskData" in message and "_NeedsForecast" in message
    assert "\n" not in message
    # a head that needs classes or targets says so, naming the data module
    with pytest.raises(SeqkitError, match="MarkerTaskData gives neither"):
        SequenceModel(head=PerStepHead, spec=Spec(input_kind="tokens", input_size=12, source="MarkerTaskData"))


def test_forget_gate_bias_starts_at_one():
    H = 8
    stack = LSTMStack(input_size=4, hidden_size=H, num_layers=2, bidirectional=True)
    params = dict(stack.lstm.named_parameters())
    for name in [n for n in params if n.startswith("bias_ih")]:
        forget = params[name][H : 2 * H] + params[name.replace("bias_ih", "bias_hh")][H : 2 * H]
        torch.testing.assert_close(forget, torch.ones(H))  # rows are (i, f, g, o) in nn.LSTM


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.ones(3)}, str(path))
    assert torch.load(path)["w"].sum() == 3

    def broken_save(obj, fh, *args, **kwargs):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"w": torch.zeros(3)}, str(path))
    monkeypatch.undo()
    assert torch.load(path)["w"].sum() == 3  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["model.ckpt"]  # and no temporary file is left behind
