"""Reading seqkit checkpoints safely, and rebuilding a model from one alone.

Shared by the CLI (``predict``/``test``/``validate`` with ``--ckpt_path``), ``seqkit export`` and
``seqkit trace``. Everything is read with ``torch.load(weights_only=True)``; nothing in a
checkpoint can run code.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from seqkit.errors import SeqkitError
from seqkit.safeload import read_checkpoint
from seqkit.spec import Spec

__all__ = ["load_model", "read_checkpoint"]


def _load_plugins() -> None:
    """Import the installed plugins so short class names resolve; a broken plugin is skipped
    (configs in checkpoints name classes by full import path too)."""
    try:
        from seqkit import plugins as _plugins

        _plugins.get_registry()
    except Exception:  # noqa: BLE001 - a plugin that fails to load must not stop loading others' checkpoints
        pass


def load_model(ckpt_path: str) -> tuple[nn.Module, Any]:
    """Rebuild ``(model, datamodule)`` from a checkpoint alone: the resolved config that ``seqkit
    fit`` keeps in ``ckpt["seqkit"]["config"]`` is parsed with jsonargparse (the ``model`` and
    ``data`` sections, classes by ``class_path``), the data module's fitted state is restored from
    ``ckpt[<its class name>]`` before its spec builds the model, and the weights are loaded
    strictly. The checkpoint is read with ``weights_only=True``; no training file is read."""
    import yaml
    from jsonargparse import ArgumentParser

    from seqkit.data import SeqDataModule
    from seqkit.model import SequenceModel

    ckpt = read_checkpoint(ckpt_path)
    text = (ckpt.get("seqkit") or {}).get("config")
    if not text:
        raise SeqkitError(f"{ckpt_path}: no resolved config in ckpt['seqkit']['config']; only checkpoints written by "
                          "seqkit fit can be rebuilt")
    config = yaml.safe_load(text) or {}
    if "model" not in config or "data" not in config:
        raise SeqkitError(f"{ckpt_path}: the saved config has no {'model' if 'model' not in config else 'data'} section")
    _load_plugins()
    model_cfg = {k: v for k, v in (config["model"] or {}).items() if k != "spec"}

    def restore(dm: SeqDataModule) -> Spec:
        state = ckpt.get(type(dm).__qualname__)
        if state is None:
            state = next((v for k, v in ckpt.items() if isinstance(v, dict) and k == type(dm).__name__), None)
        if state:
            dm.load_state_dict(state)
        elif dm.fitted:
            raise SeqkitError(f"{ckpt_path}: no fitted state of {type(dm).__name__} in the checkpoint "
                              f"(key {type(dm).__qualname__!r}); it cannot be rebuilt without its training data")
        return dm.spec

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(SeqDataModule, "data", required=True)
    parser.add_class_arguments(SequenceModel, "model", sub_configs=True)
    parser.link_arguments("data", "model.spec", compute_fn=restore, apply_on="instantiate")
    try:
        cfg = parser.parse_object({"model": model_cfg, "data": config["data"]})
        init = parser.instantiate_classes(cfg)
    except SeqkitError:
        raise
    except Exception as exc:  # noqa: BLE001
        cause, seen = exc, set()
        while cause is not None and id(cause) not in seen:  # a SeqkitError wrapped by jsonargparse
            seen.add(id(cause))
            if isinstance(cause, SeqkitError):
                raise SeqkitError(str(cause)) from exc
            cause = cause.__cause__ or cause.__context__
        lines = " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
        raise SeqkitError(f"{ckpt_path}: cannot rebuild the model from its saved config: {lines[:400]}") from exc
    model, datamodule = init.model, init.data
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError) as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
        raise SeqkitError(f"{ckpt_path}: the weights do not fit the model its config builds: {first}") from exc
    model.seqkit_config = text
    model.eval()
    return model, datamodule
