"""``model.ensemble: N``: members start from different weights, each learns from its own loss, and
what the user sees (metrics, test scores, predictions) is the average of their probabilities."""

from __future__ import annotations

import csv
import glob
import math
from functools import partial

import pytest
import torch

from conftest import CONFIGS, logger_args, read_metrics, run_seqkit
from seqkit import Batch, LSTMStack, ManyToOneHead, PerStepHead, SeqkitError, SequenceModel, Spec
from seqkit.head import supports_ensemble
from seqkit.model import run_stack

SPEC = Spec(input_kind="tokens", input_size=12, pad_id=0, num_classes=3)
REG = Spec(input_kind="features", input_size=4, num_targets=2)


def _ensemble(n: int, spec: Spec = SPEC) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(head=ManyToOneHead, rnn=partial(LSTMStack, hidden_size=8), spec=spec, ensemble=n)


def _batch(spec: Spec = SPEC) -> Batch:
    g = torch.Generator().manual_seed(1)
    if spec.input_kind == "tokens":
        inputs = torch.randint(1, 12, (4, 6), generator=g)
        targets = torch.tensor([0, 1, 2, 1])
    else:
        inputs = torch.randn(4, 6, 4, generator=g)
        targets = torch.randn(4, 2, generator=g)
    return Batch(inputs=inputs, lengths=torch.tensor([6, 5, 3, 1]), targets=targets, index=torch.arange(4))


def test_combine_is_the_mean_probability_or_the_mean_value_by_hand():
    head = _ensemble(2).head
    a, b = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[math.log(3.0), 0.0]])  # p = (1/4, 3/4), (3/4, 1/4)
    torch.testing.assert_close(head.combine([a, b]).exp(), torch.tensor([[0.5, 0.5]]))
    c = torch.tensor([[0.0, math.log(4.0)]])  # (1/5, 4/5): the mean with (1/4, 3/4) is (0.225, 0.775)
    torch.testing.assert_close(head.combine([a, c]).softmax(-1), torch.tensor([[0.225, 0.775]]))
    reg = _ensemble(2, REG).head
    torch.testing.assert_close(reg.combine([torch.tensor([[1.0, 4.0]]), torch.tensor([[3.0, -2.0]])]),
                               torch.tensor([[2.0, 1.0]]))


def test_members_differ_and_predictions_average_their_probabilities():
    model = _ensemble(3).eval()
    batch = _batch()
    weights = [enc.embedding.weight for enc, _, _ in model.members()]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    alone = []
    for enc, rnn, head in model.members():
        solo = SequenceModel(head=ManyToOneHead, rnn=partial(LSTMStack, hidden_size=8), spec=SPEC).eval()
        solo.encoder.load_state_dict(enc.state_dict())
        solo.rnn.load_state_dict(rnn.state_dict())
        solo.head.load_state_dict(head.state_dict())
        with torch.no_grad():
            alone.append(solo.head(solo.encode(batch)).softmax(-1))
    with torch.no_grad():
        records = model.predict_step(batch, 0)
    probs = torch.tensor([[r[f"p_{name}"] for name in SPEC.label_names()] for r in records])
    torch.testing.assert_close(probs, torch.stack(alone).mean(0), atol=2e-6, rtol=0)
    assert [r["label"] for r in records] == [SPEC.label_names()[int(i)] for i in probs.argmax(-1)]


