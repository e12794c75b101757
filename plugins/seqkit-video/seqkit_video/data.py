"""The video data module: clips with a label for every frame.

By default the clips are generated on the fly (seeded; :mod:`seqkit_video.synthetic`), so
nothing is shipped or downloaded. With ``data_dir`` it reads your own clips instead, laid out as

    data_dir/
      train/   clip_a/000.png 001.png ...   clip_a.csv     (a folder of frames + its labels)
               clip_b.npy                   clip_b.json    (an array (T, C, H, W) or (T, H, W))
               clip_c.mp4                   clip_c.csv     (a video, with PyAV or torchvision)
      val/     ...
      test/    ...

(see :mod:`seqkit_video.io` for the label formats). Frames are taken every ``frame_stride``
frames, converted to ``channels``, resized to ``frame_size`` and normalised with the training
set's per-channel mean and standard deviation (kept in checkpoints with the label names, so
predict needs only the checkpoint). Training uses windows of ``window`` frames overlapping by
``overlap``; evaluation and predict take whole clips, which the head cuts into the same windows
and stitches back.

Clips are held in memory (as uint8 when they are images or video) once read.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import torch
import torch.nn.functional as F

from seqkit import Augment, DataError, Examples, SeqDataModule, pad
from seqkit_video.io import find_clips, read_clip, read_labels
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
                null generates clips instead.
            predict_dir: Folder of clips for predict (label files optional: when present, the
                output shows the true labels too). Default: the test clips.
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
        self.frame_size, self.channels, self.frame_stride = frame_size, channels, frame_stride
        self.window, self.overlap = window, overlap if window else 0
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.min_frames, self.max_frames = min_frames, max_frames
        self.label_order: Optional[list[str]] = list(labels) if labels else None
        self._cache: dict[str, list[Clip]] = {}
        self.augment_args = Augment(**augment) if isinstance(augment, dict) else augment

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

    def _read(self, folder: str, need_labels: bool) -> list[Clip]:
        clips = []
        shape = self.frame_shape  # None only while fitting: then the first training clip sets it
        for src in find_clips(folder, need_labels):
            frames = read_clip(src)
            labels = read_labels(src.labels, frames.shape[0]) if src.labels else None
            s = self.frame_stride
            frames = self._conform(frames[::s])
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
                if self.predict_dir is not None:
                    self._cache[split] = self._read(self._folder("predict_dir"), need_labels=False)
                else:
                    self._cache[split] = self._clips("test")
            elif self.data_dir is None:
                self._cache[split] = self._generate(split)
            else:
                self._cache[split] = self._read(self._folder("data_dir", split), need_labels=True)
        return self._cache[split]

    # -- the contract ----------------------------------------------------------------------------
    def fit_state(self) -> None:
        """Labels, frame shape and per-channel mean and spread, from the training clips."""
        train = self._clips("train")
        if not train:
            raise DataError(f"{self._folder('data_dir', 'train')}: no clips")
        if self.label_order is not None:
            labels = list(self.label_order)
        elif self.data_dir is None:
            from seqkit_video.synthetic import LABELS

            labels = list(LABELS)
        else:
            labels = sorted({label for _, _, labels in train for label in labels})
        if len(labels) < 2:
            raise DataError(f"the training clips have fewer than two labels ({labels}); nothing to learn")
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
                    raise DataError(f"{split} clip {name}: label(s) {unknown} not seen in training (known: {', '.join(self.labels)})")
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
        mean = torch.tensor(self.mean).view(-1, 1, 1)  # (C, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        frames = [((x.float() / 255.0 if x.dtype == torch.uint8 else x.float()) - mean) / std for x, _, _, _ in examples]
        inputs, lengths = pad(frames, value=0.0)  # (B, T, C, H, W); 0 is the mean after normalising
        targets, _ = pad([y for _, y, _, _ in examples], value=IGNORE)  # (B, T)
        numbers, _ = pad([n for _, _, _, n in examples], value=-1)  # (B, T)
        return VideoBatch(inputs=inputs, lengths=lengths, targets=targets, names=[n for _, _, n, _ in examples],
                          frame_numbers=numbers)
