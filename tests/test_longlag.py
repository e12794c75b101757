"""The long-time-lag tasks (plugin seqkit-longlag), the simple RNN baseline and the optimizer
layers: generator statistics, the paper's success criteria, the SRN's stack contract, seqkit.testing's
contract checks for every data module, and every config and optimizer layer through the real CLI,
including predict from a checkpoint alone."""

from __future__ import annotations

import random
import re
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
import torch

from conftest import CONFIGS, logger_args, run_seqkit
from seqkit import Batch, Encoded, LSTMStack, SeqkitError, SequenceModel, SimpleRNNStack, Spec
from seqkit.testing import check_datamodule, check_head, isolated_registry
from seqkit_longlag import (AddingProblemData, CopyMemoryData, EmbeddedReberData, LongLagEndHead, LongLagSpec, LongLagStepHead,
                            TemporalOrderData)
from seqkit_longlag.generators import (
    REBER_SYMBOLS,
    adding_example,
    copy_example,
    embedded_reber_example,
    embedded_reber_stream,
    temporal_order_example,
)

LONGLAG = CONFIGS / "longlag"
TASK_CONFIGS = sorted(p.name for p in LONGLAG.glob("*.yaml"))
OPTIM_LAYERS = ["sgd", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"]


def _rngs(n, key="t"):
    return [random.Random(f"{key}:{i}") for i in range(n)]


# -- generators ------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [22, 100, 500])
def test_adding_problem_statistics(T):
    targets = []
    for rng in _rngs(400 if T < 500 else 100):
        values, markers, target = adding_example(rng, T)
        L = len(values)
        assert T <= L <= T + T // 10
        marked = [i for i, m in enumerate(markers) if m == 1.0]
        assert len(marked) == 2  # exactly two marks
        first, second = marked if marked[0] < 10 else (marked[1], marked[0])
        assert first < 10 and second < T // 2 - 1
        assert all(m == 0.0 for i, m in enumerate(markers) if i not in marked and i not in (0, L - 1))
        for end in (0, L - 1):
            assert markers[end] == (1.0 if end in marked else -1.0)
        assert all(-1.0 <= v <= 1.0 for v in values)
        if 0 in marked:
            assert values[0] == 0.0  # the paper's rule for a marked first pair
        assert target == pytest.approx(0.5 + (values[marked[0]] + values[marked[1]]) / 4)
        assert 0.0 <= target <= 1.0
        targets.append(target)
    mean = sum(targets) / len(targets)
    assert 0.45 < mean < 0.55  # X1 + X2 is symmetric around 0
    assert max(targets) - min(targets) > 0.5


def test_adding_problem_data_is_seeded_and_splits_differ():
    a, b = AddingProblemData(seq_len=30, seed=3), AddingProblemData(seq_len=30, seed=3)
    for split in ("train", "val"):
        xa, ya = a.dataset(split)[5]
        xb, yb = b.dataset(split)[5]
        assert torch.equal(xa, xb) and ya == yb
    assert not torch.equal(a.dataset("train")[5][0][:30], a.dataset("val")[5][0][:30])
    assert not torch.equal(a.dataset("train")[5][0][:30], AddingProblemData(seq_len=30, seed=4).dataset("train")[5][0][:30])
    batch = a.collate([a.dataset("train")[i] for i in range(8)])
    assert batch.inputs.shape[0] == 8 and batch.inputs.shape[2] == 2 and batch.targets.shape == (8, 1)
    assert ((batch.inputs[..., 1] == 1.0).sum(1) == 2).all()
    assert isinstance(a.spec, LongLagSpec) and a.spec.criterion == "abs_error" and a.spec.tolerance == 0.04


@pytest.mark.parametrize("relevant", [2, 3])
def test_temporal_order_statistics(relevant):
    windows = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}[relevant]
    labels = Counter()
    for rng in _rngs(800):
        symbols, label = temporal_order_example(rng, relevant)
        assert 100 <= len(symbols) <= 110
        assert symbols[0] == "E" and symbols[-1] == "B"
        special = [(i, s) for i, s in enumerate(symbols) if s in "XY"]
        assert len(special) == relevant
        assert all(lo <= i <= hi for (i, _), (lo, hi) in zip(special, windows))
        assert set(symbols[1:-1]) - {"X", "Y"} <= set("abcd")
        assert label == int("".join("0" if s == "X" else "1" for _, s in special), 2)  # X,X -> Q (0), ..., Y,Y -> U
        labels[label] += 1
    assert sorted(labels) == list(range(2**relevant))
    assert min(labels.values()) > 800 / 2**relevant * 0.6  # classes balanced
    data = TemporalOrderData(variant="6b" if relevant == 3 else "6a")
    assert data.spec.num_classes == 2**relevant and len(data.spec.labels) == 2**relevant


