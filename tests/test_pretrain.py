"""Language-model pretraining on a task's own text, then a classifier that starts from it
(ULMFiT-style): TextLMData's shifted targets, model.init_from and data.init_args.vocab_from,
and the whole workflow through the real CLI, down to predicting with the language model gone."""

from __future__ import annotations

import csv
from functools import partial

import pytest
import torch

from conftest import logger_args, read_metrics, run_seqkit
from seqkit import LSTMStack, ManyToOneHead, PerStepHead, SeqkitError, SequenceModel, TokenEmbedding
from seqkit.cli import main
from seqkit_sentiment import TextClassificationData, TextLMData

TEXTS = {"python": ["python module for parsing {}", "python bindings of {}", "{} for python 3"],
         "rust": ["rust crate for {}", "{} - rust source code", "rust library: {}"]}
WORDS = ["json", "yaml", "images", "sound", "maths", "http", "dates", "colours"]


def _corpus(tmp_path):
    rows = [(t.format(w), label) for label, ts in TEXTS.items() for t in ts for w in WORDS]
    for name, part in (("train", rows[0::2]), ("val", rows[1::2])):
        with open(tmp_path / f"{name}.tsv", "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(["text", "label"])
            writer.writerows(part)
    # unlabelled text has words the labelled files never show
    (tmp_path / "more.txt").write_text("".join(f"{t.format(w)}\n" for ts in TEXTS.values() for t in ts
                                               for w in ["xml", "fonts", "zip", "audio"]))
    return {k: str(tmp_path / f"{k}.tsv") for k in ("train", "val")}, str(tmp_path / "more.txt")


def test_lm_data_predicts_every_next_token_and_its_vocabulary_covers_the_unlabelled_text(tmp_path):
    files, more = _corpus(tmp_path)
    dm = TextLMData(train_file=files["train"], val_file=files["val"], unlabelled_file=more)
    dm.setup("fit")
    assert len(dm.train_set) == 24 + 24  # labelled training texts and unlabelled ones; labels unused
    assert "zip" in dm.vocab and "json" in dm.vocab
    ids = dm.vocab.encode(dm.tokenizer.tokenize("rust crate for zip"))
    x, y, _ = next(item for item in dm.train_set.items if item[0][1:] == ids)
    assert x == [dm.vocab.bos_id, *ids] and y == [*ids, dm.vocab.eos_id]
    assert dm.spec.num_classes == dm.spec.input_size == len(dm.vocab)
    batch = dm.collate(dm.train_set.items[:4])
    assert batch.targets.shape == batch.inputs.shape
    cls = TextClassificationData(train_file=files["train"], val_file=files["val"])
    cls.setup("fit")
    assert "zip" not in cls.vocab  # on its own the classifier would map the unlabelled words to <unk>


def _lm_ckpt(tmp_path, files, more, bidirectional=False, epochs=1):
    run_seqkit("fit", "--seed_everything=0", "--data=TextLMData", f"--data.init_args.train_file={files['train']}",
               f"--data.init_args.val_file={files['val']}", f"--data.init_args.unlabelled_file={more}",
               "--model.head=PerStepHead", "--model.encoder=TokenEmbedding", "--model.encoder.init_args.embedding_dim=8",
               "--model.rnn=LSTMStack", "--model.rnn.init_args.hidden_size=8",
               f"--model.rnn.init_args.bidirectional={str(bidirectional).lower()}",
               "--optimizer=Adam", "--optimizer.lr=0.02", f"--trainer.max_epochs={epochs}",
               *logger_args(tmp_path / "lm"), cwd=tmp_path)
    return sorted((tmp_path / "lm").rglob("*.ckpt"))[0]


def _classifier_args(files, lm, *extra):
    return ["--data=TextClassificationData", f"--data.init_args.train_file={files['train']}",
            f"--data.init_args.val_file={files['val']}", f"--data.init_args.test_file={files['val']}",
            f"--data.init_args.vocab_from={lm}", f"--model.init_from={lm}", "--model.head=ManyToOneHead",
            "--model.head.init_args.pooling=max", "--model.encoder=TokenEmbedding",
            "--model.encoder.init_args.embedding_dim=8", "--model.rnn=LSTMStack", "--model.rnn.init_args.hidden_size=8",
            *extra]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """One language model for the module: (folder, labelled files, its checkpoint)."""
    tmp_path = tmp_path_factory.mktemp("lm")
    files, more = _corpus(tmp_path)
    return tmp_path, files, _lm_ckpt(tmp_path, files, more, epochs=6)


@pytest.mark.parametrize("change,expected", [
    (["--model.rnn.init_args.bidirectional=true"], "configure model.rnn as in the run that wrote it"),
    (["--model.rnn.init_args.num_layers=2"], "lacks rnn.lstm.weight_ih_l1"),
    (["--data.init_args.vocab_from=null"], "was trained with another vocabulary"),
])
def test_a_mismatched_stack_or_vocabulary_is_one_line_naming_the_key(lm_run, tmp_path, capsys, change, expected):
    _, files, lm = lm_run
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *_classifier_args(files, lm, "--trainer.max_epochs=1", *change), *logger_args(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code not in (0, None) and "Traceback" not in err
    line = next(ln for ln in err.splitlines() if "model.init_from:" in ln)
    assert expected in line and str(lm) in line


def test_pretrain_then_fine_tune_then_predict_without_the_language_model(lm_run, tmp_path):
    import shutil

    shared, shared_files, shared_lm = lm_run
    # this test deletes files: work on copies, so the module's language model stays for the others
    files = {k: shutil.copy(v, tmp_path / f"{k}.tsv") for k, v in shared_files.items()}
    lm = tmp_path / "lm.ckpt"
    shutil.copy(shared_lm, lm)
    val = [float(r["val_loss"]) for r in read_metrics(shared / "lm") if r.get("val_loss")]
    assert len(val) == 6 and all(b < a for a, b in zip(val, val[1:])), val  # it learns the texts
    # the first epoch trains the heads only: the encoder and stack are still exactly the language model's
    run_seqkit("fit", "--seed_everything=0", *_classifier_args(files, lm, "--model.ensemble=2", "--trainer.max_epochs=1",
                                        "--model.freeze_pretrained_epochs=1", "--optimizer=Adam",
                                        "--optimizer.lr=0.01"),
               *logger_args(tmp_path / "cls"), cwd=tmp_path)
    ckpt = sorted((tmp_path / "cls").rglob("*.ckpt"))[0]
    pre = torch.load(lm, weights_only=True)["state_dict"]
    got = torch.load(ckpt, weights_only=True)["state_dict"]
    for key in [k for k in pre if k.startswith(("encoder.", "rnn."))]:
        torch.testing.assert_close(got[key], pre[key], msg=key)
        torch.testing.assert_close(got[f"ensemble_members.0.{key}"], pre[key], msg=key)
    assert not torch.equal(got["head.proj.1.weight"], got["ensemble_members.0.head.proj.1.weight"])
    # the classifier keeps the language model's vocabulary: predict needs neither the LM nor the training file
    lm.unlink()
    (tmp_path / "train.tsv").unlink()
    new = tmp_path / "new.txt"
    new.write_text("rust crate for zip\npython bindings of audio\n")
    out = tmp_path / "pred.csv"
    run_seqkit("predict", "--ckpt_path", str(ckpt), f"--data.init_args.predict_file={new}",
               f"--prediction.output={out}", cwd=tmp_path)
    with open(out, newline="") as f:
        assert [r["input"] for r in csv.DictReader(f)] == ["rust crate for zip", "python bindings of audio"]
    # resuming never reads init_from again (the language model is gone): the fit goes on from its checkpoint
    (tmp_path / "train.tsv").write_text(open(shared_files["train"]).read())
    last = sorted((tmp_path / "cls").rglob("last.ckpt"))[0]
    run_seqkit("fit", *_classifier_args(files, lm, "--model.ensemble=2", "--trainer.max_epochs=2",
                                        "--model.freeze_pretrained_epochs=1"),
               f"--ckpt_path={last}", *logger_args(tmp_path / "cls"), cwd=tmp_path)
    assert torch.load(sorted((tmp_path / "cls").rglob("last.ckpt"))[-1], weights_only=True)["epoch"] >= 1


def test_a_language_model_refuses_a_stack_that_reads_ahead(lm_run):
    _, files, _ = lm_run
    dm = TextLMData(train_file=files["train"])
    with pytest.raises(SeqkitError, match="the stack must be unidirectional"):
        SequenceModel(head=PerStepHead, rnn=partial(LSTMStack, hidden_size=4, bidirectional=True), spec=dm.spec)


def test_init_from_a_file_that_is_not_a_checkpoint_names_the_key(tmp_path):
    bad = tmp_path / "lm.ckpt"
    bad.write_bytes(b"not a checkpoint")
    model = SequenceModel(head=ManyToOneHead, encoder=partial(TokenEmbedding, embedding_dim=8),
                          rnn=partial(LSTMStack, hidden_size=8),
                          spec=TextClassificationData(num_train=8, num_val=4, num_test=4).spec, init_from=str(bad))
    with pytest.raises(SeqkitError, match=r"^model.init_from: .*lm.ckpt"):
        model.load_pretrained(str(bad))


def test_a_deeper_or_two_way_pretrained_stack_is_refused_not_silently_cut(tmp_path):
    spec = TextClassificationData(num_train=8, num_val=4, num_test=4).spec
    vocab = spec.vocabs["tokens"]

    def model(**rnn):
        return SequenceModel(head=ManyToOneHead, encoder=partial(TokenEmbedding, embedding_dim=8),
                             rnn=partial(LSTMStack, hidden_size=8, **rnn), spec=spec)

    for pretrained, message in (({"num_layers": 2}, r"_l1, which this model lacks"),
                                ({"bidirectional": True}, "_reverse, which this model lacks")):
        path = tmp_path / "pre.ckpt"
        torch.save({"state_dict": model(**pretrained).state_dict(),
                    "TextClassificationData": {"vocab": vocab.state_dict()}}, path)
        with pytest.raises(SeqkitError, match=message):
            model().load_pretrained(str(path))
    torch.save({"state_dict": model().state_dict()}, path)  # no vocabulary to match the embeddings against
    with pytest.raises(SeqkitError, match="keeps no vocabulary"):
        model().load_pretrained(str(path))
