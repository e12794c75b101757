"""seqkit-video: per-frame video classification - frame encoders, a per-frame head (on the core's
``PerStepHead``), segment metrics and a video data module with a generated default task."""

from seqkit_video.data import VideoClipData
from seqkit_video.encoders import Clip3DCNN, FeatureFrames, FrameCNN, TorchvisionFrames
from seqkit_video.head import PerFrameHead
from seqkit_video.segments import EditScore, SegmentF1
from seqkit_video.spec import IGNORE, VideoBatch, VideoSpec

__all__ = [
    "IGNORE",
    "Clip3DCNN",
    "EditScore",
    "FeatureFrames",
    "FrameCNN",
    "PerFrameHead",
    "SegmentF1",
    "TorchvisionFrames",
    "VideoBatch",
    "VideoClipData",
    "VideoSpec",
]