def _reber_accepts(symbols):
    edges = {0: {"T": 1, "P": 2}, 1: {"S": 1, "X": 3}, 2: {"T": 2, "V": 4}, 3: {"X": 2, "S": 5}, 4: {"P": 3, "V": 5}}
    if symbols[0] != "B" or symbols[-1] != "E":
        return False
    state = 0
    for s in symbols[1:-1]:
        if s not in edges.get(state, {}):
            return False
        state = edges[state][s]
    return state == 5


def test_embedded_reber_strings_and_next_symbol_sets():
    lengths = []
    for rng in _rngs(500):
        symbols, nexts = embedded_reber_example(rng)
        assert len(nexts) == len(symbols) - 1
        assert symbols[0] == "B" and symbols[-1] == "E" and symbols[1] in "TP"
        assert symbols[-2] == symbols[1]  # the long-lag symbol repeats the second one
        assert _reber_accepts(symbols[2:-2])
        for t, allowed in enumerate(nexts):
            assert symbols[t + 1] in allowed and 1 <= len(allowed) <= 2
        assert nexts[-2] == {symbols[1]}  # only the remembered branch may come before E
        lengths.append(len(symbols))
    assert min(lengths) == 9 and max(lengths) > 20
    stream, nexts = embedded_reber_stream(random.Random(0), 20)
    assert stream.count("E") == 40 and len(nexts) == len(stream)
    assert all(stream[t + 1] in nexts[t] for t in range(len(stream) - 1))


def test_reber_data_targets_are_multi_hot_sets():
    data = EmbeddedReberData()
    x, y = data.dataset("train")[0]
    assert y.shape == (len(x), len(REBER_SYMBOLS))
    assert set(y.sum(1).tolist()) <= {1.0, 2.0}
    assert y[0, REBER_SYMBOLS.index("T")] == 1 and y[0, REBER_SYMBOLS.index("P")] == 1


def test_copy_task_layout():
    for rng in _rngs(50):
        inputs, targets = copy_example(rng, delay=30, num_copy=10, num_symbols=8)
        assert len(inputs) == len(targets) == 50
        assert all(1 <= s <= 8 for s in inputs[:10])
        assert inputs[10:39] == [0] * 29 and inputs[39] == 9 and inputs[40:] == [0] * 10
        assert targets[:40] == [0] * 40 and targets[40:] == inputs[:10]
    data = CopyMemoryData(delay=30)
    assert data.spec.memoryless_loss == pytest.approx(10 * torch.log(torch.tensor(8.0)).item() / 50)


# -- the success criteria ------------------------------------------------------------------------


def _encoded(outputs, lengths):
    """What the model would hand the head: given (B, T, D) outputs, the last step as ``final``."""
    return Encoded(outputs, lengths, None, outputs[:, -1])


def _no_encode(batch, state=None):
    raise AssertionError("these heads never re-run the encoder")


def test_adding_criterion_counts_sequences_off_by_004():
    spec = AddingProblemData().spec
    head = LongLagEndHead(spec, input_size=1)
    with torch.no_grad():
        head.proj[-1].weight.fill_(1.0)
        head.proj[-1].bias.zero_()
    targets = torch.tensor([[0.5], [0.2], [0.9], [0.7]])
    pred = targets + torch.tensor([[0.0], [0.039], [-0.041], [0.1]])
    out = pred.view(4, 1, 1)  # (B, T=1, D=1)
    lengths = torch.ones(4, dtype=torch.long)
    head.loss(_encoded(out, lengths), Batch(inputs=out, lengths=lengths, targets=targets), "val", _no_encode)
    m = head.metrics("val").compute()
    assert m["val_wrong"] == 2 and m["val_correct"] == pytest.approx(0.5)
    assert m["val_max_abs_err"] == pytest.approx(0.1)


