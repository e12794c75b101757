"""seqkit-video: per-frame video classification - frame encoders, a per-frame head, segment
metrics and a video data module with a generated default task."""

from seqkit_video.data import VideoClipData
from seqkit_video.encoders import Clip3DCNN, FrameCNN, TorchvisionFrames
from seqkit_video.head import PerFrameHead
from seqkit_video.segments import EditScore, SegmentF1

__all__ = ["Clip3DCNN", "EditScore", "FrameCNN", "PerFrameHead", "SegmentF1", "TorchvisionFrames", "VideoClipData"]
