"""The architecture of CONTRIBUTING.md ("Architecture"), read from the imports with ``ast``.

Every import of the package (top-level, inside functions, relative or not) is
an arrow from its part to another; an arrow that the table ALLOWED does not
list fails, and so do the nevers spelled out below.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "deepod_mnp"

#: part -> the parts it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "util": set(),                      # _params, _validation, persistence, preprocessing, _chunks
    "deepod_tabular": set(),            # DeepOD's MNP: DeepOD, torch, NumPy, SciPy, scikit-learn only
    # torch, NumPy, SciPy, scikit-learn only; MNP's own functions, which the fused scorer calls
    "method": {"deepod_tabular"},
    "base": {"util", "method"},         # method/ for the input scaling (method/scaling.py) only
    # the selecting detector builds its candidates by registry name and folds them with model_selection
    "models": {"base", "deepod_tabular", "method", "util", "registry", "model_selection"},
    "model_selection": set(),           # splitter and scorers: NumPy and scikit-learn only
    "registry": set(),                  # names classes by module path; imports them lazily by string
    "plugin": {"registry"},             # the names it registers into DeepOD; classes by module path
    "package": {"models", "registry", "plugin"},
    "data": set(),
    "benchmark": {"package", "registry", "data", "models", "method", "util"},
    "saved": {"util", "registry"},      # load any checkpoint by its format; the model card
    "serving": {"package", "base", "models", "method", "util", "registry", "data"},
    "cli": {"package", "benchmark", "registry", "data", "serving", "models", "saved", "util"},
}
#: third-party top-level modules the method may import (besides the standard library)
METHOD_LIBRARIES = {"torch", "numpy", "scipy", "sklearn"}
#: ... and the modules written in DeepOD's idiom (DeepOD's own requirements that a tabular model uses)
DEEPOD_TABULAR_LIBRARIES = METHOD_LIBRARIES | {"deepod"}


def part_of(module: str) -> str:
    """The architectural part of one of our modules, e.g. ``deepod_mnp.method.losses`` -> ``method``."""
    parts = module.split(".")[1:]
    if not parts or parts == ["__init__"]:
        return "package"
    head = parts[0]
    return {"deepod_tabular": "deepod_tabular", "method": "method", "models": "models", "base": "base",
            "_params": "util", "_validation": "util", "persistence": "util", "preprocessing": "util",
            "_chunks": "util",
            "saved": "saved", "registry": "registry",
            "deepod_plugin": "plugin", "data": "data", "datasets": "data", "benchmark": "benchmark",
            "serving": "serving", "cli": "cli", "__main__": "cli", "upstream": "upstream"}.get(head, head)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(base: str, name: str) -> str:
    """``from base import name``: the submodule ``base.name`` if it exists, else ``base``."""
    candidate = ROOT.joinpath(*base.split("."), *name.split("."))
    if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
        return f"{base}.{name}"
    return base


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports, absolute names, with the line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            out += [(_resolve(base, a.name), node.lineno) for a in node.names]
    return out


SOURCES = sorted(PACKAGE.rglob("*.py"))
ARROWS = [(module_name(p), imported, line) for p in SOURCES for imported, line in imports_of(p)]
OURS = [(src, dst, line) for src, dst, line in ARROWS if dst.split(".")[0] == "deepod_mnp"]


def test_the_import_reader_sees_the_known_arrows():
    pairs = {(src, dst) for src, dst, _ in OURS}
    assert ("deepod_mnp.models.mnp", "deepod_mnp.base") in pairs
    assert ("deepod_mnp.models.mnp", "deepod_mnp.deepod_tabular.mnp") in pairs
    assert ("deepod_mnp.base", "deepod_mnp.persistence") in pairs  # `from deepod_mnp import persistence`
    assert ("deepod_mnp.models.select", "deepod_mnp.registry") in pairs  # inside a function
    assert len(SOURCES) > 20


@pytest.mark.parametrize("src", sorted({s for s, _, _ in OURS}))
def test_only_allowed_arrows(src):
    part = part_of(src)
    assert part in ALLOWED, f"{src} is in no part of the architecture ({part}); add it to CONTRIBUTING.md"
    bad = [(dst, line) for s, dst, line in OURS
           if s == src and part_of(dst) != part and part_of(dst) not in ALLOWED[part]]
    assert not bad, f"{src} ({part}) may import only {sorted(ALLOWED[part])}, but imports {bad}"


@pytest.mark.parametrize("part, libraries", [("method", METHOD_LIBRARIES),
                                             ("deepod_tabular", DEEPOD_TABULAR_LIBRARIES)])
def test_method_imports_only_itself_and_numeric_libraries(part, libraries):
    """``method/`` and the DeepOD-idiom modules import nothing of ours but themselves (and, for
    ``method/``, the DeepOD-idiom module whose functions it batches), and only the numeric libraries
    (DeepOD too, for the latter): what DeepOD receives needs nothing else."""
    stdlib = set(sys.stdlib_module_names)
    checked = 0
    for src, dst, line in ARROWS:
        if part_of(src) != part or not src.startswith("deepod_mnp."):
            continue
        checked += 1
        top = dst.split(".")[0]
        if top == "deepod_mnp":
            assert part_of(dst) in {part} | ALLOWED[part], f"{src}:{line} imports {dst}"
        else:
            assert top in stdlib | libraries | {"__future__"}, f"{src}:{line} imports {dst}"
    assert checked > 3


def test_nothing_imports_the_cli():
    assert [(s, line) for s, dst, line in OURS if part_of(dst) == "cli" and part_of(s) != "cli"] == []


def test_runtime_never_imports_tools_or_upstream():
    """Nothing of the package, the CLI included, imports the release tooling (``tools/upstream/``)."""
    for src, dst, line in ARROWS:
        assert dst.split(".")[0] != "tools", f"{src}:{line} imports {dst}"
        assert part_of(dst) != "upstream" or dst.split(".")[0] != "deepod_mnp", f"{src}:{line} imports {dst}"


def test_importing_the_package_loads_no_tooling():
    """The static import closure of ``deepod_mnp`` holds no CLI, benchmark or release tool."""
    graph: dict[str, set[str]] = {}
    for src, dst, _ in OURS:
        graph.setdefault(src, set()).add(dst)
    seen, stack = set(), ["deepod_mnp"]
    while stack:
        mod = stack.pop()
        if mod not in seen:
            seen.add(mod)
            stack += graph.get(mod, ())
    assert {part_of(m) for m in seen} <= {"package", "models", "base", "deepod_tabular", "method", "util",
                                          "registry", "plugin", "model_selection"}


def test_detectors_do_not_import_each_other():
    models = {s for s, _, _ in OURS if part_of(s) == "models" and not s.endswith("models")}
    for src, dst, line in OURS:
        if src in models:
            assert dst not in models - {src}, f"{src}:{line} imports the detector {dst}"


def test_each_equation_is_in_one_place_in_the_method():
    """Every ``# Eq. N`` comment stands once, in DeepOD's MNP module; nothing writes an equation again."""
    import re

    seen: dict[str, list[str]] = {}
    for path in SOURCES:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for eq in re.findall(r"# Eq\. (\d+)\b", line):
                seen.setdefault(eq, []).append(f"{module_name(path)}:{n}")
    assert sorted(seen, key=int) == [str(i) for i in range(1, 14)]
    for eq, places in seen.items():
        assert len(places) == 1 and places[0].startswith("deepod_mnp.deepod_tabular.mnp:"), (eq, places)
