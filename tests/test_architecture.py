"""The house rules of the architecture, checked by reading the code: no circle of imports inside
``seqkit/``, no head reaching into the model or into untyped extras, no plugin depending on
another plugin, and the core alone training ``configs/classify.yaml``."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "seqkit"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    lines.add(sub.lineno)
    return lines


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The seqkit modules ``path`` imports, at any depth (functions included), except under
    ``if TYPE_CHECKING:``. ``from seqkit import x`` counts as importing ``seqkit.x`` when that is
    a module, else the package ``seqkit`` itself."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:
                    found.add(full)
                elif base in modules:
                    found.add(base)
    found.discard(me)
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for p in CORE.rglob("*.py") if "templates" not in p.parts]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk of ``graph`` meets."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_circle_of_imports_inside_seqkit():
    # the package's __init__ re-exports the public API: an edge into it from a submodule that it
    # imports makes a circle like any other
    cycles = _cycles(_graph())
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_import_check_sees_a_circle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "seqkit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from seqkit import b\n")
    (pkg / "b.py").write_text("def f():\n    from seqkit.a import x\n")
    modules = {"seqkit", "seqkit.a", "seqkit.b"}
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        graph = {m: _imports(pkg / (m.split(".")[1] + ".py" if "." in m else "__init__.py"), modules) for m in modules}
    finally:
        ROOT = saved
    assert _cycles(graph) == [["seqkit.a", "seqkit.b", "seqkit.a"]]


FORBIDDEN = [
    (re.compile(r"\bmodel\.rnn\b"), "model.rnn"),
    (re.compile(r"\bmodel\._trainer\b"), "model._trainer"),
    (re.compile(r"\bspec\.extra\b"), "spec.extra"),
    (re.compile(r"\bbatch\.extra\b"), "batch.extra"),
    (re.compile(r"\.extra\[\s*[\"']"), ".extra[...]"),
]


def _plugin_sources() -> list[Path]:
    roots = [ROOT / "plugins", ROOT / "examples"]
    return [p for r in roots for p in r.rglob("*.py") if "build" not in p.parts and "tests" not in p.parts]


def _code_only(text: str) -> str:
    """The source with its strings and comments blanked (same lines), so that a message telling
    the user to set ``model.rnn.init_args...`` is no offence: only code that reads it is."""
    import io
    import tokenize

    lines = text.splitlines(keepends=True)
    for tok in reversed(list(tokenize.generate_tokens(io.StringIO(text).readline))):
        if tok.type not in (tokenize.STRING, tokenize.COMMENT) or tok.start[0] != tok.end[0]:
            continue  # multi-line strings (docstrings) are blanked below, line by line
        row, (c0, c1) = tok.start[0] - 1, (tok.start[1], tok.end[1])
        lines[row] = lines[row][:c0] + " " * (c1 - c0) + lines[row][c1:]
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING and tok.start[0] != tok.end[0]:
            for row in range(tok.start[0] - 1, tok.end[0]):
                lines[row] = "\n" if lines[row].endswith("\n") else ""
    return "".join(lines)


def test_code_only_blanks_strings_but_keeps_code():
    text = 'a = model.rnn\nraise E("set model.rnn")  # model.rnn\n"""\nmodel.rnn\n"""\nb = 1\n'
    out = _code_only(text)
    assert out.count("model.rnn") == 1 and out.splitlines()[0] == "a = model.rnn" and out.count("\n") == text.count("\n")


def test_no_head_reaches_into_the_model_or_untyped_extras():
    offenders = []
    # heads live in plugins and in the core's head modules; the CLI, export and the X-ray own the model
    core_heads = [CORE / "head.py", CORE / "heads.py", *(CORE / "seq2seq").glob("*.py")]
    for path in [*_plugin_sources(), *core_heads]:
        text = _code_only(path.read_text(encoding="utf-8"))
        for pattern, what in FORBIDDEN:
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offenders, "\n".join(offenders)


def test_no_plugin_depends_on_another_plugin():
    import tomllib

    names = {}
    for pyproject in [*(ROOT / "plugins").glob("*/pyproject.toml"), *(ROOT / "examples").glob("*/pyproject.toml")]:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        names[data["project"]["name"]] = data["project"]
    assert len(names) >= 7
    for name, project in names.items():
        deps = [re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in project.get("dependencies", [])]
        others = [d for d in deps if d in names and d != name]
        assert not others, f"{name} depends on plugin(s) {others}"


@pytest.mark.timeout(240)
def test_the_core_alone_trains_the_classify_config(tmp_path):
    """No plugin installed (entry points hidden): seqkit's own MarkerTaskData and ManyToOneHead
    train configs/classify.yaml."""
    script = (
        "import importlib.metadata as md, sys\n"
        "real = md.entry_points\n"
        "md.entry_points = lambda **kw: [] if kw.get('group') == 'seqkit' else real(**kw)\n"
        "from seqkit.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = ["fit", "--config", str(ROOT / "configs" / "classify.yaml"), "--data.init_args.num_train=128",
            "--data.init_args.num_val=32", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", script, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    ckpts = list(tmp_path.rglob("*.ckpt"))
    assert ckpts, f"no checkpoint written under {tmp_path}"
    listed = subprocess.run([sys.executable, "-c", script.replace("from seqkit.cli import main\nmain(sys.argv[1:])\n",
                             "from seqkit import plugins\nr = plugins.get_registry()\nprint(sorted(r.plugins))\n")],
                            env=env, capture_output=True, text=True)
    assert listed.stdout.strip() == "['seqkit']", listed.stdout + listed.stderr
