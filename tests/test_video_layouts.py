"""The folder layouts per-frame datasets ship in, each read with its labels and trained one step
through the real CLI: a labels folder apart from the clips (with and without split folders),
per-split paths, annotation lists (CSV, JSON), a labels.csv inside a frame folder, MS-TCN's
features/groundTruth/splits/mapping.txt, and (T, F) / (F, T) feature arrays. Label files that
match no clip are an error or a warning with their count, never silent."""

from __future__ import annotations

import csv
import json
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from conftest import CONFIGS, logger_args, run_seqkit
from seqkit import DataError, LSTMStack, SequenceModel
from seqkit_video import FeatureFrames, FrameCNN, PerFrameHead, VideoClipData

RNG = np.random.default_rng(1)
LENGTHS = {"train": (14, 20, 17), "val": (15, 18), "test": (16,)}


def _clip(n: int, split: str, k: int):
    """(T, 1, 8, 8) uint8 frames whose brightness tells each frame's label, and the labels."""
    cut = int(RNG.integers(3, n - 3))
    labels = ["dark"] * cut + ["bright"] * (n - cut)
    base = np.array([30 if label == "dark" else 220 for label in labels], dtype=np.float64)
    frames = np.clip(base[:, None, None] + RNG.normal(0, 8, (n, 8, 8)), 0, 255).astype(np.uint8)
    return f"{split}_{k}", frames[:, None], labels


def _clips():
    return {split: [_clip(n, split, k) for k, n in enumerate(ns)] for split, ns in LENGTHS.items()}


def _write_labels(path, labels) -> None:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("label",), *[(label,) for label in labels]])


def _png_folder(folder, frames) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for t, frame in enumerate(frames[:, 0]):
        Image.fromarray(frame).save(folder / f"{t:04d}.png")


