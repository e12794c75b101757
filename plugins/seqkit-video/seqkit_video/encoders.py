"""Frame encoders: a padded batch of clips (B, T, C, H, W) to per-frame features (B, T, D).

- :class:`FrameCNN`: a small 2D CNN applied to every frame on its own (the "CNN + LSTM" of
  Donahue et al. 2015, "Long-term Recurrent Convolutional Networks").
- :class:`Clip3DCNN`: a small 3D CNN whose kernels also span a few neighbouring frames, the
  3D-CNN front end of gesture recognisers (Molchanov et al. 2016, "Online Detection and
  Classification of Dynamic Hand Gestures with Recurrent 3D Convolutional Neural Networks").
- :class:`TorchvisionFrames`: any torchvision image classifier with its classifier removed,
  applied per frame; only when torchvision is installed.
- :class:`FeatureFrames`: precomputed per-frame features (I3D and the like, read from (T, F) or
  (F, T) arrays), with dropout and an optional projection - what action-segmentation models
  (MS-TCN, ASFormer) train on.

Padding frames never change the features of real frames: the 2D encoders only run on real
frames, and the 3D CNN zeroes padding after every layer, exactly as its zero padding at the end
of a shorter clip would. Normalisation is GroupNorm, per frame and per example, so it does not
depend on the batch (BatchNorm statistics would differ between DDP ranks and with padding).
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import nn

from seqkit import InputEncoder, SeqkitError, Spec, length_mask
from seqkit_video.spec import VideoSpec


def _frame_shape(spec: Spec, who: str) -> tuple[int, int, int]:
    """(C, H, W) of the frames, from a :class:`VideoSpec`."""
    if not isinstance(spec, VideoSpec) or len(spec.frame_shape) != 3:
        raise SeqkitError(
            f"model.encoder: {who} needs video frames from data giving a VideoSpec (VideoClipData), but "
            f"{spec.source or 'the data module'} gives a {type(spec).__name__} of {spec.input_kind!r} inputs"
        )
    C, H, W = spec.frame_shape
    return int(C), int(H), int(W)


def _real_frames(frames: torch.Tensor, lengths: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The real frames of a padded batch as (N, C, H, W), and the (B, T) mask that picked them."""
    B, T = frames.shape[:2]
    if lengths is None:
        return frames.reshape(B * T, *frames.shape[2:]), None
    mask = length_mask(lengths.to(frames.device), T)  # (B, T)
    return frames[mask], mask


