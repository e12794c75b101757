"""Image encoders for captioning: an image (B, 3, H, W) to a grid of region features (B, S, D).

S = H' x W' regions in row-major order, as in Show, Attend and Tell (Xu et al. 2015), where the
decoder attends over the "annotation vectors" of a CNN's last convolutional map; Show and Tell
(Vinyals et al. 2015) starts its decoder from their mean. ``self.grid`` holds (H', W') so the
attention can be drawn over the image.

``SmallImageCNN`` (the default) trains from scratch on a CPU. ``TorchvisionImageEncoder`` wraps a
torchvision backbone (ResNet and friends) and needs torchvision installed; weights are read from a
local file only - seqkit never downloads.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from seqkit import InputEncoder, SeqkitError, Spec
from seqkit_caption.spec import CaptionSpec


def _image_size(spec: Spec, default: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the data's images: a CaptionSpec's image_size, else ``default``."""
    return tuple(spec.image_size) if isinstance(spec, CaptionSpec) else default


def _coords(x: torch.Tensor) -> torch.Tensor:
    """Two channels holding each pixel's row and column in [-1, 1]: (B, 2, H, W)."""
    B, _, H, W = x.shape
    ys = torch.linspace(-1, 1, H, device=x.device, dtype=x.dtype).view(1, 1, H, 1).expand(B, 1, H, W)
    xs = torch.linspace(-1, 1, W, device=x.device, dtype=x.dtype).view(1, 1, 1, W).expand(B, 1, H, W)
    return torch.cat([ys, xs], 1)


class SmallImageCNN(InputEncoder):
    """A small convolutional encoder trained from scratch: stages of 3x3 conv, GroupNorm, ReLU and
    2x2 max-pooling, with the pixel coordinates fed to every stage (CoordConv, Liu et al. 2018) so
    that region features know where they are - captions like "left of" depend on it."""

    def __init__(self, spec: Spec, channels: list[int] = [32, 64, 128], groups: int = 8, dropout: float = 0.0) -> None:  # noqa: B006
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            channels: Output channels of each stage; every stage halves the height and width, so
                the grid is image_size / 2**len(channels) and D is the last number.
            groups: GroupNorm groups per stage (GroupNorm, not BatchNorm: per-example statistics
                give the same result on any batch split, so DDP matches one process).
            dropout: Dropout on the region features.
        """
        super().__init__(spec)
        if spec.input_kind != "image":
            raise SeqkitError(f"SmallImageCNN needs image inputs, but the data provides {spec.input_kind!r}")
        if not channels:
            raise SeqkitError("model.encoder.init_args.channels must list at least one stage")
        self.stages = nn.ModuleList()
        cin = spec.input_size or 3
        for cout in channels:
            g = groups if cout % groups == 0 else 1
            self.stages.append(nn.Sequential(
                nn.Conv2d(cin + 2, cout, 3, padding=1), nn.GroupNorm(g, cout), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            ))
            cin = cout
        self.dropout = nn.Dropout(dropout)
        self.output_size = channels[-1]
        H, W = _image_size(spec, (32, 32))
        self.grid = (H >> len(channels), W >> len(channels))
        if min(self.grid) < 1:
            raise SeqkitError(f"image_size {H}x{W} is too small for {len(channels)} stages (each halves it)")

    def forward(self, inputs, lengths=None):
        x = inputs.float()  # (B, 3, H, W)
        for stage in self.stages:
            x = stage(torch.cat([x, _coords(x)], 1))
        B, D, Hg, Wg = x.shape  # batch, channels, grid height, grid width
        self.grid = (Hg, Wg)
        return self.dropout(x.flatten(2).transpose(1, 2))  # (B, S=Hg*Wg, D)


class TorchvisionImageEncoder(InputEncoder):
    """A torchvision classification backbone cut before its pooling layer (needs torchvision)."""

    def __init__(self, spec: Spec, backbone: str = "resnet18", weights_file: Optional[str] = None, trainable: bool = True) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically).
            backbone: Name of a function in ``torchvision.models`` (resnet18, resnet50,
                mobilenet_v3_small, ...).
            weights_file: Local file with the backbone's state dict (for example ImageNet
                weights you downloaded yourself); null starts from random weights.
            trainable: false freezes the backbone (use with pretrained weights).
        """
        super().__init__(spec)
        try:
            import torchvision
        except ImportError:
            raise SeqkitError(
                "TorchvisionImageEncoder needs torchvision, which is not installed: run "
                "`pip install torchvision` (or `pip install seqkit-caption[torchvision]`), or use "
                "model.encoder.class_path: SmallImageCNN, which needs nothing more"
            ) from None
        factory = getattr(torchvision.models, backbone, None)
        if factory is None or not callable(factory):
            raise SeqkitError(f"model.encoder.init_args.backbone: torchvision.models has no {backbone!r} (try resnet18, resnet50)")
        net = factory(weights=None)
        if weights_file is not None:
            import os

            if not os.path.exists(weights_file):
                raise SeqkitError(f"model.encoder.init_args.weights_file: not found: {weights_file}")
            net.load_state_dict(torch.load(weights_file, map_location="cpu"))
        # keep the convolutional trunk: everything before global pooling and the classifier
        children = list(net.named_children())
        cut = next((i for i, (name, _) in enumerate(children) if name in ("avgpool", "fc", "classifier")), len(children))
        self.body = nn.Sequential(*(m for _, m in children[:cut]))
        if not trainable:
            self.body.requires_grad_(False)
        H, W = _image_size(spec, (224, 224))
        with torch.no_grad():
            probe = self.body(torch.zeros(1, 3, H, W))
        self.output_size = int(probe.shape[1])
        self.grid = (int(probe.shape[2]), int(probe.shape[3]))

    def forward(self, inputs, lengths=None):
        x = self.body(inputs.float())  # (B, D, H', W')
        self.grid = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2)  # (B, S, D)
