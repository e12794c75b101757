"""The third-party plugin path, end to end, as a stranger would walk it.

- ``seqkit new-plugin NAME`` generates a package that pip installs, that ``seqkit plugins`` lists,
  that trains from its own config with no edits, and whose generated tests pass.
- ``examples/seqkit-example-plugin`` (a separate distribution) is installed -> listed -> fit from
  its config under two-process DDP -> checkpoint -> ``seqkit predict`` writes one file in input order.
- ``seqkit.testing``'s contract checks pass on the reference plugin (ManyToOneHead,
  MarkerTaskData) and on the head and data module of every task config, and catch the mistakes
  they are there to catch.

Plugins are installed with ``pip install --no-deps --no-build-isolation --target`` into a temporary
folder put on PYTHONPATH (entry points are found through the dist-info there), so nothing leaks
into the environment the other tests run in and no network is needed.
"""

from __future__ import annotations

import csv
import functools
import importlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from torch import nn
from torch.utils.data import DataLoader

from conftest import CONFIGS, ROOT, logger_args, read_metrics, run_seqkit

EXAMPLE = ROOT / "examples" / "seqkit-example-plugin"


def install_by_hand(src: Path, target: Path) -> None:
    """What pip leaves behind, made by hand from pyproject.toml: the package and a dist-info with
    its metadata and entry points (for environments without setuptools to build with)."""
    import tomllib

    project = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    packages = [p.name for p in src.iterdir() if (p / "__init__.py").exists()]
    for pkg in packages:
        shutil.copytree(src / pkg, target / pkg)
    info = target / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project.get("entry-points", {})
    (info / "entry_points.txt").write_text(
        "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for g, eps in groups.items()))


def pip_install_target(src: Path, tmp: Path) -> Path:
    """``pip install`` the project at ``src`` into a fresh folder and return that folder."""
    build = tmp / f"src-{src.name}"
    shutil.copytree(src, build, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "runs"))
    target = tmp / f"site-{src.name}"
    if importlib.util.find_spec("setuptools") is None:  # nothing to build with, and no network to fetch it
        install_by_hand(build, target)
        return target
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "--target", str(target), str(build)],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, f"pip install {src.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return target


def env_with(*paths: Path) -> dict:
    extra = [str(p) for p in paths]
    if os.environ.get("PYTHONPATH"):
        extra.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(extra), "OMP_NUM_THREADS": "1"}


def listed(env: dict, name: str) -> dict:
    out = run_seqkit("plugins", "--json", env=env, timeout=120).stdout
    plugins = {p["name"]: p for p in json.loads(out)["plugins"]}
    assert name in plugins, f"seqkit plugins does not list {name!r}: {sorted(plugins)}"
    return plugins[name]


# -- the template ---------------------------------------------------------------------------------
def test_new_plugin_package_installs_is_listed_and_trains(tmp_path, monkeypatch):
    from seqkit.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["new-plugin", "tplcheck", "--dir", str(tmp_path)])
    assert done.value.code == 0
    pkg = tmp_path / "seqkit-tplcheck"
    assert (pkg / "pyproject.toml").exists() and (pkg / "configs" / "tplcheck.yaml").exists()

    env = env_with(pip_install_target(pkg, tmp_path))
    info = listed(env, "tplcheck")
    assert info["distribution"] == "seqkit-tplcheck" and info["version"] == "0.1.0"
    assert info["heads"] == ["TplcheckHead"] and info["datamodules"] == ["TplcheckData"]

    # trains from its own config with no edits (only sizes shrunk on the command line)
    run = tmp_path / "fit"
    run_seqkit("fit", "--config", "configs/tplcheck.yaml", "--data.init_args.num_train=256",
               "--data.init_args.num_val=64", "--trainer.max_epochs=2", *logger_args(run), cwd=pkg, env=env)
    rows = read_metrics(run)
    losses = [float(r["train_loss_epoch"]) for r in rows if r.get("train_loss_epoch")]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses), losses
    assert losses[1] < losses[0], f"the generated plugin did not learn: train loss {losses}"
    assert list(run.rglob("*.ckpt")), "no checkpoint written"

    # the generated contract tests pass as generated
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=pkg,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0 and "4 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_new_plugin_refuses_bad_or_taken_names(tmp_path, capsys):
    from seqkit.cli import main

    for argv, message in ((["new-plugin", "Bad Name"], "invalid name 'Bad Name'"),
                          (["new-plugin", "classify"], "already installed"),
                          (["new-plugin", "x1", "--dir", str(tmp_path)], None)):
        with pytest.raises(SystemExit) as done:
            main(argv)
        if message is None:
            assert done.value.code == 0
        else:
            assert done.value.code == 1 and message in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:  # never overwrites
        main(["new-plugin", "x1", "--dir", str(tmp_path)])
    assert done.value.code == 1 and "already exists" in capsys.readouterr().err


