"""The captioning plugin (seqkit-caption): caption files in both formats, bad input, the decoder
(teacher forcing lines up with decoding; beam size 1 is greedy), and predicting from a checkpoint
alone. The 2-process DDP fit of configs/captioning.yaml runs in tests/test_ddp.py."""

from __future__ import annotations

import csv
import json
import os
import shutil
from functools import partial

import pytest
import torch
from PIL import Image

from conftest import logger_args, run_seqkit

seqkit_caption = pytest.importorskip("seqkit_caption")

from seqkit import DataError, SeqkitError, SequenceModel, Spec, beam_search, greedy_search  # noqa: E402
from seqkit_caption import CaptionData, OneToManyHead, SmallImageCNN  # noqa: E402
from seqkit_caption.images import load_image  # noqa: E402
from seqkit_caption.shapes import export  # noqa: E402


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
        dm = CaptionData(captions=str(shapes_dir / name), val_fraction=0.2, test_fraction=0.2, batch_size=8)
        dm.setup("fit")
        dm.setup("test")
        loaded[name] = dm
    tsv, coco = loaded["captions.tsv"], loaded["captions.json"]
    assert tsv.vocab.itos == coco.vocab.itos
    # 40 images, 8 held out for val and 8 for test; a training example is an image with both captions
    assert (len(tsv.train_set), len(tsv.val_set), len(tsv.test_set)) == (24, 8, 8)
    train = tsv.collate([tsv.train_set[i] for i in range(3)])
    assert train.targets.shape[0] == 6 and train.extra["caption_image"].tolist() == [0, 0, 1, 1, 2, 2]
    assert [tsv.test_set[i][3] for i in range(8)] == [coco.test_set[i][3] for i in range(8)]
    batch = tsv.collate([tsv.test_set[i] for i in range(4)])
    assert batch.inputs.shape == (4, 3, 32, 64)
    assert all(len(refs) == 2 for refs in batch.extra["references"])  # both captions are references
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
            TorchvisionImageEncoder(Spec(input_kind="image", input_size=3, extra={"image_size": (32, 64)}))
    else:
        pytest.skip("torchvision is installed here")


# -- the decoder ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["show_tell", "show_attend_tell"])
def test_beam_size_one_equals_greedy(mode):
    torch.manual_seed(0)
    dm = CaptionData(num_train=16, num_val=4, num_test=12, eval_batch_size=12)
    dm.setup("test")
    model = _tiny_model(dm, mode=mode).eval()
    batch = next(iter(dm.test_dataloader()))
    head, vocab = model.head, dm.vocab
    with torch.no_grad():
        state = head.init_state(model.encode(batch))
        greedy = greedy_search(head.search_step, state, batch.size, vocab.bos_id, vocab.eos_id, head.max_len)
        beam1 = beam_search(head.search_step, state, batch.size, 1, vocab.bos_id, vocab.eos_id, head.max_len)
        beam3 = beam_search(head.search_step, state, batch.size, 3, vocab.bos_id, vocab.eos_id, head.max_len, length_penalty=0.0)
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
    dm = CaptionData(num_train=12, num_val=12, num_test=4, batch_size=24, seed=5)
    dm.setup("fit")
    model = _tiny_model(dm, mode=mode, hidden_size=96)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = dm.collate([dm.train_set[i] for i in range(len(dm.train_set))])  # 12 images, 24 captions
    for _ in range(120):
        loss = model.head.step(model, batch, "train")
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        state = model.head.init_state(model.encode(batch))
        out = model.head.texts(model.head.search(state, 1).tokens)
    hits = sum(o in refs for o, refs in zip(out, batch.extra["references"]))
    assert len(out) == 12 and hits >= 11, list(zip(out, batch.extra["references"]))[:4]


# -- the command line -----------------------------------------------------------------------------
def test_predict_from_checkpoint_alone(shapes_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shapes_dir, data)
    run_seqkit(
        "fit", "--config", "configs/captioning.yaml",
        f"--data.init_args.captions={data / 'captions.tsv'}", "--data.init_args.loader.batch_size=16",
        "--model.encoder.init_args.channels=[8,16,16]", "--model.head.init_args.hidden_size=32",
        "--model.head.init_args.attention_size=16", "--model.head.init_args.embedding_dim=16",
        "--optimizer.init_args.lr=0.01", "--trainer.max_epochs=8", *logger_args(tmp_path / "logs"),
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    ckpt = next((tmp_path / "logs").rglob("*.ckpt"))
    # the training captions (and their file name in the saved config) are gone; only images remain
    os.rename(data / "captions.tsv", tmp_path / "moved.tsv")
    os.remove(data / "captions.json")
    todo = tmp_path / "todo"
    todo.mkdir()
    for i in (3, 7, 11):
        shutil.copy(data / "images" / f"{i:05d}.png", todo / f"photo{i}.png")
    Image.open(todo / "photo3.png").convert("L").save(todo / "photo3.png")  # greyscale: converted, not a crash
    out = tmp_path / "captions.csv"
    plots = tmp_path / "attention"
    run_seqkit(
        "predict", "--ckpt_path", str(ckpt), f"--data.init_args.predict_images={todo}",
        f"--prediction.output={out}", f"--model.head.init_args.attention_plots={plots}",
        "--model.head.init_args.beam_size=2", "--trainer.enable_progress_bar=false", cwd=tmp_path,
    )
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [os.path.basename(r["image"]) for r in rows] == ["photo11.png", "photo3.png", "photo7.png"]
    words = {w for line in (tmp_path / "moved.tsv").read_text().splitlines()[1:] for w in line.split("\t")[1].split()}
    assert all(r["caption"].split() and set(r["caption"].split()) <= words for r in rows), rows
    pngs = sorted(p.name for p in plots.iterdir())
    assert len(pngs) == 3 and all(p.endswith(".png") for p in pngs)
    assert Image.open(plots / pngs[0]).size[0] > 200


def test_bad_captions_file_is_one_line_error(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2, "caption": "x"}]}))
    proc = run_seqkit("fit", "--config", "configs/captioning.yaml", f"--data.init_args.captions={tmp_path / 'c.json'}",
                      *logger_args(tmp_path), cwd=os.path.dirname(os.path.dirname(__file__)), check=False)
    assert proc.returncode == 1
    assert "annotations[0]: image_id 2 is not in 'images'" in proc.stderr
    assert "Traceback" not in proc.stderr
