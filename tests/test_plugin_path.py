"""The third-party plugin path, end to end, as a stranger would walk it.

- ``seqkit new-plugin NAME`` renders the template shipped as package data into a package whose
  generated tests pass, that pip installs, that ``seqkit plugins`` lists and that trains from its
  own config with no edits.
- ``examples/seqkit-example-plugin`` is that template rendered for its names plus its task (the
  rule is in ``test_example_plugin_is_the_template_plus_its_task``).
- ``examples/seqkit-example-plugin`` (a separate distribution) is installed -> listed -> fit from
  its config under two-process DDP -> checkpoint -> ``seqkit predict`` writes one file in input order.

``seqkit.testing``'s own checks are tested in ``tests/test_conformance.py``.

Plugins are installed with ``pip install --no-deps --no-build-isolation --target`` into a temporary
folder put on PYTHONPATH (entry points are found through the dist-info there), so nothing leaks
into the environment the other tests run in and no network is needed.
"""

from __future__ import annotations

import csv
import fnmatch
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from conftest import CONFIGS, ROOT, logger_args, read_metrics, run_seqkit
from seqkit import scaffold

EXAMPLE = ROOT / "examples" / "seqkit-example-plugin"
EXAMPLE_VALUES = scaffold.names_for("example", distribution="seqkit-example-plugin", HeadClass="DigitSumHead",
                                    DataClass="DigitSumData")
"""The example's template values: plugin name ``example`` (package ``seqkit_example``, entry point
``example``), with the distribution and class names it has had since before the template existed."""
BUILD_OUTPUTS = ("*.egg-info", "__pycache__", ".pytest_cache", "build", "runs")


def install_by_hand(src: Path, target: Path) -> None:
    """What pip leaves behind, made by hand from pyproject.toml: the package and a dist-info with
    its metadata and entry points (for environments without setuptools to build with)."""
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
def test_template_files_ship_as_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["seqkit"]
    pkg = ROOT / "seqkit"
    shipped = {p for pattern in patterns for p in pkg.glob(pattern) if p.is_file() and "templates" in p.parts}
    on_disk = {p for p in (pkg / "templates").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk and on_disk == shipped, f"template files not in package-data: {sorted(map(str, on_disk - shipped))}"
    assert all(p.name.endswith(scaffold.SUFFIX) for p in on_disk)
    assert set(scaffold.template_files()) == {str(p.relative_to(pkg / "templates" / "plugin"))[: -len(scaffold.SUFFIX)]
                                              for p in on_disk}


def test_generated_plugin_passes_its_own_tests(tmp_path):
    """Rendered at the Python level (no CLI, no install): every placeholder filled, the Python
    compiles, and the generated contract tests pass as generated."""
    pkg = Path(scaffold.generate_plugin("tplcheck", str(tmp_path)))
    rendered = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file())
    assert rendered == sorted(scaffold.render_plugin(scaffold.names_for("tplcheck")))
    for path in pkg.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "{{" not in text and "}}" not in text, f"{path}: a placeholder was left unfilled"
            if path.suffix == ".py":
                compile(text, str(path), "exec")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=pkg,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0 and "4 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_example_plugin_is_the_template_plus_its_task():
    """The rule: render the template with the example's values (EXAMPLE_VALUES). Then

    - every rendered file that is not a task file (``scaffold.TASK_FILES``: README.md, data.py,
      heads.py, the config and the tests) is in the example, byte for byte: the packaging, the
      package's ``__init__`` and the hook module are the template's;
    - every task-file pattern matches at least one file of the example (at the same path for
      data.py and heads.py, any name for ``configs/*.yaml`` and ``tests/test_*.py``): the task
      replaces the template's placeholder task file by file, keeping the shape;
    - the example holds no other file (build outputs aside).
    """
    rendered = scaffold.render_plugin(EXAMPLE_VALUES)
    example = {}
    for path in EXAMPLE.rglob("*"):
        rel = path.relative_to(EXAMPLE)
        if path.is_file() and not any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in BUILD_OUTPUTS):
            example[rel.as_posix()] = path.read_text()
    for path, text in rendered.items():
        if not scaffold.is_task_file(path, EXAMPLE_VALUES):
            assert path in example, f"the example lacks the template's {path}"
            assert example[path] == text, f"{path} differs from what the template renders: re-render it (or change the template)"
    patterns = [scaffold.render(p, EXAMPLE_VALUES) for p in scaffold.TASK_FILES]
    for pattern in patterns:
        assert any(fnmatch.fnmatchcase(p, pattern) for p in example), f"the example has no task file {pattern}"
    extra = [p for p in example if p not in rendered and not scaffold.is_task_file(p, EXAMPLE_VALUES)]
    assert not extra, f"the example has files the template does not render and that are no task files: {extra}"


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
    ckpts = [p for p in run.rglob("*.ckpt") if p.name != "last.ckpt"]  # the CLI also keeps a last.ckpt
    assert len(ckpts) == 1, f"expected one epoch checkpoint written by rank 0, found {ckpts}"
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
    assert [r["input"] for r in rows] == digits
    assert all(math.isfinite(float(r["sum"])) for r in rows)