# -- the example plugin: installed -> listed -> fit (DDP) -> checkpoint -> predict (DDP) ------------
def test_example_plugin_full_path(tmp_path):
    try:
        distribution("seqkit-example-plugin")
        env = {"OMP_NUM_THREADS": "1"}  # CI installed it with pip, as a user would
    except PackageNotFoundError:
        env = env_with(pip_install_target(EXAMPLE, tmp_path))
    info = listed(env, "example")
    assert info["distribution"] == "seqkit-example-plugin"
    assert info["heads"] == ["DigitSumHead"] and info["datamodules"] == ["DigitSumData"]

    run = tmp_path / "fit"
    run_seqkit("fit", "--config", str(EXAMPLE / "configs" / "digitsum.yaml"),
               "--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml"),
               "--data.init_args.num_train=256", "--data.init_args.num_val=64", "--data.init_args.loader.batch_size=32",
               "--trainer.max_epochs=1", *logger_args(run), cwd=tmp_path, env=env, timeout=300)
    mae = [float(r["val_mae"]) for r in read_metrics(run) if r.get("val_mae")]
    assert mae and math.isfinite(mae[-1])
    ckpts = list(run.rglob("*.ckpt"))
    assert len(ckpts) == 1, f"expected one checkpoint written by rank 0, found {ckpts}"
    assert not [p for p in ckpts[0].parent.iterdir() if p.suffix == ".tmp"], "half-written checkpoint left behind"

    digits = ["7", "123", "99999", "31415926", "0", "55", "8", "2718", "1000000001", "42", "666", "90", "5"]
    (tmp_path / "digits.txt").write_text("\n".join(digits) + "\n")
    out = tmp_path / "sums.csv"
    # no --config: the config saved in the checkpoint (two gloo processes) is used
    proc = run_seqkit("predict", "--ckpt_path", str(ckpts[0]), f"--data.init_args.predict_file={tmp_path / 'digits.txt'}",
                      f"--prediction.output={out}", cwd=tmp_path, env=env, timeout=300)
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr, "predict did not run on two DDP processes"
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    # 13 inputs on 2 ranks: one rank gets a repeated example; the writer keeps one of each, in order
    assert [int(r["index"]) for r in rows] == list(range(len(digits)))
    assert [r["digits"] for r in rows] == digits
    assert all(math.isfinite(float(r["sum"])) for r in rows)


# -- seqkit.testing on the reference plugin, and on broken classes -------------------------------
SMALL = dict(num_train=64, num_val=32, num_test=32, batch_size=8)


