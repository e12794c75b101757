"""Training-time augmentation (seqkit.Augment, data.init_args.augment): every frame of a clip gets
the same transform, labels follow the temporal jitter, and validation, test and predict batches
are never augmented. Also PerFrameHead's MS-TCN smoothing loss, by hand."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from conftest import CONFIGS, run_seqkit
from seqkit import Augment, DataError
from seqkit_video import PerFrameHead, VideoClipData, VideoSpec

SPATIAL = dict(shift=0.2, rotate=20.0, scale=0.2, brightness=0.3, contrast=0.3)


def _image(seed=0, size=16) -> torch.Tensor:
    """(3, size, size) on the 0-1 scale, with structure for the geometric transforms to move."""
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(3, size, size, generator=g) * 0.3
    img[:, 4:10, 3:12] += 0.6
    return img


def test_every_frame_of_a_clip_gets_the_same_transform():
    torch.manual_seed(0)
    clip = _image().expand(12, -1, -1, -1).clone()  # 12 identical frames
    out = Augment(**SPATIAL).frames(clip)
    assert out.shape == clip.shape
    assert not torch.allclose(out[0], clip[0], atol=1e-3)  # something was done...
    for t in range(1, 12):  # ...and the same to every frame, so identical frames stay identical
        torch.testing.assert_close(out[t], out[0])


def test_images_for_captioning_each_get_their_own_draw():
    torch.manual_seed(0)
    batch = _image().expand(8, -1, -1, -1).clone()
    out = Augment(**SPATIAL).frames(batch, same=False)
    assert len({tuple(o.flatten()[:64].round(decimals=4).tolist()) for o in out}) == 8


def test_flip_mirrors_every_frame_and_noise_is_per_frame():
    clip = torch.stack([_image(seed) for seed in range(5)])
    torch.testing.assert_close(Augment(hflip=1.0).frames(clip), clip.flip(-1))
    noisy = Augment(noise=0.1).frames(_image().expand(4, -1, -1, -1).clone())
    assert not torch.allclose(noisy[0], noisy[1])
    assert 0.08 < float((noisy - _image()).std()) < 0.12


def test_bad_option_names_the_key():
    with pytest.raises(DataError, match=r"data.init_args.augment.rotate: expected a number in \[0, 180\], got -5"):
        Augment(rotate=-5)
    with pytest.raises(DataError, match=r"data.init_args.augment.speed: expected a number in \[0, 1\)"):
        Augment(speed=1.0)


def test_cli_bad_augment_value_is_one_line(tmp_path):
    proc = run_seqkit("fit", "--config", str(CONFIGS / "video.yaml"), "--data.init_args.augment.hflip=2",
                      "--trainer.max_steps=1", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "augment.hflip" in proc.stderr and "[0, 1]" in proc.stderr


# -- through the video data module ----------------------------------------------------------------
def _write_split(folder, lengths, seed):
    """Clips whose frame t is filled with 4 * t, labelled "even"/"odd" by t, so after any
    resampling each frame still says which original frame it is."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k, n in enumerate(lengths):
        frames = np.stack([np.full((1, 8, 8), 4 * t, np.uint8) for t in range(n)])
        frames[:, :, 2:5, 1:4] += rng.integers(0, 3, (n, 1, 3, 3)).astype(np.uint8)  # something to flip
        np.save(folder / f"c{k}.npy", frames)
        with open(folder / f"c{k}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([("label",), *[("even" if t % 2 == 0 else "odd",) for t in range(n)]])


@pytest.fixture
def clips(tmp_path):
    for split, lengths, seed in (("train", (30, 40, 36, 33), 0), ("val", (31, 38), 1), ("test", (35,), 2)):
        _write_split(tmp_path / split, lengths, seed)
    return tmp_path


def test_temporal_jitter_takes_the_labels_along(clips):
    torch.manual_seed(0)
    data = VideoClipData(data_dir=str(clips), window=0, augment=Augment(speed=0.5, crop_time=0.5),
                         loader={"batch_size": 4})
    data.setup("fit")
    lengths = set()
    for _ in range(5):
        for frames, targets, _, numbers in data.augment(list(data.train_set.items)):
            original = frames[:, 0, 0, 0].long() // 4  # which frame each one was
            assert original.tolist() == numbers.tolist()
            assert targets.tolist() == [data.spec.labels.index("even" if t % 2 == 0 else "odd") for t in original]
            lengths.add(len(frames))
    assert len(lengths) > 5  # random starts, lengths and speeds


def test_augmentation_only_in_training(clips):
    data = VideoClipData(data_dir=str(clips), window=0, augment=Augment(hflip=1.0, noise=0.3, speed=0.3),
                         loader={"batch_size": 8, "eval_batch_size": 8})
    data.setup("fit")
    data.setup("test")
    data.setup("predict")
    for split, loader in (("val", data.val_dataloader()), ("test", data.test_dataloader()),
                          ("predict", data.predict_dataloader())):
        batch = next(iter(loader))
        examples = [data.dataset(split if split != "predict" else "test").items[i] for i in batch.index.tolist()]
        plain = data.collate(examples)  # the same examples, never augmented
        torch.testing.assert_close(batch.inputs, plain.inputs)
        assert torch.equal(batch.targets, plain.targets)
    batch = next(iter(data.train_dataloader()))
    plain = data.collate([data.train_set.items[i] for i in batch.index.tolist()])
    assert batch.inputs.shape != plain.inputs.shape or not torch.allclose(batch.inputs, plain.inputs)


# -- MS-TCN's smoothing loss -------------------------------------------------------------------
def test_smoothing_loss_by_hand():
    spec = VideoSpec(input_size=4, num_classes=2, labels=["a", "b"], frame_shape=[4, 1, 1])
    head = PerFrameHead(spec, 8, smoothing=0.15, smoothing_clip=2.0)
    log_probs = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [1.0, -1.0], [11.0, -1.0]]])  # (1, 4 frames, 2 classes)
    mask = torch.tensor([[True, True, True, True]])
    # steps: 0 | (1 + 1) / 2 = 1 | (min(100, 4) + 0) / 2 = 2  -> mean over the 3 steps
    assert head.smoothing_loss(log_probs, mask).item() == pytest.approx((0 + 1 + 2) / 3)
    # padding frames take no part: only the first step is real
    assert head.smoothing_loss(log_probs, torch.tensor([[True, True, False, False]])).item() == 0.0
    # the previous frame is a constant target (MS-TCN detaches it): gradients reach frame t only
    lp = log_probs.clone().requires_grad_()
    head.smoothing_loss(lp, mask).backward()
    assert lp.grad[0, 0].abs().sum() == 0 and lp.grad[0, 2].abs().sum() > 0
    with pytest.raises(Exception, match="smoothing"):
        PerFrameHead(spec, 8, smoothing=-1.0)