def test_temporal_order_criterion_needs_every_output_within_03():
    spec = TemporalOrderData().spec
    head = LongLagEndHead(spec, input_size=4)
    with torch.no_grad():
        head.proj[-1].weight.copy_(torch.eye(4))
        head.proj[-1].bias.zero_()
    logits = torch.tensor([[5.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 0, 5.0, 0]])  # p = .95 / .47 / .95
    out = logits.unsqueeze(1)
    batch = Batch(inputs=out, lengths=torch.ones(3, dtype=torch.long), targets=torch.tensor([0, 0, 3]))
    head.loss(_encoded(out, batch.lengths), batch, "test", _no_encode)
    m = head.metrics("test").compute()
    assert m["test_wrong"] == 2  # not confident enough, and the wrong class


def test_reber_criterion_wants_the_possible_symbols_most_active():
    spec = EmbeddedReberData().spec
    head = LongLagStepHead(spec, input_size=7)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(7))
        head.proj.bias.zero_()
    targets = torch.zeros(2, 2, 7)
    targets[:, 0, [1, 2]] = 1  # T or P
    targets[:, 1, 0] = 1  # B
    good = torch.full((2, 7), -3.0)
    good[0, [1, 2]] = 1.0
    good[1, 0] = 2.0
    bad = good.clone()
    bad[0, 2] = -4.0  # P below the other symbols at step 0
    out = torch.stack([good, bad])  # (B=2, T=2, 7)
    lengths = torch.tensor([2, 2])
    head.loss(_encoded(out, lengths), Batch(inputs=out, lengths=lengths, targets=targets), "val", _no_encode)
    m = head.metrics("val").compute()
    assert m["val_wrong"] == 1 and m["val_correct"] == pytest.approx(0.5)


def test_end_head_reads_the_final_state_of_every_direction():
    data = TemporalOrderData()
    torch.manual_seed(0)
    model = SequenceModel(head=LongLagEndHead, rnn=partial(LSTMStack, hidden_size=4, bidirectional=True), spec=data.spec)
    batch = data.collate([data.dataset("val")[i] for i in range(3)])
    with torch.no_grad():
        encoded = model.encode(batch)
        assert encoded.final.shape == (3, 8)  # both directions' final h
        torch.testing.assert_close(model.head(encoded), model.head.proj(encoded.final))


def test_heads_refuse_tasks_they_cannot_score():
    with pytest.raises(SeqkitError, match="LongLagEndHead scores one of the success criteria abs_error, output_error; "
                                          "EmbeddedReberData \\(embedded_reber\\) gives 'next_symbols'"):
        LongLagEndHead(EmbeddedReberData().spec, input_size=4)
    with pytest.raises(SeqkitError, match="LongLagStepHead scores one of the success criteria next_symbols, argmax"):
        LongLagStepHead(AddingProblemData().spec, input_size=4)
    import seqkit_longlag.plugin

    spec = Spec(input_kind="tokens", input_size=5, num_classes=2, source="MarkerTaskData")
    with isolated_registry(seqkit_longlag.plugin), pytest.raises(
            SeqkitError, match="LongLagStepHead needs data giving a LongLagSpec, but MarkerTaskData gives a Spec; data "
                               "modules that fit: AddingProblemData, CopyMemoryData, EmbeddedReberData, TemporalOrderData"):
        SequenceModel(head=LongLagStepHead, spec=spec)


def test_reber_stream_is_stateful_and_evaluates_with_its_rows():
    data = EmbeddedReberData(stream=True, chunk_len=10, num_train=40, num_val=40, loader={"batch_size": 3, "eval_batch_size": 8})
    assert data.spec.stateful and data.eval_batch_size == 3
    data.setup("fit")
    assert {b.size for b in data.val_dataloader()} == {3}
    order = [b.index.tolist() for b in data.train_dataloader()]
    assert order == [list(range(i, i + 3)) for i in range(0, len(data.train_set), 3)]  # kept in order, never shuffled


# -- seqkit.testing's contract checks, for every data module and its head -------------------------

CONTRACT_CASES = {
    "adding": (AddingProblemData, LongLagEndHead, dict(seq_len=22)),
    "temporal_order": (TemporalOrderData, LongLagEndHead, dict(variant="6b")),
    "reber": (EmbeddedReberData, LongLagStepHead, {}),
    "reber_stream": (EmbeddedReberData, LongLagStepHead, dict(stream=True, chunk_len=10, num_train=40, num_val=40)),
    "copy": (CopyMemoryData, LongLagStepHead, dict(delay=6)),
}


