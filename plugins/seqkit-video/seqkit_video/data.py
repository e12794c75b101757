"""The video data module: clips with a label for every frame.

By default the clips are generated on the fly (seeded; :mod:`seqkit_video.synthetic`), so
nothing is shipped or downloaded. With ``data_dir`` it reads your own clips instead, laid out as

    data_dir/
      train/   clip_a/000.png 001.png ...   clip_a.csv     (a folder of frames + its labels)
               clip_b.npy                   clip_b.json    (an array (T, C, H, W) or (T, H, W))
               clip_c.mp4                   clip_c.csv     (a video, with PyAV or torchvision)
               clip_d/000.png ... labels.csv               (the labels inside the frame folder)
      val/     ...
      test/    ...

or in the other layouts datasets ship in: a labels folder apart from the clips (``labels_dir``,
with or without train/val/test subfolders), per-split folders anywhere (``train_path``,
``val_path``, ``test_path``), annotation lists (a CSV of ``clip_path,label_path``, JSON, or
MS-TCN's ``splits/*.bundle`` with ``groundTruth/*.txt`` and ``mapping.txt``) and precomputed
per-frame features, ``.npy`` arrays shaped (T, F) or (F, T) (the :class:`FeatureFrames` encoder
reads them). See :mod:`seqkit_video.io` for the formats and docs/video.md for examples. Frames are taken every ``frame_stride``
frames, converted to ``channels``, resized to ``frame_size`` and normalised with the training
set's per-channel mean and standard deviation (kept in checkpoints with the label names, so
predict needs only the checkpoint). Training uses windows of ``window`` frames overlapping by
``overlap``; evaluation and predict take whole clips, which the head cuts into the same windows
and stitches back.

Clips are held in memory (as uint8 when they are images or video) once read.
"""

from __future__ import annotations

import os
from typing import Literal, Optional, Union

import torch
import torch.nn.functional as F

from seqkit import Augment, DataError, Examples, SeqDataModule, pad
from seqkit_video.io import ClipSource, find_clips, read_clip, read_clip_list, read_labels
from seqkit_video.spec import IGNORE, VideoBatch, VideoSpec

Clip = tuple[str, torch.Tensor, Optional[list[str]]]  # name, (T, C, H, W) frames, labels (or None)


def cut_windows(lengths: list[int], window: int, overlap: int) -> list[tuple[int, int, int]]:
    """``(clip, start, end)`` windows of ``window`` frames, starting every ``window - overlap``
    frames; the last window of a clip may be shorter. The same grid the head stitches over."""
    out = []
    for k, T in enumerate(lengths):
        if not window or T <= window:
            out.append((k, 0, T))
            continue
        for s in range(0, T, window - overlap):
            if s == 0 or s + overlap < T:
                out.append((k, s, min(s + window, T)))
    return out