def test_each_member_gets_the_gradient_it_would_get_alone():
    model = _ensemble(2, REG)
    batch = _batch(REG)
    model.training_step(batch, 0).backward()
    enc, rnn, head = model.members()[1]
    solo = SequenceModel(head=ManyToOneHead, rnn=partial(LSTMStack, hidden_size=8), spec=REG)
    for mine, theirs in ((solo.encoder, enc), (solo.rnn, rnn), (solo.head, head)):
        mine.load_state_dict(theirs.state_dict())
    solo.head.loss(solo.encode(batch), batch, "train", solo.encode).backward()
    for (name, p), q in zip(solo.rnn.named_parameters(), rnn.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_validation_loss_is_the_ensembles_not_a_members():
    model = _ensemble(3).eval()
    batch = _batch()
    with torch.no_grad():
        loss = model.validation_step(batch, 0)
        probs = torch.stack([h(run_stack(e, r, batch)).softmax(-1) for e, r, h in model.members()]).mean(0)
    torch.testing.assert_close(loss, torch.nn.functional.nll_loss(probs.log(), batch.targets), atol=1e-5, rtol=0)
    member0 = torch.nn.functional.cross_entropy(model.head(model.encode(batch)), batch.targets)
    assert abs(float(loss) - float(member0)) > 1e-4


def test_each_member_is_clipped_by_its_own_norm():
    model = _ensemble(2)
    for k, (enc, rnn, head) in enumerate(model.members()):
        for p in [*enc.parameters(), *rnn.parameters(), *head.parameters()]:
            p.grad = torch.full_like(p, 10.0 * (k + 1))  # member 1's gradient is twice member 0's
    model.configure_gradient_clipping(None, gradient_clip_val=1.0)
    norms = []
    for enc, rnn, head in model.members():
        grads = [p.grad for part in (enc, rnn, head) for p in part.parameters()]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
    assert norms == pytest.approx([1.0, 1.0], rel=1e-5)  # one global clip would leave them 1 : 2


def test_a_plain_model_keeps_its_checkpoint_layout():
    keys = set(_ensemble(1).state_dict())
    assert keys == set(SequenceModel(head=ManyToOneHead, rnn=partial(LSTMStack, hidden_size=8), spec=SPEC).state_dict())
    assert not any(k.startswith("ensemble_members") for k in keys)
    assert any(k.startswith("ensemble_members.1.") for k in _ensemble(3).state_dict())


def test_heads_that_cannot_combine_are_refused_by_name():
    class LossOnly(ManyToOneHead):  # changes the loss: the parent's ensemble hooks no longer fit
        def loss(self, encoded, batch, stage, encode):
            return super().loss(encoded, batch, stage, encode) * 2

    assert supports_ensemble(ManyToOneHead(SPEC, 8)) and not supports_ensemble(LossOnly(SPEC, 8))
    for head in (LossOnly, PerStepHead):
        with pytest.raises(SeqkitError, match=f"model.ensemble: 2 needs a head .*{head.__name__} does not"):
            SequenceModel(head=head, spec=SPEC, ensemble=2)
    with pytest.raises(SeqkitError, match="model.ensemble must be >= 1"):
        SequenceModel(head=ManyToOneHead, spec=SPEC, ensemble=0)


def test_cli_trains_tests_and_predicts_an_ensemble_from_its_checkpoint(tmp_path):
    small = ["--data.init_args.num_train=128", "--data.init_args.num_val=32", "--trainer.max_epochs=1",
             "--model.rnn.init_args.hidden_size=8"]
    run_seqkit("fit", "--config", str(CONFIGS / "classify.yaml"), "--model.ensemble=3", *small,
               *logger_args(tmp_path), cwd=tmp_path)
    ckpt = sorted(glob.glob(str(tmp_path / "**" / "*.ckpt"), recursive=True))[0]
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("ensemble_members.1.") for k in state)
    out = tmp_path / "pred.csv"
    run_seqkit("predict", "--ckpt_path", ckpt, f"--prediction.output={out}", cwd=tmp_path)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        probs = {k: float(v) for k, v in row.items() if k.startswith("p_")}
        assert abs(sum(probs.values()) - 1.0) < 1e-4 and row["label"] == max(probs, key=probs.get)[2:]
    run_seqkit("test", "--ckpt_path", ckpt, *logger_args(tmp_path / "test"), cwd=tmp_path)
    assert 0.0 <= float(read_metrics(tmp_path / "test")[-1]["test_acc"]) <= 1.0


def test_export_refuses_an_ensemble_instead_of_writing_one_member(tmp_path):
    from seqkit.export import ExportError, export_onnx

    with pytest.raises(ExportError, match="model.ensemble is 2: seqkit export writes one network"):
        export_onnx(_ensemble(2), str(tmp_path / "m.onnx"))
