"""``seqkit new-plugin NAME``: render the plugin template into a package that installs, is listed
and trains as is.

The template is a folder of real files shipped with seqkit (``seqkit/templates/plugin``), each
ending in ``.tmpl``; ``{{key}}`` in a file's text or path is replaced by the value of ``key``
(:func:`names_for`). It renders to:

    seqkit-NAME/
      pyproject.toml                the ``seqkit`` entry point -> seqkit_NAME.plugin
      README.md
      seqkit_NAME/__init__.py
      seqkit_NAME/plugin.py         hook implementations (register classes, nothing else)
      seqkit_NAME/data.py           NameData: fitted vocabulary and labels, TSV files or generated
      seqkit_NAME/heads.py          NameHead: final state -> classes, loss, metrics, predict records
      configs/NAME.yaml             a runnable config
      tests/test_seqkit_NAME.py     contract tests with seqkit.testing

``examples/seqkit-example-plugin`` is this template rendered for its names plus its own task in
the :data:`TASK_FILES` (``tests/test_plugin_path.py`` checks that the two agree).
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import os
import re
from importlib.metadata import entry_points
from importlib.resources import files
from typing import TYPE_CHECKING

from seqkit.errors import SeqkitError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
SUFFIX = ".tmpl"

TASK_FILES = ("README.md", "{{package}}/data.py", "{{package}}/heads.py", "configs/*.yaml", "tests/test_*.py")
"""Template files that hold the placeholder task (rendered paths may be globs): a plugin built
from the template replaces them with its task and keeps every other file as rendered."""


def template_root() -> Traversable:
    """The plugin template's folder inside the installed seqkit package."""
    return files("seqkit") / "templates" / "plugin"


def template_files() -> dict[str, str]:
    """Every template file: its path (relative, with placeholders, without ``.tmpl``) -> its text."""
    out: dict[str, str] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(SUFFIX):
                out[prefix + entry.name[: -len(SUFFIX)]] = entry.read_text(encoding="utf-8")

    walk(template_root(), "")
    if not out:
        raise SeqkitError(f"new-plugin: no template files in {template_root()}: the seqkit installation is incomplete")
    return out


def render(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``{{key}}`` replaced by ``values[key]``; an unknown key is an error."""

    def value(m: re.Match) -> str:
        if m.group(1) not in values:
            raise SeqkitError(f"new-plugin: the template uses {m.group(0)}, which is not one of {', '.join(sorted(values))}")
        return values[m.group(1)]

    return PLACEHOLDER.sub(value, text)


def names_for(name: str, **overrides: str) -> dict[str, str]:
    """Template values for plugin ``name``: ``name``, ``package``, ``distribution``,
    ``HeadClass``, ``DataClass`` and ``seqkit_version`` (``overrides`` replace derived ones)."""
    if not NAME_RE.match(name):
        raise SeqkitError(
            f"new-plugin: invalid name {name!r}: use lowercase letters and digits, optionally joined by - or _ "
            "(for example: sentiment, digit-sum)"
        )
    from seqkit import __version__

    camel = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    values = {
        "name": name,
        "package": "seqkit_" + name.replace("-", "_"),
        "distribution": f"seqkit-{name}",
        "HeadClass": f"{camel}Head",
        "DataClass": f"{camel}Data",
        "seqkit_version": ".".join(__version__.split(".")[:2]),
    }
    unknown = set(overrides) - set(values)
    if unknown:
        raise SeqkitError(f"new-plugin: unknown template values {sorted(unknown)}")
    return {**values, **overrides}


def render_plugin(values: dict[str, str]) -> dict[str, str]:
    """The rendered package: relative path -> text."""
    return {render(path, values): render(text, values) for path, text in template_files().items()}


def is_task_file(path: str, values: dict[str, str]) -> bool:
    """Whether rendered ``path`` is one of the :data:`TASK_FILES`."""
    return any(fnmatch.fnmatchcase(path, render(pattern, values)) for pattern in TASK_FILES)


def generate_plugin(name: str, directory: str = ".") -> str:
    """Write the package for plugin ``name`` into ``directory/seqkit-NAME``; return its path."""
    values = names_for(name)
    taken = {ep.name: ep.value for ep in entry_points(group="seqkit")}
    if name in taken:
        raise SeqkitError(f"new-plugin: a seqkit plugin named {name!r} is already installed ({taken[name]}); choose another name")
    if importlib.util.find_spec(values["package"]) is not None:
        raise SeqkitError(f"new-plugin: a Python package {values['package']!r} already exists; choose another name")
    root = os.path.join(directory, values["distribution"])
    if os.path.exists(root):
        raise SeqkitError(f"new-plugin: {root} already exists; remove it or choose another --dir")
    for path, text in render_plugin(values).items():
        target = os.path.join(root, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
    return root


def new_plugin_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="seqkit new-plugin",
        description="Generate a seqkit plugin package (pyproject with the entry point, hooks, a head, a data "
        "module, a config and tests) that installs and trains as is.",
    )
    parser.add_argument("name", help="plugin name: lowercase letters and digits, - or _ between words")
    parser.add_argument("--dir", default=".", help="folder to create seqkit-NAME/ in (default: the current folder)")
    args = parser.parse_args(argv)
    root = generate_plugin(args.name, args.dir)
    values = names_for(args.name)
    print(f"created {root}/ ({values['HeadClass']}, {values['DataClass']}). Next:")
    print(f"  pip install -e {root}")
    print("  seqkit plugins")
    print(f"  cd {root} && seqkit fit --config configs/{args.name}.yaml")
    print("  pytest")
    return 0