class VideoClipData(SeqDataModule):
    """Video clips with one label per frame: generated "swipe" clips, or your own clips."""

    spec_type = VideoSpec
    fitted = {"labels": list, "frame_shape": list, "mean": list, "std": list}

    def __init__(
        self,
        data_dir: Optional[str] = None,
        predict_dir: Optional[str] = None,
        train_path: Optional[str] = None,
        val_path: Optional[str] = None,
        test_path: Optional[str] = None,
        labels_dir: Optional[str] = None,
        mapping: Optional[str] = None,
        features: Literal["auto", "TF", "FT"] = "auto",
        frame_size: Optional[Union[int, list[int]]] = None,
        channels: Optional[int] = None,
        frame_stride: int = 1,
        window: int = 32,
        overlap: int = 8,
        labels: Optional[list[str]] = None,
        num_train: int = 400,
        num_val: int = 50,
        num_test: int = 100,
        min_frames: int = 48,
        max_frames: int = 96,
        augment: Augment = Augment(),
        **kwargs,
    ) -> None:
        """
        Args:
            data_dir: Folder with train/, val/ and test/ folders of clips and their label files;
                null (and no train_path) generates clips instead. With annotation lists, the
                folder their relative clip paths start from.
            predict_dir: Folder of clips (or an annotation list) for predict; label files are
                optional (when present, the output shows the true labels too). Default: the
                test clips.
            train_path: The training clips: a folder, or an annotation list - .csv with a
                header naming a clip column (clip, clip_path, video or path) and a labels column
                (labels, label_path, label or annotation), .json (a list of {"clip", "labels"}
                objects), or .bundle / .txt (one clip name per line, MS-TCN's splits). Default:
                data_dir/train.
            val_path: The validation clips, the same way. Default: data_dir/val.
            test_path: The test clips, the same way. Default: data_dir/test.
            labels_dir: Folder of the label files, named like their clips (<name>.csv, .json
                or .txt with one label per line), instead of next to the clips; when it has
                train/, val/ and test/ subfolders each split's labels are in its own. Label files
                that match no clip are an error (in a split's own labels folder) or a warning
                with their count (in a folder shared by the splits).
            mapping: MS-TCN's mapping.txt ("<index> <label>" per line): the label names in
                the model's output order (instead of ``labels``).
            features: How 2-D .npy/.pt feature arrays are laid out: "TF" (frames, features),
                "FT" (features, frames: I3D dumps), or "auto" (the axis whose length is the
                number of labels is time; for predict, the other axis matches the model's F).
            frame_size: Resize every frame to this size (an int for square frames, or
                [height, width]); null keeps the clips' size (then all clips must share it).
                Generated clips are frame_size pixels square (default 32).
            channels: Convert frames to 1 (grayscale) or 3 (RGB) channels; null keeps them
                (then all clips must have the same number).
            frame_stride: Keep every k-th frame (and its label); predictions are written with
                the original frame numbers.
            window: Frames per training window; longer clips are cut into windows and stitched
                back for evaluation and predict. 0 trains on whole clips.
            overlap: Frames shared by consecutive windows.
            labels: The label names, in the order of the model's outputs; default: the labels
                found in the training data, sorted (the generated data has its own six).
            num_train: Generated training clips.
            num_val: Generated validation clips.
            num_test: Generated test clips.
            min_frames: Shortest generated clip.
            max_frames: Longest generated clip.
            augment: Random transforms of training windows, the same for every frame of a
                window: flips, shifts, rotation, zoom, brightness, contrast, noise, and
                frame-rate and start/length jitter (which take the labels along). Off by default.
        """
        super().__init__(**kwargs)
        if isinstance(frame_size, int):
            frame_size = [frame_size, frame_size]
        if frame_size is not None and (len(frame_size) != 2 or min(frame_size) < 1):
            raise DataError(f"data.init_args.frame_size: expected a size or [height, width] of positive ints, got {frame_size}")
        if channels not in (None, 1, 3):
            raise DataError(f"data.init_args.channels: expected 1, 3 or null, got {channels}")
        if frame_stride < 1:
            raise DataError(f"data.init_args.frame_stride must be >= 1, got {frame_stride}")
        if window < 0 or (window and not 0 <= overlap < window):
            raise DataError(f"data.init_args.window must be >= 0 and data.init_args.overlap in [0, window) "
                            f"(got window {window}, overlap {overlap})")
        if not 1 <= min_frames <= max_frames:
            raise DataError(f"data.init_args.min_frames must be >= 1 and <= data.init_args.max_frames "
                            f"(got {min_frames} and {max_frames})")
        # folders are checked when they are read: a module restored from a checkpoint to predict
        # must not need its training clips
        self.data_dir, self.predict_dir = data_dir, predict_dir
        self.paths = {"train": train_path, "val": val_path, "test": test_path}
        self.labels_dir, self.features = labels_dir, features
        if mapping is not None and labels:
            raise DataError("data.init_args.mapping and data.init_args.labels both give the label order; keep one")
        if mapping is not None:
            labels = _read_mapping(mapping)
        self.frame_size, self.channels, self.frame_stride = frame_size, channels, frame_stride
        self.window, self.overlap = window, overlap if window else 0
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.min_frames, self.max_frames = min_frames, max_frames
        self.label_order: Optional[list[str]] = list(labels) if labels else None
        self._cache: dict[str, list[Clip]] = {}
        self.augment_args = Augment(**augment) if isinstance(augment, dict) else augment

    @property
    def _generated(self) -> bool:
        """No data_dir and no train_path: the clips are generated."""
        return self.data_dir is None and self.paths["train"] is None

    # -- reading -------------------------------------------------------------------------------
    def _conform(self, frames: torch.Tensor) -> torch.Tensor:
        """Apply channels and frame_size to (T, C, H, W) frames (uint8 stays uint8)."""
        if self.channels == 1 and frames.shape[1] == 3:
            luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)  # ITU-R BT.601 weights
            gray = (frames.float() * luma).sum(1, keepdim=True)
            frames = gray.round().to(torch.uint8) if frames.dtype == torch.uint8 else gray
        elif self.channels == 3 and frames.shape[1] == 1:
            frames = frames.expand(-1, 3, -1, -1)
        if self.frame_size is not None and list(frames.shape[2:]) != list(self.frame_size):
            resized = F.interpolate(frames.float(), size=tuple(self.frame_size), mode="bilinear", antialias=True, align_corners=False)
            frames = resized.round().clamp(0, 255).to(torch.uint8) if frames.dtype == torch.uint8 else resized
        if frames.dtype != torch.uint8:
            frames = frames.float()
        return frames.contiguous()

    @staticmethod
    def _check_shape(frames: torch.Tensor, where: str, shape: list[int]) -> None:
        """Frames must have the model's (C, H, W), set by the first training clip."""
        if list(frames.shape[1:]) == list(shape):
            return
        C, H, W = shape
        c, h, w = frames.shape[1:]
        if c != C:
            raise DataError(f"{where}: frames have {c} channel(s) but the model's (set by the first training clip) have {C}; "
                            "set data.init_args.channels to convert them")
        raise DataError(f"{where}: frames are {h}x{w} but the model's (set by the first training clip) are {H}x{W}; "
                        "set data.init_args.frame_size to resize all clips")

    def _features(self, src: ClipSource, data: torch.Tensor) -> tuple[torch.Tensor, Optional[list[str]]]:
        """(T, F, 1, 1) frames of a 2-D feature array, oriented by ``features``, and its labels."""
        a, b = data.shape
        if self.features == "auto":
            F_model = self.frame_shape[0] if self.frame_shape else None
            fits = []
            for t, layout in ((a, "TF"), (b, "FT")):
                if src.labels is not None:
                    try:
                        fits.append((layout, read_labels(src.labels, t)))
                    except DataError:
                        continue
                elif F_model is not None and (b if layout == "TF" else a) == F_model:
                    fits.append((layout, None))
            if len(fits) != 1 or (a == b):
                what = (f"{src.labels} fits neither axis" if not fits and src.labels else
                        "both axes fit" if fits else "there are no labels to tell which axis is time")
                raise DataError(f"{src.path}: a {a}x{b} feature array, and {what}; set data.init_args.features "
                                "to TF (frames, features) or FT (features, frames)")
            layout, labels = fits[0]
        else:
            layout = self.features
            labels = read_labels(src.labels, a if layout == "TF" else b) if src.labels else None
        x = data if layout == "TF" else data.t()
        return x.contiguous().view(x.shape[0], x.shape[1], 1, 1), labels

    def _sources(self, split: str) -> list[ClipSource]:
        """Where the clips of ``split`` are: a folder (labels next to the clips, inside frame
        folders, or in ``labels_dir``) or an annotation list."""
        if split == "predict":
            where, key = self.predict_dir, "predict_dir"
        else:
            where, key = self.paths[split], f"{split}_path"
            if where is None:
                if self.data_dir is None:
                    raise DataError(f"data.init_args.{split}_path: not set, and there is no data_dir to read {split}/ from")
                where, key = self._folder("data_dir", split), "data_dir"
        need = split != "predict"
        labels_dir, strict = self.labels_dir, True
        if labels_dir is not None:
            if not os.path.isdir(labels_dir):
                raise DataError(f"data.init_args.labels_dir: folder not found: {labels_dir}")
            own = os.path.join(labels_dir, split)
            labels_dir, strict = (own, True) if os.path.isdir(own) else (labels_dir, False)
        if os.path.isfile(where):
            return read_clip_list(where, need, clips_dir=self.data_dir, labels_dir=labels_dir)
        if not os.path.isdir(where):
            raise DataError(f"data.init_args.{key}: folder or clip list not found: {where}")
        if labels_dir is not None and split == "predict" and not os.path.isdir(os.path.join(self.labels_dir, "predict")):
            labels_dir = None  # predict clips carry their labels only next to them
        return find_clips(where, need, labels_dir, strict)

    def _read(self, split: str) -> list[Clip]:
        clips = []
        shape = self.frame_shape  # None only while fitting: then the first training clip sets it
        for src in self._sources(split):
            frames = read_clip(src)
            if frames.ndim == 2:
                frames, labels = self._features(src, frames)
            else:
                labels = read_labels(src.labels, frames.shape[0]) if src.labels else None
            s = self.frame_stride
            frames = self._conform(frames[::s]) if frames.shape[-2:] != (1, 1) else frames[::s].contiguous()
            shape = shape or list(frames.shape[1:])
            self._check_shape(frames, src.path, shape)
            clips.append((src.name, frames, labels[::s] if labels is not None else None))
        return clips

    def _generate(self, split: str) -> list[Clip]:
        from seqkit_video.synthetic import generate_clips

        size = self.frame_size[0] if self.frame_size else 32
        offset = {"train": 0, "val": 1, "test": 2}[split]
        raw = generate_clips(self.sizes[split], self.min_frames, self.max_frames, size, self.seed * 1000 + offset)
        s = self.frame_stride
        return [(name, self._conform(torch.from_numpy(frames[::s])), labels[::s]) for name, frames, labels in raw]

    def _folder(self, key: str, *parts: str) -> str:
        """The folder in argument ``key`` (data_dir, predict_dir), checked when it is first read."""
        root = getattr(self, key)
        if not os.path.isdir(root):
            raise DataError(f"data.init_args.{key}: folder not found: {root}")
        return os.path.join(root, *parts)

    def _clips(self, split: str) -> list[Clip]:
        if split not in self._cache:
            if split == "predict":
                self._cache[split] = self._read(split) if self.predict_dir is not None else self._clips("test")
            elif self._generated:
                self._cache[split] = self._generate(split)
            else:
                self._cache[split] = self._read(split)
        return self._cache[split]

    # -- the contract ----------------------------------------------------------------------------
    def fit_state(self) -> None:
        """Labels, frame shape and per-channel mean and spread, from the training clips."""
        train = self._clips("train")
        if not train:
            raise DataError(f"{self.paths['train'] or self._folder('data_dir', 'train')}: no clips")
        if self.label_order is not None:
            labels = list(self.label_order)
        elif self._generated:
            from seqkit_video.synthetic import LABELS

            labels = list(LABELS)
        else:
            labels = sorted({label for _, _, labels in train for label in labels})
        if len(labels) < 2:
            raise DataError(f"the training clips have fewer than two labels ({labels}); nothing to learn")
        if train[0][1].shape[-2:] == (1, 1) and self.augment_args.spatial:
            raise DataError("data.init_args.augment: flips, shifts, rotation, zoom, colour and noise are for images; "
                            "the clips are feature arrays (keep only speed and crop_time)")
        C = train[0][1].shape[1]
        total, sq, count = torch.zeros(C, dtype=torch.float64), torch.zeros(C, dtype=torch.float64), 0
        for _, frames, _ in train:
            x = frames.double() / (255.0 if frames.dtype == torch.uint8 else 1.0)
            total += x.sum((0, 2, 3))
            sq += (x * x).sum((0, 2, 3))
            count += x.numel() // C
        mean = total / count
        std = (sq / count - mean**2).clamp(min=0).sqrt().clamp(min=1e-3)  # flat frames: avoid dividing by 0
        self.labels, self.frame_shape = labels, list(train[0][1].shape[1:])
        self.mean, self.std = mean.tolist(), std.tolist()

    def build_spec(self) -> VideoSpec:
        return VideoSpec(
            input_size=int(torch.tensor(self.frame_shape).prod()),
            num_classes=len(self.labels),
            labels=list(self.labels),
            frame_shape=list(self.frame_shape),
            window=self.window,
            overlap=self.overlap,
        )

    def dataset(self, split: str) -> Examples:
        """Training windows (on the grid of :func:`cut_windows`) or whole clips, as items
        ``(frames (T, C, H, W), targets (T,), clip name, frame numbers (T,))``. Frames stay as
        read (uint8 for images and video; windows are views, not copies) until ``collate``
        normalises a batch."""
        index = {label: k for k, label in enumerate(self.labels)}
        clips = []
        for name, frames, labels in self._clips(split):
            if labels is None:
                targets = torch.full((frames.shape[0],), IGNORE, dtype=torch.long)
            else:
                unknown = sorted(set(labels) - set(index))
                if unknown:
                    raise DataError(f"{split} clip {name}: label(s) {unknown} are not among the model's labels "
                                    f"(from the training clips, data.init_args.labels or mapping: {', '.join(self.labels)})")
                targets = torch.tensor([index[label] for label in labels], dtype=torch.long)
            self._check_shape(frames, f"{split} clip {name}", self.frame_shape)
            clips.append((name, frames, targets, torch.arange(frames.shape[0]) * self.frame_stride))
        if split == "train":
            cuts = cut_windows([f.shape[0] for _, f, _, _ in clips], self.window, self.overlap)
        else:
            cuts = [(k, 0, c[1].shape[0]) for k, c in enumerate(clips)]
        return Examples([(clips[k][1][a:b], clips[k][2][a:b], clips[k][0], clips[k][3][a:b]) for k, a, b in cuts])

    def augment(self, examples: list) -> list:
        """Each training window replayed at a random speed and cut at a random start and length
        (labels and frame numbers follow), then transformed on the 0-1 pixel scale, one draw for
        all its frames."""
        aug = self.augment_args
        if not aug:
            return examples
        out = []
        for frames, targets, name, numbers in examples:
            if aug.temporal:
                index = aug.times(frames.shape[0])
                frames, targets, numbers = frames[index], targets[index], numbers[index]
            if aug.spatial:
                frames = aug.frames(frames.float() / 255.0 if frames.dtype == torch.uint8 else frames)
            out.append((frames, targets, name, numbers))
        return out

    def collate(self, examples: list) -> VideoBatch:
        """Pad and normalise a batch in one float tensor: each clip's (uint8) frames are copied
        into it once and normalised in place - no per-clip float copies."""
        mean = torch.tensor(self.mean).view(-1, 1, 1)  # (C, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        lengths = torch.tensor([x.shape[0] for x, _, _, _ in examples], dtype=torch.long)
        inputs = torch.zeros((len(examples), int(lengths.max()), *examples[0][0].shape[1:]))  # (B, T, C, H, W)
        for i, (x, _, _, _) in enumerate(examples):
            real = inputs[i, : x.shape[0]]
            real.copy_(x)  # uint8 -> float in the copy
            if x.dtype == torch.uint8:
                real.div_(255.0)
            real.sub_(mean).div_(std)  # padding stays 0: the mean after normalising
        targets, _ = pad([y for _, y, _, _ in examples], value=IGNORE)  # (B, T)
        numbers, _ = pad([n for _, _, _, n in examples], value=-1)  # (B, T)
        return VideoBatch(inputs=inputs, lengths=lengths, targets=targets, names=[n for _, _, n, _ in examples],
                          frame_numbers=numbers)


def _read_mapping(path: str) -> list[str]:
    """Label names in output order from MS-TCN's mapping.txt: "<index> <label>" per line."""
    try:
        with open(path, encoding="utf-8") as fh:
            rows = [(n, line.split()) for n, line in enumerate(fh, 1) if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"data.init_args.mapping: cannot read {path} ({exc})") from None
    out: dict[int, str] = {}
    for n, parts in rows:
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{n}: expected \"<index> <label>\" (MS-TCN's mapping.txt), found {' '.join(parts)!r}")
        if int(parts[0]) in out or parts[1] in out.values():
            raise DataError(f"{path}:{n}: index {parts[0]} or label {parts[1]!r} is given twice")
        out[int(parts[0])] = parts[1]
    if sorted(out) != list(range(len(out))):
        raise DataError(f"{path}: the indices must run 0..{len(out) - 1} without gaps, found {sorted(out)}")
    if len(out) < 2:
        raise DataError(f"{path}: fewer than two labels")
    return [out[k] for k in range(len(out))]
