"""The captioning plugin (seqkit-caption): caption files in both formats, bad input, the decoder
(teacher forcing lines up with decoding; beam size 1 is greedy), the contract checks of both data
modules (images, vectors), and predicting from a checkpoint once the training files are deleted.
The 2-process DDP fit of configs/captioning.yaml runs in tests/test_ddp.py."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from functools import partial

import pytest
import torch
from PIL import Image

from conftest import CONFIGS, logger_args, run_seqkit

seqkit_caption = pytest.importorskip("seqkit_caption")

from seqkit import DataError, SeqkitError, SequenceModel, beam_search, greedy_search  # noqa: E402
from seqkit.testing import check_datamodule, check_head  # noqa: E402
from seqkit_caption import (  # noqa: E402
    CaptionData,
    CaptionSpec,
    OneToManyBatch,
    OneToManyHead,
    SmallImageCNN,
    VectorSequenceData,
)
from seqkit_caption.images import load_image  # noqa: E402
from seqkit_caption.shapes import export  # noqa: E402
from seqkit_caption.vec2seq import generate_progressions  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(__file__))


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    """40 generated images with captions.tsv and captions.json, as a user would lay them out."""
    out = tmp_path_factory.mktemp("shapes")
    export(str(out), n=40, seed=3)
    return out


def _tiny_model(dm, mode="show_attend_tell", **head):
    head = {"embedding_dim": 16, "hidden_size": 48, "attention_size": 16, **head}
    return SequenceModel(
        head=partial(OneToManyHead, mode=mode, **head), rnn=None,
        encoder=partial(SmallImageCNN, channels=[8, 16, 16]), spec=dm.spec,
    )


# -- data ---------------------------------------------------------------------------------------
def test_tsv_and_coco_json_give_the_same_data(shapes_dir):
    loaded = {}
    for name in ("captions.tsv", "captions.json"):
        dm = CaptionData(captions=str(shapes_dir / name), val_fraction=0.2, test_fraction=0.2, loader={"batch_size": 8})
        dm.setup("fit")
        dm.setup("test")
        loaded[name] = dm
    tsv, coco = loaded["captions.tsv"], loaded["captions.json"]
    assert tsv.vocab.itos == coco.vocab.itos
    # 40 images, 8 held out for val and 8 for test; a training example is an image with both captions
    assert (len(tsv.train_set), len(tsv.val_set), len(tsv.test_set)) == (24, 8, 8)
    train = tsv.collate([tsv.train_set[i] for i in range(3)])
    assert isinstance(train, OneToManyBatch)
    assert train.targets.shape[0] == 6 and train.target_example.tolist() == [0, 0, 1, 1, 2, 2]
    assert [tsv.test_set[i][3] for i in range(8)] == [coco.test_set[i][3] for i in range(8)]
    batch = tsv.collate([tsv.test_set[i] for i in range(4)])
    assert batch.inputs.shape == (4, 3, 32, 64)
    assert all(len(refs) == 2 for refs in batch.references)  # both captions are references
    assert batch.targets[:, 0].eq(tsv.vocab.bos_id).all()


def _write_tsv(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("image\tcaption\n")
        for image, caption in rows:
            fh.write(f"{image}\t{caption}\n")


@pytest.mark.parametrize("problem,row,message", [
    ("missing image", ("images/nope.png", "a red square left of a blue circle"), "image not found"),
    ("unreadable image", ("broken.png", "a red square left of a blue circle"), "cannot read image"),
    ("empty caption", ("images/00001.png", "   "), "empty caption"),
])
def test_bad_rows_are_named_or_skipped(shapes_dir, tmp_path, problem, row, message):
    shutil.copytree(shapes_dir / "images", tmp_path / "images")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    good = [(f"images/{i:05d}.png", "two green circles left of a red square") for i in range(12)]
    captions = tmp_path / "captions.tsv"
    _write_tsv(captions, good[:2] + [row] + good[2:])
    with pytest.raises(DataError) as err:
        CaptionData(captions=str(captions)).setup("fit")
    text = str(err.value)
    assert f"{captions}:4" in text and message in text, text  # header is line 1: the bad row is line 4
    assert "on_bad" in text  # and the message says how to skip such rows
    with pytest.warns(UserWarning, match="skipped 1 bad row"):
        dm = CaptionData(captions=str(captions), on_bad="skip", val_fraction=0.25, test_fraction=0.0)
        dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == 12


def test_image_modes_are_converted(tmp_path):
    red = (200, 30, 30)
    Image.new("L", (8, 8), 77).save(tmp_path / "grey.png")
    rgba = Image.new("RGBA", (8, 8), (*red, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent: composited on white
    rgba.save(tmp_path / "rgba.png")
    Image.new("RGB", (8, 8), red).convert("P").save(tmp_path / "palette.gif")
    Image.new("I;16", (8, 8), 65535).save(tmp_path / "deep.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    got = {p: load_image(str(tmp_path / p), (8, 8)) for p in ("grey.png", "rgba.png", "palette.gif", "deep.png", "cmyk.jpg")}
    assert all(t.shape == (3, 8, 8) and t.dtype == torch.uint8 for t in got.values())
    assert got["grey.png"][:, 4, 4].tolist() == [77, 77, 77]
    assert got["rgba.png"][:, 4, 4].tolist() == list(red) and got["rgba.png"][:, 0, 0].tolist() == [255, 255, 255]
    assert got["deep.png"][:, 4, 4].tolist() == [255, 255, 255]
    assert got["cmyk.jpg"][0, 4, 4] > 200 and got["cmyk.jpg"][1, 4, 4] < 60  # cyan-free, full magenta+yellow: red


def test_torchvision_encoder_explains_what_is_missing():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        from seqkit_caption import TorchvisionImageEncoder

        with pytest.raises(SeqkitError, match="pip install torchvision.*SmallImageCNN"):
            TorchvisionImageEncoder(CaptionSpec(input_kind="image", input_size=3, image_size=(32, 64)))
    else:
        pytest.skip("torchvision is installed here")


# -- the decoder ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["show_tell", "show_attend_tell"])
def test_beam_size_one_equals_greedy(mode):
    torch.manual_seed(0)
    dm = CaptionData(num_train=16, num_val=4, num_test=12, loader={"eval_batch_size": 12})
    dm.setup("test")
    model = _tiny_model(dm, mode=mode).eval()
    batch = next(iter(dm.test_dataloader()))
    head, vocab = model.head, dm.vocab
    with torch.no_grad():
        state = head.start(model.encode(batch))
        step = head.decoder.search_step
        greedy = greedy_search(step, state, batch.size, vocab.bos_id, vocab.eos_id, head.max_len)
        beam1 = beam_search(step, state, batch.size, 1, vocab.bos_id, vocab.eos_id, head.max_len)
        beam3 = beam_search(step, state, batch.size, 3, vocab.bos_id, vocab.eos_id, head.max_len, length_penalty=0.0)
    assert torch.equal(greedy.tokens, beam1.tokens)
    assert torch.allclose(greedy.scores, beam1.scores)
    assert beam3.tokens.shape[0] == batch.size and (beam3.lengths >= 1).all()  # the state reorders per beam
    if mode == "show_attend_tell":
        S = model.encoder.grid[0] * model.encoder.grid[1]
        assert greedy.attention.shape == (batch.size, greedy.tokens.shape[1], S)
        assert torch.allclose(greedy.attention[:, 0].sum(-1), torch.ones(batch.size))
    else:
        assert greedy.attention is None


@pytest.mark.parametrize("mode", ["show_tell", "show_attend_tell"])
def test_teacher_forcing_trains_what_decoding_reads(mode):
    """Memorise 12 images' captions: if training and decoding were misaligned by a step, greedy
    decoding of the training images would not give back their captions."""
    torch.manual_seed(0)
    dm = CaptionData(num_train=12, num_val=12, num_test=4, loader={"batch_size": 24}, seed=5)
    dm.setup("fit")
    model = _tiny_model(dm, mode=mode, hidden_size=96)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = dm.collate([dm.train_set[i] for i in range(len(dm.train_set))])  # 12 images, 24 captions
    for _ in range(120):
        loss = model.head.loss(model.encode(batch), batch, "train", model.encode)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        state = model.head.start(model.encode(batch))
        out = model.head.texts(model.head.search(state, 1).tokens)
    hits = sum(o in refs for o, refs in zip(out, batch.references))
    assert len(out) == 12 and hits >= 11, list(zip(out, batch.references))[:4]


# -- the contract checks --------------------------------------------------------------------------
def _vector_files(tmp_path) -> dict[str, str]:
    """Generated progressions written as the TSV files a user would give (small ranges)."""
    files = {}
    for split, rows in generate_progressions(0, max_start=6, max_step=3, max_count=5).items():
        path = tmp_path / f"{split}.tsv"
        path.write_text("".join(f"{' '.join(f'{v:g}' for v in vec)}\t{' '.join(toks)}\n" for vec, toks in rows))
        files[f"{split}_file"] = str(path)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("1 2 3\n4, 1, 5\n0 3 4\n")
    files["predict_file"] = str(vectors)
    return files


def test_caption_data_and_head_pass_the_contract_checks(shapes_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    report = check_datamodule(CaptionData, training_files=[str(data / "captions.tsv")],
                              predict_kwargs={"predict_images": str(data / "images")},
                              captions=str(data / "captions.tsv"), val_fraction=0.25, test_fraction=0.0,
                              loader={"batch_size": 4})
    assert "predicts without training files" in report.passed, report
    # generated captions all have one length: make some shorter, so batches hold padded targets
    rows = (data / "captions.tsv").read_text().splitlines()[1:]
    ragged = [f"{r.split(chr(9))[0]}\t{' '.join(r.split(chr(9))[1].split()[: 4 + k % 5])}" for k, r in enumerate(rows)]
    (data / "ragged.tsv").write_text("image\tcaption\n" + "\n".join(ragged) + "\n")
    head = check_head(OneToManyHead, CaptionData(captions=str(data / "ragged.tsv"), loader={"batch_size": 4}),
                      head_args={"embedding_dim": 16, "hidden_size": 32, "attention_size": 16, "attention_reg": 0.5},
                      rnn=None, encoder=partial(SmallImageCNN, channels=[8, 16, 16]))
    for check in ("all parameters used", "ignores padded targets", "checkpoint round trip"):
        assert check in head.passed, head


def test_vector_data_and_head_pass_the_contract_checks(tmp_path):
    files = _vector_files(tmp_path)
    train = {k: v for k, v in files.items() if k != "predict_file"}
    report = check_datamodule(VectorSequenceData, training_files=list(train.values()),
                              predict_kwargs={"predict_file": files["predict_file"]}, loader={"batch_size": 8}, **train)
    assert "predicts without training files" in report.passed, report
    head = check_head(OneToManyHead, VectorSequenceData(loader={"batch_size": 8, "bucket": False}),  # ragged targets
                      head_args={"mode": "show_tell", "embedding_dim": 16, "hidden_size": 32}, rnn=None)
    for check in ("all parameters used", "ignores padded targets", "checkpoint round trip"):
        assert check in head.passed, head


# -- the command line -----------------------------------------------------------------------------
def _test_overrides(config: str) -> list[str]:
    return re.search(r"^# test-overrides:(.*)$", open(config, encoding="utf-8").read(), flags=re.M).group(1).split()


def _fit_one_step(tmp_path, config: str, *args: str) -> str:
    """Train one step through the CLI with the config's test overrides; the checkpoint's path."""
    run_seqkit("fit", "--config", config, *_test_overrides(config), *args, "--trainer.max_steps=1",
               "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1", *logger_args(tmp_path / "fit"),
               cwd=ROOT)
    return str(sorted((tmp_path / "fit").rglob("*.ckpt"))[-1])


def _predict(tmp_path, ckpt: str, run: str, *args: str) -> list[dict]:
    """`seqkit predict --ckpt_path CKPT` with no --config: the rows of the CSV it writes."""
    out = tmp_path / f"{run}.csv"
    run_seqkit("predict", "--ckpt_path", ckpt, f"--prediction.output={out}", *args, *logger_args(tmp_path / run),
               cwd=tmp_path)
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


def test_captions_predicted_from_the_checkpoint_after_the_training_files_are_deleted(shapes_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    config = str(CONFIGS / "captioning.yaml")
    ckpt = _fit_one_step(tmp_path, config, f"--data.init_args.captions={data / 'captions.tsv'}",
                         "--data.init_args.loader.batch_size=8")
    todo = tmp_path / "todo"
    todo.mkdir()
    for i in (3, 7, 11):
        shutil.copy(data / "images" / f"{i:05d}.png", todo / f"photo{i}.png")
    Image.open(todo / "photo3.png").convert("L").save(todo / "photo3.png")  # greyscale: converted, not a crash
    before = _predict(tmp_path, ckpt, "before", f"--data.init_args.predict_images={todo}")
    # the training captions (and their file name in the saved config) are gone; only images remain
    os.remove(data / "captions.tsv")
    os.remove(data / "captions.json")
    plots = tmp_path / "attention"
    after = _predict(tmp_path, ckpt, "after", f"--data.init_args.predict_images={todo}",
                     "--trainer.callbacks+=AttentionPlot",
                     f"--trainer.callbacks.dirpath={plots}")
    assert [os.path.basename(r["image"]) for r in before] == ["photo11.png", "photo3.png", "photo7.png"]
    assert before == after and all(r["caption"] for r in after)
    pngs = sorted(p.name for p in plots.iterdir())
    assert pngs == ["attention_predict_0-photo11.png", "attention_predict_1-photo3.png", "attention_predict_2-photo7.png"]
    assert Image.open(plots / pngs[0]).size[0] > 200


def test_vectors_decoded_from_the_checkpoint_after_the_training_files_are_deleted(tmp_path):
    files = _vector_files(tmp_path)
    config = str(CONFIGS / "vec2seq.yaml")
    ckpt = _fit_one_step(tmp_path, config, *(f"--data.init_args.{k}={v}" for k, v in files.items() if k != "predict_file"),
                         "--data.init_args.loader.batch_size=8")
    before = _predict(tmp_path, ckpt, "before", f"--data.init_args.predict_file={files['predict_file']}")
    for key in ("train_file", "val_file", "test_file"):
        os.remove(files[key])
    after = _predict(tmp_path, ckpt, "after", f"--data.init_args.predict_file={files['predict_file']}")
    assert [r["input"] for r in before] == ["1 2 3", "4 1 5", "0 3 4"]
    assert before == after and all(r["output"] is not None for r in after)


def test_bad_captions_file_is_one_line_error(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2, "caption": "x"}]}))
    proc = run_seqkit("fit", "--config", "configs/captioning.yaml", f"--data.init_args.captions={tmp_path / 'c.json'}",
                      *logger_args(tmp_path), cwd=ROOT, check=False)
    assert proc.returncode == 1
    assert "annotations[0]: image_id 2 is not in 'images'" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- regularisation and decoding controls -------------------------------------------------------
def test_decoding_controls_word_dropout_and_augmentation():
    """min_length and block_ngram_repeat bind the core search's output; word dropout and label
    smoothing change only the training loss; image augmentation only the training batches."""
    torch.manual_seed(0)
    dm = CaptionData(num_train=16, num_val=8, num_test=8, loader={"batch_size": 8, "eval_batch_size": 8},
                     augment={"shift": 0.1, "brightness": 0.3, "noise": 0.05})
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    plain = dm.collate([dm.val_set[i] for i in batch.index.tolist()])
    assert torch.equal(batch.inputs, plain.inputs)  # validation: never augmented
    train = next(iter(dm.train_dataloader()))
    assert not torch.allclose(train.inputs, dm.collate([dm.train_set[i] for i in train.index.tolist()]).inputs)
    model = _tiny_model(dm).eval()  # untrained: its captions repeat words and stop anywhere
    with torch.no_grad():
        state = model.head.start(model.encode(batch))
        for beam in (1, 3):
            model.head.constraints = {"min_length": 6, "block_ngram_repeat": 1}
            words = [t.split() for t in model.head.texts(model.head.search(state, beam).tokens)]
            assert all(len(w) >= 6 for w in words) and all(len(set(w)) == len(w) for w in words), words
        torch.manual_seed(1)
        base = model.head.loss(model.encode(batch), batch, "val", model.encode)
        smoothed = _tiny_model(dm, word_dropout=0.5, label_smoothing=0.1)
        smoothed.load_state_dict(model.state_dict())
        smoothed.eval()
        assert smoothed.head.loss(smoothed.encode(batch), batch, "val", smoothed.encode) == pytest.approx(float(base))
        assert smoothed.head.loss(smoothed.encode(batch), batch, "train", smoothed.encode) != pytest.approx(float(base))
