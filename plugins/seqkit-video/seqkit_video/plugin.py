"""Hook implementations: how seqkit finds this plugin's classes (entry point ``video``).
Imports happen inside the hooks, which only hand classes over (no data is read here)."""

from seqkit import hookimpl


@hookimpl
def seqkit_register_encoders(register):
    from seqkit_video.encoders import Clip3DCNN, FeatureFrames, FrameCNN, TorchvisionFrames

    register(FrameCNN)
    register(FeatureFrames)
    register(Clip3DCNN)
    register(TorchvisionFrames)  # registered even without torchvision: it explains what to install


@hookimpl
def seqkit_register_heads(register):
    from seqkit_video.head import PerFrameHead

    register(PerFrameHead)


@hookimpl
def seqkit_register_datamodules(register):
    from seqkit_video.data import VideoClipData

    register(VideoClipData)