# -- the layouts: each writes its files under root and returns data.init_args (and an encoder) --
def labels_dir_split(root, clips):
    """clips/<split>/*.npy and labels/<split>/*.csv."""
    for split, items in clips.items():
        (root / "clips" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for name, frames, labels in items:
            np.save(root / "clips" / split / f"{name}.npy", frames)
            _write_labels(root / "labels" / split / f"{name}.csv", labels)
    return {"data_dir": root / "clips", "labels_dir": root / "labels"}, None


def per_split_paths(root, clips):
    """Three folders anywhere, each with its clips and labels side by side."""
    args = {}
    for split, items in clips.items():
        folder = root / f"{split}_set_somewhere"
        folder.mkdir(parents=True)
        for name, frames, labels in items:
            np.save(folder / f"{name}.npy", frames)
            _write_labels(folder / f"{name}.csv", labels)
        args[f"{split}_path"] = folder
    return args, None


def annotation_csv(root, clips):
    """clips/ and anns/ with no naming rule, and train.csv / val.csv / test.csv lists."""
    args = {}
    (root / "videos").mkdir()
    (root / "anns").mkdir()
    for split, items in clips.items():
        rows = [("clip_path", "label_path")]
        for k, (name, frames, labels) in enumerate(items):
            np.save(root / "videos" / f"v{split}{k:03d}.npy", frames)
            _write_labels(root / "anns" / f"a{split}{k:03d}.csv", labels)
            rows.append((f"videos/v{split}{k:03d}.npy", f"anns/a{split}{k:03d}.csv"))
        with open(root / f"{split}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
        args[f"{split}_path"] = root / f"{split}.csv"
    return args, None


def annotation_json(root, clips):
    """A JSON list of {"clip", "labels"} per split; the clips are frame folders."""
    args = {}
    for split, items in clips.items():
        entries = []
        for name, frames, labels in items:
            _png_folder(root / "frames" / name, frames)
            (root / "labels").mkdir(exist_ok=True)
            (root / "labels" / f"{name}.json").write_text(json.dumps(labels))
            entries.append({"clip": f"frames/{name}", "labels": f"labels/{name}.json"})
        (root / f"{split}.json").write_text(json.dumps(entries))
        args[f"{split}_path"] = root / f"{split}.json"
    return args, None


def labels_inside_frame_folder(root, clips):
    """data/<split>/<clip>/0000.png ... labels.csv."""
    for split, items in clips.items():
        for name, frames, labels in items:
            _png_folder(root / "data" / split / name, frames)
            _write_labels(root / "data" / split / name / "labels.csv", labels)
    return {"data_dir": root / "data"}, None


def ms_tcn(root, clips):
    """MS-TCN's layout: features/*.npy (F, T), groundTruth/*.txt, splits/*.bundle, mapping.txt."""
    for folder in ("features", "groundTruth", "splits"):
        (root / folder).mkdir()
    (root / "mapping.txt").write_text("0 dark\n1 bright\n")
    args = {"data_dir": root / "features", "labels_dir": root / "groundTruth", "mapping": root / "mapping.txt"}
    for split, items in clips.items():
        names = []
        for name, frames, labels in items:
            feats = frames.reshape(len(labels), -1)[:, :12].astype(np.float32).T / 255.0  # (F=12, T)
            np.save(root / "features" / f"{name}.npy", feats)
            (root / "groundTruth" / f"{name}.txt").write_text("\n".join(labels) + "\n")
            names.append(f"{name}.txt")  # the bundles name the ground-truth files
        (root / "splits" / f"{split}.split1.bundle").write_text("\n".join(names) + "\n")
        args[f"{split}_path"] = root / "splits" / f"{split}.split1.bundle"
    return args, "FeatureFrames"


def features_tf(root, clips):
    """data/<split>/<clip>.npy of (T, F) features with <clip>.csv labels."""
    for split, items in clips.items():
        (root / "data" / split).mkdir(parents=True)
        for name, frames, labels in items:
            np.save(root / "data" / split / f"{name}.npy", frames.reshape(len(labels), -1)[:, :10].astype(np.float32))
            _write_labels(root / "data" / split / f"{name}.csv", labels)
    return {"data_dir": root / "data"}, "FeatureFrames"


LAYOUTS = [labels_dir_split, per_split_paths, annotation_csv, annotation_json, labels_inside_frame_folder, ms_tcn,
           features_tf]


def _module(args, **kw) -> VideoClipData:
    data = VideoClipData(**{k: str(v) for k, v in args.items()}, window=8, overlap=2, loader={"batch_size": 4}, **kw)
    data.setup("fit")
    return data


def _train_one_step(data: VideoClipData, encoder) -> None:
    """One real optimizer step on the module's training batches: the weights move."""
    if encoder == "FeatureFrames":
        def make_encoder(s):
            return FeatureFrames(s, output_size=8, dropout=0.1)
    else:
        def make_encoder(s):
            return FrameCNN(s, channels=4, depth=2, output_size=8)
    torch.manual_seed(0)
    model = SequenceModel(head=PerFrameHead, rnn=lambda n: LSTMStack(n, hidden_size=8, bidirectional=True),
                          encoder=make_encoder, spec=data.spec)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = pl.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_layout_reads_every_clip_with_its_labels_and_trains(layout, tmp_path):
    clips = _clips()
    args, encoder = layout(tmp_path, clips)
    data = _module(args)
    spec = data.spec
    assert sorted(spec.labels) == ["bright", "dark"]
    if layout is ms_tcn:
        assert spec.labels == ["dark", "bright"]  # mapping.txt's order, not sorted
    if encoder == "FeatureFrames":
        assert spec.frame_shape[1:] == [1, 1]
    val = list(data.val_set.items)
    assert len(val) == len(clips["val"])
    for (frames, targets, _, _), (_, raw, labels) in zip(sorted(val, key=lambda e: e[2]), clips["val"]):
        assert frames.shape[0] == len(labels)
        assert [spec.labels[k] for k in targets.tolist()] == labels
        # the clip's frames are in time order: brightness (or the first feature) follows the labels
        first = frames.float().flatten(1)[:, 0]
        assert ((first > first.mean()).tolist()) == [label == "bright" for label in labels]
    _train_one_step(data, encoder)


@pytest.mark.parametrize("layout", [labels_dir_split, ms_tcn], ids=lambda f: f.__name__)
def test_layout_trains_one_step_through_the_cli(layout, tmp_path):
    (tmp_path / "d").mkdir()
    args, encoder = layout(tmp_path / "d", _clips())
    flags = [f"--data.init_args.{k}={v}" for k, v in args.items()]
    if encoder == "FeatureFrames":
        flags += ["--model.encoder=FeatureFrames", "--model.encoder.init_args.output_size=8"]
    else:
        flags += ["--model.encoder.init_args.channels=4", "--model.encoder.init_args.output_size=8"]
    run_seqkit("fit", "--config", str(CONFIGS / "video.yaml"), *flags, "--data.init_args.window=8",
               "--data.init_args.overlap=2", "--model.rnn.init_args.hidden_size=8", "--trainer.max_steps=1",
               "--trainer.limit_val_batches=1", *logger_args(tmp_path), cwd=tmp_path)
    assert (tmp_path / "run" / "version_0" / "checkpoints" / "last.ckpt").is_file()


# -- labels that match no clip ------------------------------------------------------------------
def test_stray_label_file_in_a_split_labels_folder_is_an_error(tmp_path):
    args, _ = labels_dir_split(tmp_path, _clips())
    _write_labels(tmp_path / "labels" / "train" / "ghost.csv", ["dark"] * 5)
    _write_labels(tmp_path / "labels" / "train" / "ghost2.csv", ["dark"] * 5)
    with pytest.raises(DataError, match=r"ghost.csv.*no frame folder, array.*2 label files in .*match no clip"):
        _module(args)


def test_shared_labels_folder_warns_with_a_count(tmp_path):
    clips = _clips()
    args, _ = labels_dir_split(tmp_path, clips)
    for split in ("train", "val", "test"):  # one labels folder for all splits
        for f in (tmp_path / "labels" / split).iterdir():
            f.rename(tmp_path / "labels" / f.name)
        (tmp_path / "labels" / split).rmdir()
    with pytest.warns(UserWarning, match=r"3 of the 6 label files in .* match no clip in .*train"):
        _module(args)


def test_listed_clip_without_labels_names_the_line(tmp_path):
    args, _ = annotation_csv(tmp_path, _clips())
    with open(tmp_path / "train.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(("videos/missing.npy", "anns/atrain000.csv"))
    with pytest.raises(DataError, match=r"train.csv:5: clip not found"):
        _module(args)


def test_square_feature_array_asks_for_the_layout(tmp_path):
    clips = {split: [(n, f[:12, :, :, :], lab[:12]) for n, f, lab in items] for split, items in _clips().items()}
    for split, items in clips.items():
        (tmp_path / "data" / split).mkdir(parents=True)
        for name, frames, labels in items:
            np.save(tmp_path / "data" / split / f"{name}.npy", frames.reshape(12, -1)[:, :12].astype(np.float32))
            _write_labels(tmp_path / "data" / split / f"{name}.csv", labels)
    with pytest.raises(DataError, match=r"12x12 feature array.*set data.init_args.features"):
        _module({"data_dir": tmp_path / "data"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _module({"data_dir": tmp_path / "data"}, features="TF").spec.frame_shape == [12, 1, 1]


def test_mapping_names_the_bad_line(tmp_path):
    (tmp_path / "mapping.txt").write_text("0 dark\n1\n")
    with pytest.raises(DataError, match=r"mapping.txt:2: expected \"<index> <label>\""):
        VideoClipData(data_dir=str(tmp_path), mapping=str(tmp_path / "mapping.txt"))
