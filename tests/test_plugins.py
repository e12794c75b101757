"""Plugins through real entry points: a throwaway plugin installed as a dist-info on the path is
listed and trains by its short class name; a broken one is skipped with a warning; duplicate class
names and misspelt hooks are errors that name the culprits; load order never matters."""

from __future__ import annotations

import json
import os
import textwrap
import types

import pytest

from conftest import CONFIGS, logger_args, run_seqkit
from seqkit import Head, hookimpl
from seqkit.plugins import PluginError, describe, get_registry


def make_plugin(site, name: str, module_source: str, entry: str | None = None) -> None:
    """Write module ``name`` and a ``<name>-0.1.dist-info`` declaring it in the seqkit group."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[seqkit]\n{name} = {entry or name}\n")


TINY_HEAD = '''
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy
from seqkit import Head, hookimpl, length_mask

class TinyMeanHead(Head):
    """Mean of the outputs, then a linear layer."""

    def __init__(self, spec, input_size, scale: float = 1.0):
        super().__init__(spec, input_size)
        self.out = torch.nn.Linear(input_size, spec.num_classes)
        self.scale = scale
        self.set_metrics(MetricCollection({"acc": MulticlassAccuracy(spec.num_classes)}))

    def loss(self, encoded, batch, stage, encode):
        mask = length_mask(encoded.lengths, encoded.outputs.shape[1]).unsqueeze(-1)
        logits = self.out(self.scale * (encoded.outputs * mask).sum(1) / encoded.lengths.unsqueeze(-1))
        self.metrics(stage).update(logits.argmax(-1), batch.targets)
        return F.cross_entropy(logits, batch.targets)

@hookimpl
def seqkit_register_heads(register):
    register(TinyMeanHead)
'''


def _env(site) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_installed_plugin_is_listed_and_trains_by_short_name(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_plugin(site, "tinyplug", TINY_HEAD)
    listing = json.loads(run_seqkit("plugins", "--json", env=_env(site)).stdout)
    plugins = {p["name"]: p for p in listing["plugins"]}
    assert plugins["tinyplug"]["heads"] == ["TinyMeanHead"]
    assert plugins["tinyplug"]["version"] == "0.1"
    assert "ManyToOneHead" in plugins["seqkit"]["heads"]  # the generic heads are built in

    proc = run_seqkit("fit", "--config", str(CONFIGS / "classify.yaml"), "--model.head=TinyMeanHead",
                      "--model.head.init_args.scale=2.0", "--trainer.fast_dev_run=2", *logger_args(tmp_path),
                      env=_env(site), cwd=tmp_path)
    assert "TinyMeanHead" in proc.stdout + proc.stderr


def test_broken_plugin_is_skipped_with_a_warning(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_plugin(site, "brokenplug", "raise ImportError('needs a library that is not installed')\n")
    proc = run_seqkit("plugins", env=_env(site))
    assert "skipping plugin 'brokenplug'" in proc.stderr
    assert "needs a library that is not installed" in proc.stderr
    assert "ManyToOneHead" in proc.stdout  # everything else keeps working

    strict = run_seqkit("plugins", env={**_env(site), "SEQKIT_STRICT_PLUGINS": "1"}, check=False)
    assert strict.returncode != 0
    assert "plugin 'brokenplug'" in strict.stderr and "Traceback" not in strict.stderr


def test_duplicate_class_name_is_an_error_naming_both_plugins(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_plugin(site, "dupplug", TINY_HEAD.replace("TinyMeanHead", "ManyToOneHead"))
    proc = run_seqkit("plugins", env=_env(site), check=False)
    assert proc.returncode != 0
    assert "'ManyToOneHead'" in proc.stderr and "'seqkit'" in proc.stderr and "'dupplug'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_misspelt_hook_fails_loudly():
    bad = types.ModuleType("typo_plugin")

    @hookimpl
    def seqkit_register_head(register):  # missing the final "s"
        pass

    bad.seqkit_register_head = seqkit_register_head
    with pytest.raises(PluginError, match="seqkit_register_head"):
        get_registry(extra_plugins=[("typo", bad)], reload=True)
    get_registry(reload=True)


class _Abstract(Head):
    pass


def _plugin_registering(name: str, cls: type) -> types.ModuleType:
    mod = types.ModuleType(name)

    @hookimpl
    def seqkit_register_heads(register):
        register(cls)

    mod.seqkit_register_heads = seqkit_register_heads
    return mod


def test_registration_is_validated():
    with pytest.raises(PluginError, match="abstract"):
        get_registry(extra_plugins=[("abs", _plugin_registering("abs", _Abstract))], reload=True)
    with pytest.raises(PluginError, match="does not subclass seqkit.Head"):
        get_registry(extra_plugins=[("wrong", _plugin_registering("wrong", dict))], reload=True)
    get_registry(reload=True)


class FirstHead(Head):
    def loss(self, encoded, batch, stage, encode):
        raise NotImplementedError


class SecondHead(Head):
    def loss(self, encoded, batch, stage, encode):
        raise NotImplementedError


def test_load_order_never_changes_the_result():
    a, b = _plugin_registering("plug_a", FirstHead), _plugin_registering("plug_b", SecondHead)
    try:
        first = describe(get_registry(extra_plugins=[("plug_a", a), ("plug_b", b)], reload=True))
        second = describe(get_registry(extra_plugins=[("plug_b", b), ("plug_a", a)], reload=True))
    finally:
        get_registry(reload=True)
    assert first == second
    assert [p["name"] for p in first] == sorted(p["name"] for p in first)
