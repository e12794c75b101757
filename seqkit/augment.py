"""Training-time augmentation for images and clips of frames: ``data.init_args.augment`` in YAML.

The geometric and photometric transforms are Kornia's (``kornia.augmentation``): they work on
batches of float tensors with the pinned torch (torchvision's v2 transforms would pin another
torch release) and draw one set of parameters for a whole clip when asked (``same_on_batch``),
which is what video needs: a clip flipped, shifted or darkened frame by frame would be a
different motion. Temporal jitter is an index resampling, done here. Kornia is imported only
when an augmentation is switched on; the plugins that use this module depend on it.

Data modules call :meth:`Augment.frames` and :meth:`Augment.times` from
:meth:`seqkit.SeqDataModule.augment`, which the loaders run on training batches only:
validation, test and predict never see it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Optional

import torch

from seqkit.errors import DataError


@dataclass
class Augment:
    """Random transforms applied to training examples, the same to every frame of a clip.

    Args:
        hflip: Probability of a horizontal flip. Leave 0 when left and right matter to the
            labels (a "left" motion, "left of" in a caption, digits and letters).
        shift: Largest translation, as a fraction of the width and of the height.
        rotate: Largest rotation, in degrees either way.
        scale: Largest zoom in or out: the size is multiplied by a factor in [1 - scale, 1 + scale].
        brightness: Largest brightness change, as a fraction (Kornia's ColorJitter).
        contrast: Largest contrast change, as a fraction.
        noise: Standard deviation of Gaussian pixel noise, on the 0-1 pixel scale (drawn anew
            for every frame).
        speed: Frame-rate resampling for clips: a factor in [1 - speed, 1 + speed]; frames (and
            their labels) are dropped or repeated to play the clip at that speed.
        crop_time: Random start and length within a clip: each training clip keeps a random run
            of at least (1 - crop_time) of its frames.
    """

    hflip: float = 0.0
    shift: float = 0.0
    rotate: float = 0.0
    scale: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    noise: float = 0.0
    speed: float = 0.0
    crop_time: float = 0.0

    def __post_init__(self) -> None:
        limits = {"hflip": 1.0, "shift": 1.0, "rotate": 180.0, "scale": 1.0, "brightness": 1.0, "contrast": 1.0,
                  "noise": math.inf, "speed": 1.0, "crop_time": 1.0}
        for f in fields(self):
            value, high = getattr(self, f.name), limits[f.name]
            if not (isinstance(value, (int, float)) and 0 <= value <= high) or (f.name in ("scale", "speed", "crop_time") and value >= 1):
                bound = f"[0, {high:g})" if f.name in ("scale", "speed", "crop_time") else f"[0, {high:g}]"
                raise DataError(f"data.init_args.augment.{f.name}: expected a number in {bound}, got {value!r}")
        self._pipelines: dict[bool, object] = {}

    @property
    def spatial(self) -> bool:
        """Whether any transform of the pixels is on."""
        return any((self.hflip, self.shift, self.rotate, self.scale, self.brightness, self.contrast, self.noise))

    @property
    def temporal(self) -> bool:
        """Whether frame-rate resampling or a random crop in time is on."""
        return bool(self.speed or self.crop_time)

    def __bool__(self) -> bool:
        return self.spatial or self.temporal

    def _build(self, same: bool):
        try:
            import kornia.augmentation as K
        except ImportError:
            raise DataError("data.init_args.augment needs Kornia: pip install kornia") from None
        steps = []
        if self.hflip:
            steps.append(K.RandomHorizontalFlip(p=self.hflip))
        if self.shift or self.rotate or self.scale:
            steps.append(K.RandomAffine(degrees=self.rotate, translate=(self.shift, self.shift) if self.shift else None,
                                        scale=(1 - self.scale, 1 + self.scale) if self.scale else None, p=1.0))
        if self.brightness or self.contrast:
            steps.append(K.ColorJitter(brightness=self.brightness, contrast=self.contrast, p=1.0))
        return K.AugmentationSequential(*steps, same_on_batch=same) if steps else (lambda x: x)

    def frames(self, frames: torch.Tensor, same: bool = True) -> torch.Tensor:
        """``frames`` (N, C, H, W) on the 0-1 scale: the frames of one clip, all transformed
        alike (noise apart), or with ``same=False`` a batch of images, each with its own draw."""
        if not self.spatial:
            return frames
        if same not in self._pipelines:
            self._pipelines[same] = self._build(same)
        with torch.no_grad():
            out = self._pipelines[same](frames.float())
            if self.noise:
                out = out + self.noise * torch.randn_like(out)
        return out

    def times(self, length: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The frame indices a clip of ``length`` frames is replayed with (all of them when
        temporal jitter is off)."""
        index = torch.arange(length)
        if self.crop_time and length > 1:
            keep = max(1, math.ceil(length * (1 - self.crop_time * torch.rand(1, generator=generator).item())))
            start = int(torch.randint(0, length - keep + 1, (1,), generator=generator))
            index = index[start:start + keep]
        if self.speed and len(index) > 1:
            rate = 1 + self.speed * (2 * torch.rand(1, generator=generator).item() - 1)
            steps = torch.arange(0, len(index), rate)
            index = index[steps.floor().long().clamp(max=len(index) - 1)]
        return index
