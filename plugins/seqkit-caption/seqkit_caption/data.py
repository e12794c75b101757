"""The captioning data module: images and their captions, to (image tensor, caption ids) batches.

By default it draws the embedded shapes data (``seqkit_caption.shapes``: seeded, no download).
With ``captions`` it reads your own: a folder of images and a captions file, TSV / CSV (one
``image, caption`` row per caption; several rows per image give several references) or COCO-style
JSON. The vocabulary is built from the training captions and saved in checkpoints (the module's
fitted state), so captioning new images needs only the checkpoint and the images.

An example is one image. In training it carries all its captions (the image is encoded once and
the decoder learns every caption; ``batch_size`` counts images); in validation and test its first
caption is the teacher-forced target for the loss and all its captions are the references for BLEU.
"""

from __future__ import annotations

import os
import random
from typing import Optional

import torch
from PIL import Image
from torch.utils.data import Dataset

from seqkit import Augment, DataError, OnBad, SeqDataModule, Tokenizer, Vocab, pad

from seqkit_caption.images import image_to_tensor, list_images, load_image, read_captions
from seqkit_caption.shapes import CANVAS, generate
from seqkit_caption.spec import IMAGENET_MEAN, IMAGENET_STD, CaptionSpec, OneToManyBatch


class ImageCaptionSet(Dataset):
    """Examples ``(image (3, H, W) uint8, target id lists or None, references, name)``.

    ``images`` is a (N, 3, H, W) uint8 tensor (cached) or a list of paths read on access;
    ``items`` are ``(image number, [target ids, ...] or None, references)``: one example per
    image, with every caption it is trained on, so the encoder runs once per image.
    """

    def __init__(self, images, names: list[str], items: list[tuple[int, list[list[int]] | None, list[str]]], size) -> None:
        self.images, self.names, self.items, self.size = images, names, items, size
        self.lengths = [max(len(ids) for ids in targets) if targets else 1 for _, targets, _ in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        k, targets, refs = self.items[i]
        img = self.images[k] if isinstance(self.images, torch.Tensor) else load_image(self.images[k], self.size)
        return img, targets, refs, self.names[k]


class CaptionData(SeqDataModule):
    """Images and captions: the generated shapes data, or your own images and captions file.
    ``loader.batch_size`` counts images, each with all its captions."""

    spec_type = CaptionSpec
    fitted = {"vocab": Vocab, "max_target_len": int}

    def __init__(
        self,
        captions: Optional[str] = None,
        image_dir: Optional[str] = None,
        val_captions: Optional[str] = None,
        test_captions: Optional[str] = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        predict_images: Optional[str] = None,
        image_size: tuple[int, int] = CANVAS,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab: Optional[int] = None,
        max_caption_len: int = 30,
        on_bad: OnBad = "error",
        cache_images: bool = True,
        num_train: int = 3000,
        num_val: int = 200,
        num_test: int = 300,
        augment: Augment = Augment(),
        **kwargs,
    ) -> None:
        """
        Args:
            captions: Captions file for training: .tsv / .csv with rows ``image, caption`` (an
                optional header row; several rows per image) or COCO-style .json. null draws the
                embedded shapes data instead.
            image_dir: Folder the image names in the captions files are relative to (default: the
                folder of each captions file).
            val_captions: Captions file for validation; null holds out ``val_fraction`` of the
                training images.
            test_captions: Captions file for test; null holds out ``test_fraction`` of the
                training images.
            val_fraction: Share of the images in ``captions`` held out for validation when
                ``val_captions`` is not given (split by image, seeded).
            test_fraction: Share held out for test when ``test_captions`` is not given.
            predict_images: What ``seqkit predict`` captions: a folder of images, one image, or a
                text file listing image paths one per line. null captions the test split.
            image_size: [height, width] every image is resized to.
            mean: Per-channel mean subtracted after scaling pixels to [0, 1].
            std: Per-channel standard deviation divided by after subtracting the mean.
            lowercase: Lowercase captions before tokenising (words, punctuation split off).
            min_freq: Words seen fewer times in the training captions become <unk>.
            max_vocab: Keep at most this many words (the most frequent), specials included.
            max_caption_len: Longer captions are cut to this many words.
            on_bad: What a bad row does (an image that is missing or cannot be read, an empty
                caption): "error" stops with a message naming the file and line; "skip" leaves
                the row out and warns once with the count.
            cache_images: Decode and resize every image once at setup and keep them in memory
                (fast epochs); false reads images on access (large datasets; use num_workers).
            num_train: Generated training images (each has two captions).
            num_val: Generated validation images.
            num_test: Generated test images.
            augment: Random transforms of training images (shifts, rotation, zoom, brightness,
                contrast, noise; a flip only when captions never say left or right). Off by
                default; the temporal options do not apply to images.
        """
        super().__init__(**kwargs)
        if on_bad not in ("error", "skip"):
            raise DataError(f"data.init_args.on_bad must be 'error' or 'skip', got {on_bad!r}")
        if len(image_size) != 2 or min(image_size) < 8:
            raise DataError(f"data.init_args.image_size must be [height, width], each >= 8; got {list(image_size)}")
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise DataError("data.init_args.val_fraction and test_fraction must be in [0, 1) and sum below 1 "
                            f"(got {val_fraction}, {test_fraction})")
        # files are checked when they are read, not here: predicting from a checkpoint must not
        # need the training captions
        self.captions, self.image_dir = captions, image_dir
        self.val_captions, self.test_captions = val_captions, test_captions
        self.fractions = {"val": val_fraction, "test": test_fraction}
        self.predict_images = predict_images
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.mean, self.std = tuple(mean), tuple(std)
        self.lowercase, self.min_freq, self.max_vocab = lowercase, min_freq, max_vocab
        self.max_caption_len, self.on_bad, self.cache_images = max_caption_len, on_bad, cache_images
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.tokenizer = Tokenizer("word", lowercase=lowercase)
        self._files: dict[str, tuple] | None = None  # user data: split -> (paths, names, captions, where)
        self._loaded: dict[str, tuple] = {}  # split -> (images, names, captions per image)
        self.augment_args = Augment(**augment) if isinstance(augment, dict) else augment
        if self.augment_args.temporal:
            raise DataError("data.init_args.augment: speed and crop_time are for clips; images take "
                            "hflip, shift, rotate, scale, brightness, contrast and noise")

    # -- reading ------------------------------------------------------------------------------
    def _bad(self, problems: list[str], message: str) -> None:
        if self.on_bad == "error":
            raise DataError(f"{message} (set data.init_args.on_bad: skip to leave such rows out)")
        problems.append(message)

    def _warn_skipped(self, what: str, problems: list[str]) -> None:
        if problems:
            from lightning.pytorch.utilities import rank_zero_warn

            shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
            rank_zero_warn(f"seqkit: {what}: skipped {len(problems)} bad row(s): {shown}")

    def _read_file(self, path: str) -> tuple[list[str], list[str], list[list[str]], list[str]]:
        """(image paths, image names as written, captions per image, where each image was first
        named) of one captions file."""
        rows = read_captions(path)
        base = self.image_dir if self.image_dir is not None else os.path.dirname(os.path.abspath(path))
        order: dict[str, int] = {}
        names: list[str] = []
        captions: list[list[str]] = []
        where: list[str] = []
        problems: list[str] = []
        for row in rows:
            if not row.image:
                self._bad(problems, f"{row.where}: no image name")
                continue
            if not self.tokenizer.tokenize(row.caption):
                self._bad(problems, f"{row.where}: empty caption for image {row.image!r}")
                continue
            full = row.image if os.path.isabs(row.image) else os.path.join(base, row.image)
            if full not in order:
                order[full] = len(captions)
                names.append(row.image)
                captions.append([])
                where.append(row.where)
            captions[order[full]].append(row.caption)
        self._warn_skipped(path, problems)
        if not captions:
            raise DataError(f"{path}: no usable captions")
        return list(order), names, captions, where

    def _load_images(self, paths: list[str], where: list[str], what: str) -> tuple[object, list[int]]:
        """Check (and when caching, decode) every image; returns (images, kept positions)."""
        problems: list[str] = []
        kept, tensors = [], []
        for k, path in enumerate(paths):
            try:
                if self.cache_images:
                    tensors.append(load_image(path, self.image_size))
                elif not os.path.exists(path):
                    raise DataError(f"image not found: {path}")
                else:
                    try:
                        with Image.open(path) as img:
                            img.verify()
                    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
                        raise DataError(f"cannot read image {path}: {exc}") from None
                kept.append(k)
            except DataError as exc:
                self._bad(problems, f"{where[k]}: {exc}")
        self._warn_skipped(what, problems)
        if not kept:
            raise DataError(f"{what}: none of the images could be read")
        images = torch.stack(tensors) if self.cache_images else [paths[k] for k in kept]
        return images, kept

    def _parsed(self) -> dict[str, tuple]:
        """The user's captions files read into train / val / test, each (paths, names, captions,
        where); splits without a file of their own are held out of the training images."""
        if self._files is not None:
            return self._files
        files = {"captions": self.captions, "val_captions": self.val_captions, "test_captions": self.test_captions}
        parsed = {split: self._read_file(self.split_file(key, path))
                  for split, (key, path) in zip(("train", "val", "test"), files.items()) if path is not None}
        train = parsed["train"]
        order = list(range(len(train[0])))
        random.Random(self.seed).shuffle(order)
        held: dict[str, list[int]] = {}
        start = 0
        for split in ("val", "test"):
            if split not in parsed:
                n = int(round(self.fractions[split] * len(order)))
                held[split] = sorted(order[start : start + n])
                start += n
        taken = {i for idx in held.values() for i in idx}
        keep = [i for i in range(len(order)) if i not in taken]
        parsed["train"] = tuple([seq[i] for i in keep] for seq in train)
        for split, idx in held.items():
            parsed[split] = tuple([seq[i] for i in idx] for seq in train)
        if not parsed["train"][0]:
            raise DataError(f"{self.captions}: no images left for training after holding out val and test")
        self._files = parsed
        return parsed

    def _split(self, split: str) -> tuple[object, list[str], list[list[str]]]:
        """(images, names, captions per image) of ``split``; images decoded or checked once."""
        if split not in self._loaded:
            if self.captions is None:
                offset = {"train": 0, "val": 1, "test": 2}[split]
                drawn = generate(self.sizes[split], self.seed * 1000 + offset)
                images = torch.stack([image_to_tensor(img, self.image_size) for img, _ in drawn])  # (N, 3, H, W)
                names = [f"shapes-{split}-{i:05d}" for i in range(len(drawn))]
                self._loaded[split] = (images, names, [caps for _, caps in drawn])
            else:
                paths, names, caps, where = self._parsed()[split]
                if not paths:
                    raise DataError(
                        f"{self.captions}: no images for the {split} split "
                        f"(raise data.init_args.{split}_fraction or give data.init_args.{split}_captions)"
                    )
                images, kept = self._load_images(paths, where, f"{split} captions")
                self._loaded[split] = (images, [names[k] for k in kept], [caps[k] for k in kept])
        return self._loaded[split]

    # -- fitted state and spec ------------------------------------------------------------------
    def fit_state(self) -> None:
        train_caps = self._split("train")[2] if self.captions is None else self._parsed()["train"][2]
        tokenised = [self._tokens(c) for caps in train_caps for c in caps]
        self.vocab = Vocab.build(tokenised, min_freq=self.min_freq, max_size=self.max_vocab)
        self.max_target_len = max(len(t) for t in tokenised) + 1  # + <eos>

    def build_spec(self) -> CaptionSpec:
        return CaptionSpec(
            input_kind="image",
            input_size=3,
            pad_id=self.vocab.pad_id,
            vocabs={"target": self.vocab},
            max_target_len=int(self.max_target_len),
            tokenizer=self.tokenizer,
            source_field="image",
            target_field="caption",
            image_size=self.image_size,
            mean=self.mean,
            std=self.std,
        )

    def _tokens(self, caption: str) -> list[str]:
        return self.tokenizer.tokenize(caption)[: self.max_caption_len]

    def _dataset(self, split: str, all_captions: bool) -> ImageCaptionSet:
        images, names, caps = self._split(split)
        items = []
        for k, refs in enumerate(caps):
            norm = [" ".join(self._tokens(c)) for c in refs]
            targets = [self.vocab.encode(self._tokens(c), add_bos=True, add_eos=True) for c in (refs if all_captions else refs[:1])]
            items.append((k, targets, norm))
        return ImageCaptionSet(images, names, items, self.image_size)

    def dataset(self, split: str) -> ImageCaptionSet:
        if split == "train":
            return self._dataset("train", all_captions=True)  # every caption of an image, encoded once
        if split in ("val", "test"):
            return self._dataset(split, all_captions=False)  # the first is the loss's target; all are references
        if self.predict_images is None:
            return self._dataset("test", all_captions=False)
        paths = list_images(self.predict_images)
        key = "data.init_args.predict_images"
        images, kept = self._load_images(paths, [f"{key} ({p})" for p in paths], key)
        return ImageCaptionSet(images, [paths[k] for k in kept], [(k, None, []) for k in range(len(kept))], self.image_size)

    def augment(self, examples: list) -> list:
        """Training images transformed on the 0-1 pixel scale, each with its own draw."""
        if not self.augment_args:
            return examples
        images = self.augment_args.frames(torch.stack([img for img, _, _, _ in examples]).float() / 255.0, same=False)
        return [(img, *rest) for img, (_, *rest) in zip(images, examples)]

    def collate(self, examples: list) -> OneToManyBatch:
        # (B, 3, H, W) on the 0-1 scale (augmented training images already are)
        images = torch.stack([img.float() / 255.0 if img.dtype == torch.uint8 else img for img, _, _, _ in examples])
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        images = (images - mean) / std
        targets = target_lengths = owner = None
        if all(t is not None for _, t, _, _ in examples):
            flat = [ids for _, t, _, _ in examples for ids in t]
            targets, target_lengths = pad(flat, value=self.vocab.pad_id, dtype=torch.long)  # (C, T), C captions
            if len(flat) != len(examples):  # several captions per image: which image each belongs to
                owner = torch.tensor([b for b, (_, t, _, _) in enumerate(examples) for _ in t])  # (C,)
        return OneToManyBatch(
            inputs=images,
            targets=targets,
            target_lengths=target_lengths,
            names=[n for _, _, _, n in examples],
            references=[refs for _, _, refs, _ in examples],
            target_example=owner,
        )