def _scatter(features: torch.Tensor, mask: Optional[torch.Tensor], B: int, T: int) -> torch.Tensor:
    """(N, D) features of real frames back to (B, T, D), zeros on padding."""
    if mask is None:
        return features.view(B, T, -1)
    out = features.new_zeros(B, T, features.shape[-1])
    out[mask] = features
    return out


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":  # FrameCNN runs on real frames only, so padding never enters the statistics
        return nn.BatchNorm2d(channels)
    # groups of up to 8 channels; GroupNorm(1, C) would be LayerNorm over the whole frame
    return nn.GroupNorm(max(1, channels // 8), channels) if kind == "group" else nn.Identity()


class FrameCNN(InputEncoder):
    """A small 2D CNN applied to each frame: ``depth`` blocks of conv 3x3 -> norm -> ReLU -> 2x2
    max-pool, then a linear layer to ``output_size``."""

    def __init__(
        self,
        spec: Spec,
        channels: int = 16,
        depth: int = 3,
        growth: float = 2.0,
        kernel_size: int = 3,
        pool: Literal["flatten", "avg"] = "flatten",
        norm: Literal["group", "batch", "none"] = "group",
        output_size: int = 128,
        dropout: float = 0.0,
    ) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically); gives the frame shape.
            channels: Channels of the first conv block.
            depth: Number of conv blocks; each halves the frame's height and width.
            growth: Channel multiplier from one block to the next (2.0 doubles them).
            kernel_size: Side of the square conv kernels (odd).
            pool: "flatten" keeps where things are in the frame (needed to see motion);
                "avg" averages over the frame (fewer weights, position-blind).
            norm: "group" (GroupNorm per frame), "batch" (BatchNorm2d over the batch's real
                frames: often faster to train; under DDP set trainer.sync_batchnorm for the same
                statistics as one process) or "none".
            output_size: Size D of each frame's feature vector.
            dropout: Dropout on the frame features.
        """
        super().__init__(spec)
        C, H, W = _frame_shape(spec, "FrameCNN")
        if depth < 1 or channels < 1 or kernel_size % 2 == 0:
            raise SeqkitError(f"FrameCNN: depth and channels must be >= 1 and kernel_size odd (got {depth}, {channels}, {kernel_size})")
        if min(H, W) >> depth < 1:
            raise SeqkitError(f"FrameCNN: depth {depth} halves {H}x{W} frames below one pixel; use depth <= {min(H, W).bit_length() - 1}")
        layers: list[nn.Module] = []
        c_in = C
        for k in range(depth):
            c_out = max(1, round(channels * growth**k))
            layers += [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2), _norm(norm, c_out), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        if pool == "avg":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            flat = c_in
        else:
            layers.append(nn.Flatten())
            flat = c_in * (H >> depth) * (W >> depth)
        layers += [nn.Linear(flat, output_size), nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)
        self.output_size = output_size

    def forward(self, inputs: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, T = inputs.shape[:2]  # batch, frames; then C, H, W
        frames, mask = _real_frames(inputs, lengths)  # (N, C, H, W)
        return _scatter(self.net(frames), mask, B, T)  # (B, T, D)


class FeatureFrames(InputEncoder):
    """Precomputed per-frame features as they are (``output_size: 0``) or through one linear
    layer and ReLU, with dropout on the features first (Srivastava et al. 2014; MS-TCN drops
    whole feature channels: ``channel_dropout``)."""

    def __init__(self, spec: Spec, output_size: int = 0, dropout: float = 0.0, channel_dropout: float = 0.0) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically); frames must be (F, 1, 1)
                features (data.init_args with .npy arrays shaped (T, F) or (F, T)).
            output_size: Size of a linear projection (with ReLU) of each frame's features; 0
                keeps the F features.
            dropout: Dropout on each feature value.
            channel_dropout: Dropout of whole feature channels, the same for every frame of a
                clip (MS-TCN's Dropout2d on the input).
        """
        super().__init__(spec)
        C, H, W = _frame_shape(spec, "FeatureFrames")
        if (H, W) != (1, 1):
            raise SeqkitError(f"FeatureFrames needs per-frame feature arrays ((T, F) or (F, T) .npy files), "
                              f"but the frames are {C}x{H}x{W} images; use FrameCNN or Clip3DCNN")
        if output_size < 0 or not (0 <= dropout < 1 and 0 <= channel_dropout < 1):
            raise SeqkitError(f"FeatureFrames: output_size must be >= 0 and dropout, channel_dropout in [0, 1) "
                              f"(got {output_size}, {dropout}, {channel_dropout})")
        self.drop, self.channel_dropout = nn.Dropout(dropout), channel_dropout
        self.proj = nn.Sequential(nn.Linear(C, output_size), nn.ReLU()) if output_size else nn.Identity()
        self.output_size = output_size or C

    def forward(self, inputs: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = inputs.flatten(2)  # (B, T, F)
        if self.training and self.channel_dropout:
            keep = torch.rand(x.shape[0], 1, x.shape[2], device=x.device) >= self.channel_dropout
            x = x * keep / (1 - self.channel_dropout)
        out = self.proj(self.drop(x))
        if lengths is not None:  # padding stays zero
            out = out * length_mask(lengths.to(out.device), out.shape[1]).unsqueeze(-1)
        return out


class Clip3DCNN(InputEncoder):
    """A small 3D CNN: ``depth`` blocks of conv (k_t x 3 x 3) -> norm -> ReLU -> spatial 2x2
    max-pool, so each frame's feature sees ``1 + depth * (temporal_kernel - 1)`` frames; then a
    linear layer per frame to ``output_size``."""

    def __init__(
        self,
        spec: Spec,
        channels: int = 16,
        depth: int = 3,
        growth: float = 2.0,
        temporal_kernel: int = 3,
        causal: bool = False,
        norm: Literal["group", "none"] = "group",
        output_size: int = 128,
        dropout: float = 0.0,
    ) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically); gives the frame shape.
            channels: Channels of the first conv block.
            depth: Number of conv blocks; each halves the frame's height and width.
            growth: Channel multiplier from one block to the next.
            temporal_kernel: Frames each kernel spans (odd unless causal).
            causal: Look only at the current and past frames (for streaming with a
                unidirectional LSTM); otherwise the window is centred on the frame.
            norm: "group" (GroupNorm per frame) or "none".
            output_size: Size D of each frame's feature vector.
            dropout: Dropout on the frame features.
        """
        super().__init__(spec)
        C, H, W = _frame_shape(spec, "Clip3DCNN")
        if temporal_kernel < 1 or (not causal and temporal_kernel % 2 == 0):
            raise SeqkitError(f"Clip3DCNN: temporal_kernel must be >= 1 and odd unless causal (got {temporal_kernel})")
        if depth < 1 or min(H, W) >> depth < 1:
            raise SeqkitError(f"Clip3DCNN: depth must be between 1 and {min(H, W).bit_length() - 1} for {H}x{W} frames (got {depth})")
        self.causal, self.kt = causal, temporal_kernel
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        c_in = C
        for k in range(depth):
            c_out = max(1, round(channels * growth**k))
            self.convs.append(nn.Conv3d(c_in, c_out, (temporal_kernel, 3, 3), padding=(0, 1, 1)))
            self.norms.append(_norm(norm, c_out))
            c_in = c_out
        self.pool = nn.MaxPool2d(2)
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(c_in * (H >> depth) * (W >> depth), output_size), nn.ReLU(), nn.Dropout(dropout))
        self.output_size = output_size

    def forward(self, inputs: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, T, C, H, W = inputs.shape
        keep = None
        if lengths is not None:
            keep = length_mask(lengths.to(inputs.device), T).to(inputs.dtype)[:, None, :, None, None]  # (B, 1, T, 1, 1)
        x = inputs.transpose(1, 2)  # (B, C, T, H, W)
        pad = (self.kt - 1, 0) if self.causal else (self.kt // 2, self.kt // 2)
        for conv, norm in zip(self.convs, self.norms):
            if keep is not None:
                x = x * keep  # padding frames read as zeros, like the zero padding after a short clip
            x = conv(nn.functional.pad(x, (0, 0, 0, 0, *pad)))  # (B, C', T, H', W')
            Bc, Cc, Tc, Hc, Wc = x.shape
            x = x.transpose(1, 2).reshape(B * T, Cc, Hc, Wc)  # per-frame norm and pooling
            x = self.pool(torch.relu(norm(x)))
            x = x.view(B, T, Cc, Hc // 2, Wc // 2).transpose(1, 2)  # (B, C', T, H'/2, W'/2)
        feats = self.proj(x.transpose(1, 2).reshape(B * T, -1)).view(B, T, -1)  # (B, T, D)
        if keep is not None:
            feats = feats * keep.view(B, T, 1)
        return feats


class TorchvisionFrames(InputEncoder):
    """A torchvision image model (``resnet18``, ``mobilenet_v3_small``, ...) applied to each
    frame, its classifier removed. Needs torchvision; weights come from a local file only."""

    def __init__(
        self,
        spec: Spec,
        backbone: str = "resnet18",
        weights_path: Optional[str] = None,
        freeze: bool = False,
        dropout: float = 0.0,
    ) -> None:
        """
        Args:
            spec: Sizes from the data module (linked automatically); gives the frame shape.
            backbone: Name of a model builder in ``torchvision.models``.
            weights_path: A state dict saved from that model (``torch.save(model.state_dict())``);
                null starts from random weights. seqkit never downloads weights.
            freeze: Keep the backbone's weights fixed (train only the LSTM and head).
            dropout: Dropout on the frame features.
        """
        super().__init__(spec)
        C, H, W = _frame_shape(spec, "TorchvisionFrames")
        try:
            import torchvision
        except ImportError:
            raise SeqkitError(
                "model.encoder: TorchvisionFrames needs torchvision, which is not installed; install it "
                "(`pip install torchvision`, matching your torch) or use FrameCNN or Clip3DCNN"
            ) from None
        builder = getattr(torchvision.models, backbone, None)
        if builder is None or not callable(builder) or backbone.startswith("_"):
            names = ", ".join(sorted(torchvision.models.list_models(module=torchvision.models)))
            raise SeqkitError(f"model.encoder.init_args.backbone: unknown torchvision model {backbone!r}; choices: {names}")
        model = builder(weights=None)
        if weights_path is not None:
            from seqkit import require_file

            state = torch.load(require_file(weights_path, "model.encoder.init_args.weights_path"), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        self.output_size = _strip_classifier(model, backbone)
        if freeze:
            model.requires_grad_(False)
        self.backbone, self.channels = model, C
        self.dropout = nn.Dropout(dropout)

    def forward(self, inputs: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        B, T = inputs.shape[:2]
        frames, mask = _real_frames(inputs, lengths)  # (N, C, H, W)
        if self.channels == 1:
            frames = frames.expand(-1, 3, -1, -1)  # ImageNet models take RGB
        return _scatter(self.dropout(self.backbone(frames)), mask, B, T)  # (B, T, D)


def _strip_classifier(model: nn.Module, name: str) -> int:
    """Replace the model's final classifier by Identity; return the size of its input."""
    for attr in ("fc", "classifier", "head", "heads"):
        layer = getattr(model, attr, None)
        if layer is None:
            continue
        linears = [m for m in ([layer] if isinstance(layer, nn.Linear) else layer.modules()) if isinstance(m, nn.Linear)]
        if linears:
            setattr(model, attr, nn.Identity())
            return linears[0].in_features
    raise SeqkitError(f"model.encoder: cannot find the classifier of torchvision model {name!r} to remove; use a resnet, mobilenet or efficientnet")