def test_contract_checks_pass_on_the_reference_plugin():
    from seqkit.testing import check_datamodule, check_head, check_plugin
    from seqkit_classify import plugin
    from seqkit_classify.data import MarkerTaskData
    from seqkit_classify.heads import ManyToOneHead

    registry = check_plugin(plugin, name="classify")
    assert registry.names("heads") == ["ManyToOneHead"]
    data_report = check_datamodule(MarkerTaskData, **SMALL)
    assert "state_dict round trip" in data_report.passed
    head_report = check_head(ManyToOneHead, MarkerTaskData(**SMALL), head_args={"pooling": "mean", "hidden_size": 8})
    for check in ("all parameters used", "honours lengths", "metrics reset between epochs", "checkpoint round trip"):
        assert check in head_report.passed, head_report


def _task_configs() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted(CONFIGS.rglob("*.yaml")):
        m = re.search(r"^# test-overrides:(.*)$", path.read_text(), flags=re.M)
        if m:
            found.append((str(path.relative_to(CONFIGS)), m.group(1).split()))
    return found


TASKS = _task_configs()


def _load(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _partial(ns):
    if ns is None:
        return None
    d = ns.as_dict()
    return functools.partial(_load(d["class_path"]), **(d.get("init_args") or {}))


@pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")
@pytest.mark.parametrize("name,overrides", TASKS, ids=[n for n, _ in TASKS])
def test_every_task_config_passes_the_contract_checks(name, overrides):
    """The head and data module of every task config, built as the config builds them, pass
    seqkit.testing: equal DDP batch counts on 2 and 3 ranks, every parameter used in a training
    step (no unused-parameter errors under DDP), padding ignored, metrics reset, checkpoints."""
    from seqkit import plugins
    from seqkit.cli import SeqkitCLI
    from seqkit.testing import check_datamodule, check_head

    plugins.get_registry()  # imports every plugin's classes, so YAML short names resolve (as `seqkit` does)
    cli = SeqkitCLI(args=["--config", str(CONFIGS / name), *overrides, "--trainer.logger=false"], run=False)
    data = cli.config.data.as_dict()
    data_cls, data_args = _load(data["class_path"]), {**(data.get("init_args") or {}), "batch_size": 8, "eval_batch_size": 8}
    head = cli.config.model.head.as_dict()
    check_datamodule(data_cls, **data_args)
    report = check_head(_load(head["class_path"]), data_cls(**data_args), head_args=head.get("init_args") or {},
                        rnn=_partial(cli.config.model.rnn), encoder=_partial(cli.config.model.encoder))
    assert "all parameters used" in report.passed, report


def _broken_classes():
    from seqkit_classify.data import MarkerTaskData
    from seqkit_classify.heads import ManyToOneHead

    class UnusedLayerHead(ManyToOneHead):
        def __init__(self, spec, input_size):
            super().__init__(spec, input_size)
            self.never_used = nn.Linear(4, 4)  # an optional part left on: breaks DDP

    class NoMaskHead(ManyToOneHead):
        def pool(self, encoded, model):
            return encoded.outputs.mean(1)  # averages padding in

    class StrideShardData(MarkerTaskData):
        def train_dataloader(self):  # rank-strided shards of a home-made loader: unequal batch counts
            world, rank = self._world()
            items = [(i, self.train_set[i]) for i in range(rank, len(self.train_set), world)]
            return DataLoader(items, batch_size=self.batch_size, collate_fn=self._collate_indexed)

    return MarkerTaskData, UnusedLayerHead, NoMaskHead, StrideShardData


def test_contract_checks_catch_broken_plugins():
    from seqkit.testing import ContractError, check_datamodule, check_head

    data, unused, nomask, strided = _broken_classes()
    with pytest.raises(ContractError, match=r"UnusedLayerHead: all parameters used: .*never_used"):
        check_head(unused, data(**SMALL))
    with pytest.raises(ContractError, match=r"NoMaskHead: honours lengths"):
        check_head(nomask, data(**SMALL))
    with pytest.raises(ContractError, match=r"StrideShardData: DDP sharding: 2 ranks get \[5, 4\] train batches"):
        check_datamodule(strided, num_train=65, num_val=32, batch_size=8)
