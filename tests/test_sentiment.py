"""Text classification (TextClassificationData): the generated corpus needs word order, CSV/TSV
reading with its error policies, pretrained word vectors, the contract checks, and fit + predict
through the CLI (also from the checkpoint alone, with the training and vector files deleted)."""

from __future__ import annotations

import csv
import random
from collections import Counter

import pytest
import torch

from conftest import CONFIGS, logger_args, run_seqkit
from seqkit import DataError, LSTMStack, ManyToOneHead, Spec, Vocab
from seqkit.testing import check_datamodule, check_head
from seqkit_sentiment.corpus import generate_reviews, review
from seqkit_sentiment.data import TextClassificationData, read_texts
from seqkit_sentiment.vectors import WordVectorEmbedding


def _bow_logistic_regression(train, test) -> torch.Tensor:
    """Per-example correctness on ``test`` of a logistic regression on bag-of-words counts
    (the order-blind baseline)."""
    vocab = {w: i for i, w in enumerate(sorted({w for t, _ in train for w in t.split()}))}

    def counts(rows):
        x = torch.zeros(len(rows), len(vocab))
        for i, (text, _) in enumerate(rows):
            for w in text.split():
                if w in vocab:
                    x[i, vocab[w]] += 1
        return x, torch.tensor([label == "positive" for _, label in rows], dtype=torch.float)

    (x, y), (xt, yt) = counts(train), counts(test)
    w = torch.zeros(len(vocab), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + 1e-4 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return ((xt @ w + b) > 0).float() == yt


def test_generated_reviews_need_word_order():
    train = generate_reviews(3000, seed=0)
    assert generate_reviews(5, seed=0) == train[:5]  # seeded
    assert 0.4 < Counter(label for _, label in train)["positive"] / len(train) < 0.6
    rng = random.Random(2)
    test = [review(rng) for _ in range(800)]
    right = _bow_logistic_regression(train, [(t, label) for t, label, _ in test])
    by_kind = {k: float(right[[i for i, r in enumerate(test) if r[2] == k]].float().mean())
               for k in ("single", "negated", "but", "although", "and")}
    assert float(right.float().mean()) < 0.7, by_kind
    assert by_kind["single"] > 0.9, by_kind  # words alone decide a plain clause...
    assert max(by_kind[k] for k in ("negated", "but", "although", "and")) < 0.65, by_kind  # ...not the rest


def test_csv_and_tsv_by_name_or_index(tmp_path):
    (tmp_path / "a.csv").write_text('id,text,label\n1,"good, very good",pos\n2,bad film,neg\n')
    assert read_texts(str(tmp_path / "a.csv"), "text", "label") == [("good, very good", "pos", 2), ("bad film", "neg", 3)]
    (tmp_path / "b.tsv").write_text("pos\tgood film\nneg\tbad film\n")
    assert read_texts(str(tmp_path / "b.tsv"), 1, 0) == [("good film", "pos", 1), ("bad film", "neg", 2)]
    assert read_texts(str(tmp_path / "a.csv"), 1, 2, header=True)[0][:2] == ("good, very good", "pos")
    # a quoted text spanning two lines: the next row keeps its own line number
    (tmp_path / "c.csv").write_text('text,label\n"good\nfilm",pos\n\nbad,neg\n')
    assert read_texts(str(tmp_path / "c.csv"), "text", "label") == [("good\nfilm", "pos", 2), ("bad", "neg", 5)]
    with pytest.raises(DataError, match=r"a.csv: no column 'review' \(columns: id, text, label\)"):
        read_texts(str(tmp_path / "a.csv"), "review", "label")
    with pytest.raises(DataError, match=r"data.init_args.text_column: 'text' is a column name, but data.init_args.header is false"):
        read_texts(str(tmp_path / "a.csv"), "text", 2, header=False)


def test_bad_rows_name_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\ngood film,pos\nbad, film,neg\n")
    with pytest.raises(DataError, match=r"bad.csv:3: expected 2 fields like the header, found 3 \(quote a field"):
        read_texts(str(path), "text", "label")
    path.write_text("text,label\ngood film,pos\nbad film,\nok film,pos\n")
    with pytest.raises(DataError, match=r"bad.csv:3: empty label \(set data.init_args.on_bad: skip"):
        read_texts(str(path), "text", "label")
    with pytest.warns(UserWarning, match="skipped 1 rows"):
        assert len(read_texts(str(path), "text", "label", on_bad="skip")) == 2
    path.write_bytes(b"text,label\ngood film,pos\nbad \xff film,neg\n")
    with pytest.raises(DataError, match=r"bad.csv:3: not valid UTF-8"):
        read_texts(str(path), "text", "label")


def test_label_unseen_in_training(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\ngood,pos\nbad,neg\nfine,pos\n")
    (tmp_path / "test.csv").write_text("text,label\ngood,pos\nmeh,neutral\n")
    dm = TextClassificationData(train_file=str(tmp_path / "train.csv"), val_file=str(tmp_path / "train.csv"),
                                test_file=str(tmp_path / "test.csv"))
    with pytest.raises(DataError, match=r"test.csv:3: label 'neutral' was not seen in training \(known: neg, pos\)"):
        dm.setup("test")


def test_word_vectors_glove_and_word2vec(tmp_path):
    vocab = Vocab.build([["good", "Bad", "plot"]])
    spec = Spec(input_kind="tokens", input_size=len(vocab), pad_id=vocab.pad_id, vocabs={"tokens": vocab})
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1 2 3\nbad 4 5 6\nunrelated 7 8 9\n")
    enc = WordVectorEmbedding(spec, str(glove))
    table = enc.embedding.weight
    assert enc.output_size == 3 and enc.coverage == (2, len(vocab))
    assert table[vocab.stoi["good"]].tolist() == [1, 2, 3]
    assert table[vocab.stoi["Bad"]].tolist() == [4, 5, 6]  # found lowercased
    assert table[vocab.pad_id].abs().sum() == 0 and table[vocab.stoi["plot"]].abs().sum() > 0
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("2 2\ngood 0.5 0.25\nplot 1 1\n")
    enc = WordVectorEmbedding(spec, str(w2v), freeze=True)
    assert enc.embedding.weight[vocab.stoi["plot"]].tolist() == [1, 1] and not enc.embedding.weight.requires_grad
    w2v.write_text("good 1 2\nplot 1 2 3\n")
    with pytest.raises(DataError, match=r"w2v.txt:2: expected a word and 2 numbers, found 3"):
        WordVectorEmbedding(spec, str(w2v))
    # with dim, the model builds without the file (predict: the trained table is in the checkpoint)
    missing = tmp_path / "gone.txt"
    assert WordVectorEmbedding(spec, str(missing), dim=3).embedding.weight.shape == (len(vocab), 3)
    with pytest.raises(DataError, match=r"gone.txt .*set model.encoder.init_args.dim"):
        WordVectorEmbedding(spec, str(missing))
    with pytest.raises(DataError, match=r"glove.txt: the vectors have 3 dimensions, but model.encoder.init_args.dim is 4"):
        WordVectorEmbedding(spec, str(glove), dim=4)


def _write_reviews(path, rows):
    with path.open("w") as fh:
        fh.writelines(f"{label}\t{text}\n" for text, label in rows)


def test_contract_checks(tmp_path):
    train = tmp_path / "train.tsv"
    _write_reviews(train, generate_reviews(80, seed=3))
    new = tmp_path / "new.txt"
    new.write_text("the plot was not dull\ngood acting but a dull plot\n")
    files = dict(train_file=str(train), text_column=1, label_column=0, val_fraction=0.25, loader={"batch_size": 8})
    check_datamodule(TextClassificationData, training_files=[str(train)], predict_kwargs={"predict_file": str(new)},
                     **files)
    small = TextClassificationData(num_train=64, num_val=16, num_test=16, loader={"batch_size": 8})
    check_head(ManyToOneHead, small, rnn=lambda size: LSTMStack(size, hidden_size=8))


def _predictions(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_fit_with_vectors_and_predict_texts_then_from_checkpoint_alone(tmp_path):
    train = tmp_path / "train.tsv"
    _write_reviews(train, generate_reviews(300, seed=5))
    vectors = tmp_path / "vec.txt"
    vectors.write_text("good 0.9 0.1 0 0\ndull 0.1 0.9 0 0\nnot 0 0 1 0\n")
    (tmp_path / "new.txt").write_text("the plot was not dull\ngood acting but a dull plot\n")
    args = ["--config", str(CONFIGS / "sentiment.yaml"), f"--data.init_args.train_file={train}",
            "--data.init_args.text_column=1", "--data.init_args.label_column=0",
            f"--data.init_args.predict_file={tmp_path / 'new.txt'}",
            "--model.encoder=WordVectorEmbedding", f"--model.encoder.init_args.vectors={vectors}",
            "--model.encoder.init_args.dim=4", "--model.rnn.init_args.hidden_size=8"]
    run_seqkit("fit", *args, "--trainer.max_steps=1", *logger_args(tmp_path), cwd=tmp_path)
    ckpt = sorted(tmp_path.rglob("*.ckpt"))[-1]
    out = tmp_path / "pred.csv"
    run_seqkit("predict", *args, f"--ckpt_path={ckpt}", f"--prediction.output={out}",
               *logger_args(tmp_path / "p"), cwd=tmp_path)
    pred = _predictions(out)
    assert [r["input"] for r in pred] == ["the plot was not dull", "good acting but a dull plot"]
    assert set(pred[0]) == {"index", "input", "label", "p_negative", "p_positive"}
    assert all(r["label"] in ("negative", "positive") for r in pred)
    assert abs(float(pred[1]["p_negative"]) + float(pred[1]["p_positive"]) - 1) < 1e-4

    # the checkpoint alone: its config, vocabulary and trained embedding; no training or vector file
    train.unlink()
    vectors.unlink()
    after = tmp_path / "after.csv"
    run_seqkit("predict", f"--ckpt_path={ckpt}", f"--prediction.output={after}", *logger_args(tmp_path / "p2"),
               cwd=tmp_path)
    assert _predictions(after) == pred