@pytest.mark.parametrize("case", list(CONTRACT_CASES))
def test_contract_checks(case):
    data_cls, head, task = CONTRACT_CASES[case]
    kwargs = {"num_train": 16, "num_val": 8, "num_test": 4, "loader": {"batch_size": 4}, **task}
    report = check_datamodule(data_cls, **kwargs)  # generated: no training files to delete
    assert data_cls(**kwargs).state_dict() == {}  # nothing is fitted: the spec comes from the arguments
    report = check_head(head, data_cls(**kwargs), rnn=partial(LSTMStack, hidden_size=4))
    assert {"train step: finite scalar loss", "checkpoint round trip"} <= set(report.passed), str(report)


# -- the simple RNN ----------------------------------------------------------------------------


def test_simple_rnn_follows_the_stack_contract():
    torch.manual_seed(0)
    rnn = SimpleRNNStack(3, hidden_size=5, num_layers=2)
    x = torch.randn(3, 7, 3)
    lengths = torch.tensor([7, 4, 2])
    out, (h, c) = rnn(x, lengths)
    assert out.shape == (3, 7, 5) and h.shape == (2, 3, 5) and torch.equal(c, torch.zeros_like(h))
    assert out[1, 4:].abs().sum() == 0 and out[2, 2:].abs().sum() == 0  # zeros on padding
    for r, L in enumerate(lengths.tolist()):  # padding never changes the final state
        _, (h_r, _) = rnn(x[r : r + 1, :L])
        torch.testing.assert_close(h[:, r : r + 1], h_r)
    # h = tanh(W_h h + W_x x + b), by hand for the first layer's first step
    cell = rnn.rnn
    h1 = torch.tanh(x[:, 0] @ cell.weight_ih_l0.T + cell.bias_ih_l0 + cell.bias_hh_l0)
    torch.testing.assert_close(rnn(x[:, :1])[1][0][0], h1)
    # an initial state continues a sequence
    _, first = rnn(x[:, :3])
    torch.testing.assert_close(rnn(x[:, 3:], None, first)[0], rnn(x)[0][:, 3:])
    bi = SimpleRNNStack(3, hidden_size=5, bidirectional=True)
    assert bi(x, lengths)[0].shape == (3, 7, 10) and bi.output_size == 10


# -- configs and optimizer layers through the real CLI --------------------------------------------


def _cli(args, run=True):
    from seqkit.cli import SeqkitCLI

    return SeqkitCLI(args=args, run=run)


TINY = ["--data.init_args.num_train=16", "--data.init_args.num_val=8", "--data.init_args.loader.batch_size=8",
        "--model.rnn.init_args.hidden_size=4", "--trainer.max_epochs=1", "--trainer.val_check_interval=1.0",
        "--trainer.limit_val_batches=0", "--trainer.enable_checkpointing=false"]


@pytest.mark.parametrize("layer", OPTIM_LAYERS)
def test_optimizer_layer_runs_a_training_step(layer, tmp_path):
    args = ["--config", str(LONGLAG / "adding.yaml"), "--config", str(LONGLAG / "optim" / f"{layer}.yaml"),
            "--data.init_args.seq_len=22", *TINY, "--trainer.max_steps=1", *logger_args(tmp_path)]
    cli = _cli(["fit", *args])
    opt = cli.trainer.optimizers[0]
    group = opt.param_groups[0]
    want = {
        "sgd": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.0, "nesterov": False}),
        "nesterov": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
        "adagrad": (torch.optim.Adagrad, {"lr": 0.01}),
        "adadelta": (torch.optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-6}),
        "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9}),
        "adam": (torch.optim.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8}),
    }[layer]
    assert type(opt) is want[0]
    for key, value in want[1].items():
        assert group[key] == pytest.approx(value), key
    assert cli.trainer.global_step == 1
    # the step moved the weights away from their (seeded) initial values
    initial = _cli(args, run=False).model.state_dict()
    trained = cli.model.state_dict()
    assert any(not torch.equal(initial[k], trained[k]) for k in initial if k.startswith("rnn."))


