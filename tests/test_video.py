"""Per-frame video classification (plugins/seqkit-video): the three input forms, bad input named
by file, masking of clips of different lengths, stitched and streamed windows, segment metrics
against hand-computed values, seqkit.testing's contract checks, and fit + predict through the real
CLI, also from a checkpoint once the training clips are deleted. (The 2-process DDP fit of
configs/video.yaml runs in tests/test_ddp.py from the config's ``# test-overrides:`` line.)"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
import sys
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CONFIGS, last_value, logger_args, read_metrics, run_seqkit
from seqkit import Batch, DataError, LSTMStack, SeqkitError, SequenceModel, Spec
from seqkit.testing import check_datamodule, check_head, isolated_registry
from seqkit_video import (Clip3DCNN, EditScore, FrameCNN, PerFrameHead, SegmentF1, TorchvisionFrames, VideoBatch,
                          VideoClipData, VideoSpec)
from seqkit_video.data import cut_windows
from seqkit_video.io import read_frame_folder, read_video
from seqkit_video.segments import edit_score, f1_counts, segments
from seqkit_video.synthetic import LABELS, generate_clips

RNG = np.random.default_rng(0)


# -- tiny clips made here ------------------------------------------------------------------------
def _frames(labels: list[str], size=(8, 8)) -> np.ndarray:
    """(T, H, W) uint8 frames whose brightness tells the label: dark ~30, bright ~220."""
    base = np.array([30 if label == "dark" else 220 for label in labels], dtype=np.float64)
    noise = RNG.normal(0, 8, size=(len(labels), *size))
    return np.clip(base[:, None, None] + noise, 0, 255).astype(np.uint8)


def _labels(n: int, first="dark") -> list[str]:
    other = "bright" if first == "dark" else "dark"
    cut = int(RNG.integers(3, n - 3))
    return [first] * cut + [other] * (n - cut)


def write_png_folder(folder, frames: np.ndarray, pattern="frame_{}.png") -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):  # unpadded numbers: frame_10 must still come after frame_9
        Image.fromarray(frame).save(folder / pattern.format(t))


def write_segments_csv(path, labels: list[str]) -> None:
    rows, start = [], 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            rows.append((start, t, labels[start]))
            start = t
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("start", "end", "label"), *rows])


def make_split(folder, n_frames=(14, 22, 18)) -> dict[str, list[str]]:
    """One clip of each form: a PNG folder (+ per-frame CSV), a .npy (T, C, H, W) (+ segment
    CSV) and a .pt (T, H, W) (+ JSON segments). Returns each clip's labels."""
    folder.mkdir(parents=True)
    truth = {}
    labels = _labels(n_frames[0])
    write_png_folder(folder / "a_png", _frames(labels))
    with open(folder / "a_png.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("frame", "label"), *enumerate(labels)])
    truth["a_png"] = labels
    labels = _labels(n_frames[1], "bright")
    np.save(folder / "b_npy.npy", _frames(labels)[:, None])  # (T, 1, H, W)
    write_segments_csv(folder / "b_npy.csv", labels)
    truth["b_npy"] = labels
    labels = _labels(n_frames[2])
    torch.save(torch.from_numpy(_frames(labels)), folder / "c_pt.pt")  # (T, H, W)
    cut = labels.index("bright")
    (folder / "c_pt.json").write_text(json.dumps({"segments": [
        {"start": 0, "end": cut, "label": "dark"}, {"start": cut, "end": len(labels), "label": "bright"}]}))
    truth["c_pt"] = labels
    return truth


@pytest.fixture
def clip_dir(tmp_path):
    truth = {split: make_split(tmp_path / "clips" / split) for split in ("train", "val", "test")}
    return tmp_path / "clips", truth


# -- the three input forms -----------------------------------------------------------------------
def test_three_input_forms_read_with_their_labels(clip_dir):
    root, truth = clip_dir
    data = VideoClipData(data_dir=str(root), window=8, overlap=2, loader={"batch_size": 4})
    data.setup("fit")
    spec = data.spec
    assert isinstance(spec, VideoSpec) and spec.input_kind == "frames" and spec.frame_shape == [1, 8, 8]
    assert spec.labels == ["bright", "dark"] and (spec.window, spec.overlap) == (8, 2)
    # every clip is read whole, in frame order, with its own labels
    clips = {name: (frames, targets, numbers) for frames, targets, name, numbers in data.val_set.items}
    assert sorted(clips) == ["a_png", "b_npy", "c_pt"]
    for name, labels in truth["val"].items():
        frames, targets, numbers = clips[name]
        assert frames.shape == (len(labels), 1, 8, 8) and numbers.tolist() == list(range(len(labels)))
        assert [spec.labels[k] for k in targets.tolist()] == labels
        # brightness follows the label frame by frame, so frames were not reordered
        bright = frames.float().mean((1, 2, 3)) > 128
        assert bright.tolist() == [label == "bright" for label in labels]
    # training windows of 8 frames overlapping by 2 cover every frame of every clip
    covered = {name: set() for name in truth["train"]}
    for frames, _, name, numbers in data.train_set.items:
        assert len(frames) == len(numbers) <= 8
        covered[name].update(numbers.tolist())
    assert all(covered[name] == set(range(len(labels))) for name, labels in truth["train"].items())
    # a batch normalises the frames and keeps the clip names and frame numbers
    batch = next(iter(data.val_dataloader()))
    assert isinstance(batch, VideoBatch) and sorted(batch.names) == ["a_png", "b_npy", "c_pt"]
    assert batch.inputs.dtype == torch.float32 and abs(float(batch.inputs[batch.frame_numbers >= 0].mean())) < 0.5
    assert (batch.frame_numbers[batch.targets == -100] == -1).all()


def test_png_frames_are_exact_and_naturally_ordered(tmp_path):
    frames = RNG.integers(0, 256, size=(12, 5, 7), dtype=np.uint8)
    write_png_folder(tmp_path / "clip", frames)
    got = read_frame_folder(str(tmp_path / "clip"))  # (T, 1, H, W)
    assert got.shape == (12, 1, 5, 7)
    assert np.array_equal(got[:, 0].numpy(), frames)  # frame_10.png after frame_9.png


def test_jpeg_rgb_frames_read_as_three_channels(tmp_path):
    frames = np.zeros((3, 6, 10, 3), dtype=np.uint8)
    frames[..., 0] = 200  # red
    write_png_folder(tmp_path / "clip", frames, pattern="img{:03d}.jpg")
    got = read_frame_folder(str(tmp_path / "clip"))
    assert got.shape == (3, 3, 6, 10)
    assert (got[:, 0].float().mean() - 200).abs() < 8 and got[:, 2].float().mean() < 8


def test_resize_stride_and_channels(tmp_path):
    root = tmp_path / "clips"
    truth = make_split(root / "train", n_frames=(14, 21, 18))
    data = VideoClipData(data_dir=str(root), frame_size=[4, 6], channels=3, frame_stride=2, window=0)
    spec = data.spec
    assert spec.frame_shape == [3, 4, 6] and spec.input_size == 3 * 4 * 6
    clips = {name: (frames, targets, numbers) for frames, targets, name, numbers in data.dataset("train").items}
    frames, targets, numbers = clips["b_npy"]
    assert frames.shape == (11, 3, 4, 6)  # ceil(21 / 2) frames
    assert [spec.labels[k] for k in targets.tolist()] == truth["b_npy"][::2]
    assert numbers.tolist() == list(range(0, 21, 2))  # predictions keep the original frame numbers


@pytest.mark.skipif(importlib.util.find_spec("av") is None and importlib.util.find_spec("torchvision") is None,
                    reason="neither PyAV nor torchvision is installed: no video decoder to test")
def test_video_file_is_decoded(tmp_path):
    av = pytest.importorskip("av", reason="writing the test video needs PyAV")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for t in range(6):
            img = np.full((16, 16, 3), 40 * t, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    frames = read_video(str(path))
    assert frames.shape == (6, 3, 16, 16)
    assert frames.float().mean((1, 2, 3)).diff().gt(0).all()  # brightness rises frame by frame


def test_video_file_without_decoder_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # None in sys.modules: the import fails
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.io", None)
    root = tmp_path / "clips" / "train"
    root.mkdir(parents=True)
    (root / "walk.mp4").write_bytes(b"\x00" * 64)
    (root / "walk.csv").write_text("label\nx\n")
    with pytest.raises(DataError, match=r"walk\.mp4: cannot decode video files: neither PyAV nor torchvision.*seqkit-video\[video\]"):
        VideoClipData(data_dir=str(tmp_path / "clips")).spec


# -- bad input -----------------------------------------------------------------------------------
def _bad_missing_frame(d):
    write_png_folder(d / "clip", _frames(["dark"] * 4))
    (d / "clip" / "frame_2.png").unlink()
    (d / "clip.csv").write_text("label\n" + "dark\n" * 3)
    return r"clip: frame 2 is missing"


def _bad_corrupt_frame(d):
    write_png_folder(d / "clip", _frames(["dark"] * 4))
    (d / "clip" / "frame_1.png").write_bytes(b"not a png at all")
    (d / "clip.csv").write_text("label\n" + "dark\n" * 4)
    return r"clip/frame_1\.png: cannot read frame image"


def _bad_label_count(d):
    np.save(d / "clip.npy", _frames(["dark"] * 5))
    (d / "clip.csv").write_text("label\n" + "dark\n" * 4)
    return r"clip\.csv: 4 labels for 5 frames"


def _bad_segment_gap(d):
    np.save(d / "clip.npy", _frames(["dark"] * 10))
    (d / "clip.csv").write_text("start,end,label\n0,4,dark\n5,10,bright\n")
    return r"clip\.csv:3: frames 4\.\.4 have no label"


def _bad_frame_sizes(d):
    write_png_folder(d / "clip", _frames(["dark"] * 3))
    Image.fromarray(_frames(["dark"], size=(6, 8))[0]).save(d / "clip" / "frame_3.png")
    (d / "clip.csv").write_text("label\n" + "dark\n" * 4)
    return r"clip/frame_3\.png: frame is 8x6 but frame_0\.png is 8x8"


def _bad_empty_folder(d):
    (d / "clip").mkdir()
    (d / "clip.csv").write_text("label\n")
    return r"clip: empty clip"


def _bad_empty_array(d):
    np.save(d / "clip.npy", np.zeros((0, 8, 8), dtype=np.uint8))
    (d / "clip.csv").write_text("label\n")
    return r"clip\.npy: empty clip"


def _bad_labels_without_clip(d):
    np.save(d / "clip.npy", _frames(["dark"] * 3))
    (d / "clip.csv").write_text("label\n" + "dark\n" * 3)
    (d / "other.json").write_text('["dark"]')
    return r"other\.json: labels for clip 'other', but"


def _bad_clip_without_labels(d):
    np.save(d / "clip.npy", _frames(["dark"] * 3))
    return r"clip\.npy: no labels; add clip\.csv or clip\.json"


BAD = [_bad_missing_frame, _bad_corrupt_frame, _bad_label_count, _bad_segment_gap, _bad_frame_sizes,
       _bad_empty_folder, _bad_empty_array, _bad_labels_without_clip, _bad_clip_without_labels]


@pytest.mark.parametrize("make", BAD, ids=[f.__name__[5:] for f in BAD])
def test_bad_input_names_the_file(make, tmp_path):
    train = tmp_path / "clips" / "train"
    train.mkdir(parents=True)
    expected = make(train)
    with pytest.raises(DataError, match=expected):
        VideoClipData(data_dir=str(tmp_path / "clips")).setup("fit")


def test_cli_prints_bad_frame_as_one_line(tmp_path):
    train = tmp_path / "clips" / "train"
    train.mkdir(parents=True)
    _bad_corrupt_frame(train)
    proc = run_seqkit("fit", "--config", str(CONFIGS / "video.yaml"), f"--data.init_args.data_dir={tmp_path / 'clips'}",
                      *logger_args(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("seqkit: error: ") and "frame_1.png: cannot read frame image" in last, proc.stderr[-2000:]


def test_torchvision_encoder_explains_when_torchvision_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    spec = VideoSpec(num_classes=2, labels=["a", "b"], frame_shape=[3, 16, 16])
    with pytest.raises(SeqkitError, match="TorchvisionFrames needs torchvision, which is not installed.*FrameCNN or Clip3DCNN"):
        TorchvisionFrames(spec)


def test_frame_encoders_and_head_refuse_data_that_is_not_video():
    spec = Spec(input_kind="features", input_size=4, num_classes=2, labels=["a", "b"], source="SequenceArrayData")
    for encoder in (FrameCNN, Clip3DCNN):
        with pytest.raises(SeqkitError, match=f"{encoder.__name__} needs video frames from data giving a VideoSpec.*"
                                              "SequenceArrayData gives a Spec"):
            encoder(spec)
    import seqkit_video.plugin

    with isolated_registry(seqkit_video.plugin), pytest.raises(
            SeqkitError, match="PerFrameHead needs data giving a VideoSpec, but SequenceArrayData gives a Spec; "
                               "data modules that fit: VideoClipData"):
        SequenceModel(head=PerFrameHead, spec=spec)


# -- masking ---------------------------------------------------------------------------------------
def _model(encoder, bidirectional: bool, window: int, overlap: int, **head_args) -> SequenceModel:
    spec = VideoSpec(input_size=64, num_classes=3, labels=["x", "y", "z"], frame_shape=[1, 8, 8], window=window,
                     overlap=overlap)
    torch.manual_seed(0)
    model = SequenceModel(head=partial(PerFrameHead, **head_args),
                          rnn=lambda n: LSTMStack(n, hidden_size=8, bidirectional=bidirectional),
                          encoder=lambda s: encoder(s, channels=4, depth=2, output_size=8), spec=spec)
    return model.eval()


def _log_probs(model, batch):
    return model.head.clip_log_probs(model.encode(batch), batch, model.encode)


def _val_loss(model, batch):
    return model.head.loss(model.encode(batch), batch, "val", model.encode)


@pytest.mark.parametrize("encoder", [FrameCNN, Clip3DCNN])
@pytest.mark.parametrize("bidirectional", [True, False], ids=["offline", "streaming"])
@pytest.mark.parametrize("window", [0, 4], ids=["whole", "windows"])
def test_padding_does_not_change_predictions(encoder, bidirectional, window):
    model = _model(encoder, bidirectional, window, overlap=1 if window else 0)
    short, long = torch.randn(5, 1, 8, 8), torch.randn(11, 1, 8, 8)
    alone = Batch(inputs=short[None], lengths=torch.tensor([5]), targets=torch.zeros(1, 5, dtype=torch.long))
    padded = torch.zeros(2, 11, 1, 8, 8)
    padded[0, :5], padded[1] = short, long
    padded[0, 5:] = 9.0  # garbage in the padding must not leak into the short clip
    both = Batch(inputs=padded, lengths=torch.tensor([5, 11]), targets=torch.zeros(2, 11, dtype=torch.long))
    with torch.no_grad():
        p_alone = _log_probs(model, alone)[0]
        p_both = _log_probs(model, both)
    assert torch.allclose(p_alone, p_both[0, :5], atol=1e-5)
    # the loss counts real frames only: a batch's loss is the mean of its clips' losses
    long_alone = Batch(inputs=long[None], lengths=torch.tensor([11]), targets=torch.zeros(1, 11, dtype=torch.long))
    with torch.no_grad():
        losses = [_val_loss(model, b) for b in (alone, long_alone, both)]
    assert float(losses[2]) == pytest.approx(float((losses[0] + losses[1]) / 2), abs=1e-5)


def test_streaming_carries_the_state_from_window_to_window():
    """A unidirectional stack streams by default: each window starts from the state the previous
    one ended in, so with a per-frame encoder it labels exactly as one pass over the whole clip.
    Stitching (streaming: false) starts every window from zeros and differs."""
    clips = torch.randn(2, 13, 1, 8, 8)
    batch = Batch(inputs=clips, lengths=torch.tensor([13, 9]))
    streamed = _model(FrameCNN, False, window=4, overlap=1)
    assert streamed.head.streams(streamed.encode(batch))
    whole = _model(FrameCNN, False, window=0, overlap=0)
    stitched = _model(FrameCNN, False, window=4, overlap=1, streaming=False)
    with torch.no_grad():
        want = _log_probs(whole, batch)
        got = _log_probs(streamed, batch)
        other = _log_probs(stitched, batch)
    for b, n in enumerate([13, 9]):
        torch.testing.assert_close(got[b, :n], want[b, :n], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(other[b, :n], want[b, :n], atol=1e-4)
    # a bidirectional stack stitches by default and refuses to stream
    bi = _model(FrameCNN, True, window=4, overlap=1)
    assert not bi.head.streams(bi.encode(batch))
    forced = _model(FrameCNN, True, window=4, overlap=1, streaming=True)
    with pytest.raises(SeqkitError, match="streaming: true .* needs a unidirectional stack"):
        _log_probs(forced, batch)


def test_windows_cover_clips_on_the_stitching_grid():
    assert cut_windows([10, 4, 30], window=8, overlap=2) == [
        (0, 0, 8), (0, 6, 10), (1, 0, 4), (2, 0, 8), (2, 6, 14), (2, 12, 20), (2, 18, 26), (2, 24, 30)]


# -- segment metrics, against values worked out by hand ---------------------------------------------
def test_segments_are_half_open_runs():
    assert segments([0, 0, 1, 1, 1, 2]) == [(0, 0, 2), (1, 2, 5), (2, 5, 6)]
    assert segments([0, 0, 1, 1, 0], background=[0]) == [(1, 2, 4)]


def test_edit_score_by_hand():
    # segments a b c vs a b c: nothing to edit
    assert edit_score([0, 0, 1, 1, 1, 2], [0, 0, 0, 1, 2, 2]) == 1.0
    # predicted a b a b vs true a b: two insertions over max(4, 2) segments -> 1 - 2/4
    assert edit_score([0, 1, 0, 1], [0, 0, 1, 1]) == 0.5
    # predicted a c b vs true a b: one insertion over 3 -> 2/3
    assert edit_score([0, 2, 1], [0, 1, 1]) == pytest.approx(2 / 3)
    # background segments are not counted: a _ b vs a b -> 1.0
    assert edit_score([0, 3, 1], [0, 1, 1], background=[3]) == 1.0


def test_segment_f1_by_hand():
    pred, true = [0, 0, 1, 1, 1, 2], [0, 0, 0, 1, 2, 2]
    # IoU of a: [0,2) vs [0,3) = 2/3; b: [2,5) vs [3,4) = 1/3; c: [5,6) vs [4,6) = 1/2
    assert f1_counts(pred, true, 0.1) == (3, 0, 0)
    assert f1_counts(pred, true, 0.25) == (3, 0, 0)
    assert f1_counts(pred, true, 0.5) == (2, 1, 1)  # b misses
    assert f1_counts(pred, true, 0.7) == (0, 3, 3)
    # two predicted segments of a over one true a: the second is a false positive
    assert f1_counts([0, 0, 1, 0, 0], [0, 0, 0, 0, 0], 0.1) == (1, 2, 0)


def test_segment_metrics_accumulate_over_clips_like_ms_tcn():
    preds = torch.tensor([[0, 0, 1, 1, 1, 2], [0, 1, 0, 1, 0, 0]])
    target = torch.tensor([[0, 0, 0, 1, 2, 2], [0, 0, 1, 1, -100, -100]])
    lengths = torch.tensor([6, 4])
    edit, f1 = EditScore(), SegmentF1(0.5)
    edit.update(preds, target, lengths)
    f1.update(preds, target, lengths)
    # edit: clip 1 -> 1.0, clip 2 -> 0.5; averaged over clips
    assert edit.compute().item() == pytest.approx(0.75)
    # clip 1 at 0.5: tp 2, fp 1, fn 1; clip 2 (a b a b vs a b): a [0,1) vs [0,2) IoU 1/2 tp, b [1,2) vs
    # [2,4) IoU 0 fp, a [2,3) fp (a already matched), b [3,4) vs [2,4) IoU 1/2 tp -> tp 2, fp 2, fn 0.
    # summed: tp 4, fp 3, fn 1 -> precision 4/7, recall 4/5, F1 = 2PR/(P+R) = 2/3
    assert f1.compute().item() == pytest.approx(2 / 3)


# -- generated data and the CLI end to end -----------------------------------------------------------
def test_generated_clips_are_seeded_and_change_label_within_a_clip():
    a, b = generate_clips(6, 40, 60, 32, seed=3), generate_clips(6, 40, 60, 32, seed=3)
    assert all(np.array_equal(x[1], y[1]) and x[2] == y[2] for x, y in zip(a, b))
    assert all(40 <= len(labels) <= 60 and len(set(labels)) >= 2 for _, _, labels in a)
    assert set(label for _, _, labels in a for label in labels) <= set(LABELS)


def test_fit_then_predict_writes_per_frame_csv_and_timeline(clip_dir, tmp_path):
    root, truth = clip_dir
    common = [f"--data.init_args.data_dir={root}", "--data.init_args.window=8", "--data.init_args.overlap=2",
              "--data.init_args.loader.batch_size=4", "--model.encoder.init_args.channels=4", "--model.encoder.init_args.depth=2",
              "--model.encoder.init_args.output_size=16", "--model.rnn.init_args.hidden_size=16"]
    run_seqkit("fit", "--config", str(CONFIGS / "video.yaml"), *common, "--trainer.max_epochs=3",
               "--optimizer.init_args.lr=0.02", *logger_args(tmp_path / "fit"), cwd=tmp_path)
    rows = read_metrics(tmp_path / "fit")
    assert last_value(rows, "val_acc") >= 0.9  # brightness tells the label: easy once frames are read right
    for key in ("val_f1", "val_edit", "val_f1@10", "val_f1@25", "val_f1@50"):
        last_value(rows, key)
    ckpt = next((tmp_path / "fit").rglob("*.ckpt"))
    # predict on a folder of clips: one with labels, one without
    new = tmp_path / "new"
    new.mkdir()
    labels = _labels(15)
    np.save(new / "p_labelled.npy", _frames(labels))
    write_segments_csv(new / "p_labelled.csv", labels)
    write_png_folder(new / "q_unlabelled", _frames(_labels(9)))
    out = tmp_path / "preds.csv"
    run_seqkit("predict", "--ckpt_path", str(ckpt), f"--data.init_args.predict_dir={new}",
               f"--prediction.output={out}", "--trainer.logger=false", "--trainer.enable_progress_bar=false", cwd=tmp_path)
    with open(out, newline="") as fh:
        got = list(csv.DictReader(fh))
    by_clip = {}
    for r in got:
        by_clip.setdefault(r["clip"], []).append(r)
    assert sorted(by_clip) == ["p_labelled", "q_unlabelled"]
    assert [int(r["frame"]) for r in by_clip["p_labelled"]] == list(range(15))
    assert [r["true"] for r in by_clip["p_labelled"]] == labels
    assert len(by_clip["q_unlabelled"]) == 9 and all(r["true"] == "" for r in by_clip["q_unlabelled"])
    correct = sum(r["label"] == r["true"] for r in by_clip["p_labelled"])
    assert correct >= 13, by_clip["p_labelled"]
    with Image.open(tmp_path / "preds_timeline.png") as im:
        assert im.format == "PNG" and im.size[0] >= 500


# -- the contract checks of seqkit.testing -----------------------------------------------------------
def _predict_dir(folder) -> None:
    """A folder of clips to predict: one with a label file, one without."""
    folder.mkdir()
    labels = _labels(15)
    np.save(folder / "p_labelled.npy", _frames(labels))
    write_segments_csv(folder / "p_labelled.csv", labels)
    write_png_folder(folder / "q_unlabelled", _frames(_labels(9)))


def test_contract_checks_on_clip_files(clip_dir, tmp_path):
    root, _ = clip_dir
    _predict_dir(tmp_path / "new")
    kwargs = dict(data_dir=str(root), window=8, overlap=2, loader={"batch_size": 2})
    report = check_datamodule(VideoClipData, training_files=[str(root / "train"), str(root / "val")],
                              predict_kwargs={"predict_dir": str(tmp_path / "new")}, **kwargs)
    assert "predicts without training files" in report.passed
    encoder = partial(FrameCNN, channels=4, depth=2, output_size=8)
    streamed = check_head(PerFrameHead, VideoClipData(**kwargs), encoder=encoder)  # unidirectional: streams
    stitched = check_head(PerFrameHead, VideoClipData(**kwargs), encoder=encoder,
                          rnn=partial(LSTMStack, hidden_size=8, bidirectional=True))
    for r in (streamed, stitched):
        assert {"honours lengths", "ignores padded targets", "checkpoint round trip"} <= set(r.passed), str(r)


def test_contract_checks_on_generated_clips():
    kwargs = dict(num_train=6, num_val=3, num_test=2, min_frames=10, max_frames=20, frame_size=16, window=8, overlap=2,
                  loader={"batch_size": 3})
    check_datamodule(VideoClipData, **kwargs)
    check_head(PerFrameHead, VideoClipData(**kwargs), encoder=partial(Clip3DCNN, channels=4, depth=2, output_size=8))


def _test_overrides(config) -> list[str]:
    m = re.search(r"^# test-overrides:(.*)$", config.read_text(), flags=re.M)
    assert m, f"{config} has no '# test-overrides:' line"
    return m.group(1).split()


def test_predict_from_checkpoint_alone_once_training_clips_are_deleted(clip_dir, tmp_path, monkeypatch):
    """`seqkit predict --ckpt_path` with no --config rebuilds the data module from the checkpoint
    (labels, frame shape, normalisation) and never reads the training clips."""
    from seqkit.cli import main

    root, truth = clip_dir
    monkeypatch.chdir(tmp_path)
    config = CONFIGS / "video.yaml"
    main(["fit", "--config", str(config), *_test_overrides(config), f"--data.init_args.data_dir={root}",
          "--data.init_args.loader.batch_size=4", "--trainer.max_steps=1", *logger_args(tmp_path / "fit")])
    ckpt = next((tmp_path / "fit").rglob("*.ckpt"))
    predict = ["predict", "--ckpt_path", str(ckpt), "--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    main([*predict, f"--prediction.output={tmp_path / 'before.csv'}"])
    shutil.rmtree(root / "train")
    shutil.rmtree(root / "val")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_seqkit(*predict, f"--prediction.output={tmp_path / 'after.csv'}", cwd=elsewhere)
    before, after = (tmp_path / "before.csv").read_text(), (tmp_path / "after.csv").read_text()
    assert after == before
    rows = list(csv.DictReader(before.splitlines()))
    assert {r["clip"] for r in rows} == set(truth["test"]) and len(rows) == sum(map(len, truth["test"].values()))


def test_batchnorm_frames_ignore_padding_in_training():
    """norm: batch takes its batch statistics from real frames only: what padding holds changes
    nothing, also in training mode."""
    spec = VideoSpec(input_size=64, num_classes=3, labels=["x", "y", "z"], frame_shape=[1, 8, 8])
    torch.manual_seed(0)
    enc = FrameCNN(spec, channels=4, depth=2, output_size=8, norm="batch").train()
    x = torch.randn(2, 5, 1, 8, 8)
    lengths = torch.tensor([5, 3])
    garbage = x.clone()
    garbage[1, 3:] = 1e3
    a, b = enc(x, lengths), enc(garbage, lengths)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1, :3], b[1, :3])