def test_optimizer_layers_stack_on_every_task_config():
    parser = _cli(["--config", str(LONGLAG / "adding.yaml")], run=False).parser
    names = {"sgd": "SGD", "nesterov": "SGD", "adagrad": "Adagrad", "adadelta": "Adadelta", "rmsprop": "RMSprop", "adam": "Adam"}
    for config in TASK_CONFIGS:
        for layer in OPTIM_LAYERS:
            cfg = parser.parse_args(["--config", str(LONGLAG / config), "--config", str(LONGLAG / "optim" / f"{layer}.yaml")])
            opt = cfg.optimizer
            assert opt.class_path == f"torch.optim.{names[layer]}", (config, layer)
            assert "betas" not in opt.init_args or layer == "adam"  # the task's Adam settings do not leak
            if layer == "rmsprop":
                assert opt.init_args.alpha == 0.9 and opt.init_args.lr == 0.001
            assert cfg.data.class_path.startswith("seqkit_longlag.")  # the task itself is untouched


def test_simple_rnn_is_one_config_change(tmp_path):
    cli = _cli(["fit", "--config", str(LONGLAG / "adding.yaml"), "--model.rnn.class_path=SimpleRNNStack",
                "--data.init_args.seq_len=22", *TINY, "--trainer.max_steps=2", *logger_args(tmp_path)])
    assert isinstance(cli.model.rnn, SimpleRNNStack) and cli.model.rnn.hidden_size == 4
    assert cli.trainer.global_step == 2


def test_fit_then_predict_writes_one_record_per_test_sequence(tmp_path, monkeypatch):
    from seqkit.cli import main

    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(LONGLAG / "temporal_order_6a.yaml"), *TINY, "--trainer.max_steps=2",
          "--trainer.enable_checkpointing=true", *logger_args(tmp_path)])
    ckpt = next(Path(tmp_path).rglob("*.ckpt"))
    out = tmp_path / "pred.csv"
    main(["predict", "--ckpt_path", str(ckpt), "--data.init_args.num_test=10", f"--prediction.output={out}",
          "--trainer.enable_progress_bar=false", "--trainer.logger=false"])
    rows = out.read_text().splitlines()
    assert rows[0].split(",") == ["index", "label", "target"]
    assert len(rows) == 11 and {r.split(",")[1] for r in rows[1:]} <= {"Q", "R", "S", "U"}


def _test_overrides(config: Path) -> list[str]:
    m = re.search(r"^# test-overrides:(.*)$", config.read_text(), flags=re.M)
    assert m, f"{config} has no '# test-overrides:' line"
    return m.group(1).split()


# one config per data module (temporal_order_6b uses 6a's module); reber_stream is the stateful stream
PREDICT_CONFIGS = ["adding.yaml", "temporal_order_6a.yaml", "reber.yaml", "reber_stream.yaml", "copy.yaml"]


@pytest.mark.parametrize("config", PREDICT_CONFIGS)
def test_predict_from_checkpoint_alone_needs_no_data_files(config, tmp_path, monkeypatch):
    """One training batch through the CLI, then `seqkit predict --ckpt_path` with no --config, in a
    fresh process and another folder, predicts exactly what the run predicted right after fit."""
    from seqkit.cli import main

    path = LONGLAG / config
    text = path.read_text()
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(path), *_test_overrides(path), "--data.init_args.loader.batch_size=8",
          # one training batch, in an epoch that ends with it (max_steps=1 would stop before the validation
          # reber.yaml's EarlyStopping reads at the epoch's end); with TBPTT: one optimizer step per window
          "--trainer.max_epochs=1", "--trainer.limit_train_batches=1", *logger_args(tmp_path / "fit")])
    ckpt = next((tmp_path / "fit").rglob("*.ckpt"))
    ext = "csv" if "LongLagEndHead" in text else "jsonl"
    predict = ["predict", "--ckpt_path", str(ckpt), "--data.init_args.num_test=64", "--trainer.logger=false",
               "--trainer.enable_progress_bar=false"]
    main([*predict, f"--prediction.output={tmp_path / f'before.{ext}'}"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_seqkit(*predict, f"--prediction.output={tmp_path / f'after.{ext}'}", cwd=elsewhere)
    before, after = (tmp_path / f"before.{ext}").read_text(), (tmp_path / f"after.{ext}").read_text()
    assert before and after == before
    records = before.splitlines()[1:] if ext == "csv" else before.splitlines()
    if config == "reber_stream.yaml":  # one record per chunk of the stream
        assert records
    else:
        assert len(records) == 64  # one per test sequence
