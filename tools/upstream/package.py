"""The MNP subpackage DeepOD receives: our modules, copied, with their imports of deepod_mnp made relative.

Each file of ``deepod/models/tabular/mnp/`` is one of our modules (see
:data:`~tools.upstream.manifest.MODULES`); the only other changes are the few
listed in :data:`~tools.upstream.manifest.EDITS` and
:data:`~tools.upstream.manifest.DROPS`, and imports those leave unused.
"""
from __future__ import annotations

import ast
import re
import string
import textwrap
from pathlib import Path

import deepod_mnp
from tools.upstream.manifest import (
    DROPS,
    EDITS,
    MODEL_MODULE,
    MODULES,
    PAPER_TITLE,
    TARGET_DIR,
    TARGET_PACKAGE,
    TEXT_REPLACEMENTS,
    ReplaceMethod,
    UpstreamError,
)
from tools.upstream.source import read_text

PACKAGE = "deepod_mnp"
TEMPLATES = Path(__file__).resolve().parent / "templates"
_PACKAGE_REF = re.compile(rf"\b{PACKAGE}((?:\.[A-Za-z_]\w*)*)")


def module_path(module: str) -> Path:
    """The source file of one of our modules."""
    return Path(deepod_mnp.__file__).resolve().parent.parent / (module.replace(".", "/") + ".py")


def _stem(module: str) -> str:
    return MODULES[module][:-len(".py")]


def _absolute(node: ast.ImportFrom, module: str) -> str:
    """The absolute module a ``from ... import`` names, relative imports resolved against ``module``."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")[:-node.level]
    return ".".join(parts + ([node.module] if node.module else []))


def _is_ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _line_span(source_lines: list[str], node: ast.stmt) -> tuple[int, int, str]:
    """(first line index, end line index exclusive, indentation) of a statement alone on its lines."""
    first = source_lines[node.lineno - 1]
    indent = first[:len(first) - len(first.lstrip())]
    return node.lineno - 1, node.end_lineno, indent


def _from_line(indent: str, module: str, names: list[str]) -> str:
    line = f"{indent}from {module} import {', '.join(names)}"
    if len(line) <= 110:
        return line + "\n"
    body = "".join(f"{indent}    {n},\n" for n in names)
    return f"{indent}from {module} import (\n{body}{indent})\n"


def _rewritten_import(node: ast.stmt, module: str, indent: str) -> str | None:
    """The relative import replacing one of ours, or None when ``node`` imports nothing of ours."""
    if isinstance(node, ast.Import):
        if not any(_is_ours(a.name) for a in node.names):
            return None
        raise UpstreamError(f"{module}:{node.lineno}: write `from {PACKAGE}... import ...` so that the "
                            "import can be made relative")
    absolute = _absolute(node, module)
    if not _is_ours(absolute):
        return None
    names = [a.name + (f" as {a.asname}" if a.asname else "") for a in node.names]
    if absolute in MODULES:  # from deepod_mnp.losses import MNPLoss
        return _from_line(indent, f".{_stem(absolute)}", names)
    out = []
    for alias in node.names:  # from deepod_mnp import losses [as l]
        full = f"{absolute}.{alias.name}"
        if full not in MODULES:
            raise UpstreamError(f"{module}:{node.lineno} imports {full}, which does not go upstream; "
                                "add its module to MODULES in tools/upstream/manifest.py")
        bound, target = alias.asname or alias.name, _stem(full)
        out.append(f"{indent}from . import {target}" + (f" as {bound}" if bound != target else "") + "\n")
    return "".join(out)


def _rewrite_imports(source: str, module: str) -> str:
    lines = source.splitlines(keepends=True)
    replacements = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            start, end, indent = _line_span(lines, node)
            new = _rewritten_import(node, module, indent)
            if new is not None:
                replacements.append((start, end, new))
    for start, end, new in sorted(replacements, reverse=True):
        lines[start:end] = [new]
    return "".join(lines)


def _find_def(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.ClassDef:
    scope: list[ast.stmt] = tree.body
    node = None
    for part in qualname.split("."):
        node = next((n for n in scope if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part),
                    None)
        if node is None:
            raise UpstreamError(f"{qualname} not found; update DROPS in tools/upstream/manifest.py")
        scope = node.body
    return node


def _drop(source: str, qualname: str, replacement: str = "") -> str:
    """Remove a method (with its decorators and the blank lines after it), or put ``replacement`` there."""
    node = _find_def(ast.parse(source), qualname)
    lines = source.splitlines(keepends=True)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    end = node.end_lineno
    if replacement:
        indent = lines[start][:len(lines[start]) - len(lines[start].lstrip())]
        lines[start:end] = [textwrap.indent(textwrap.dedent(replacement).rstrip("\n") + "\n", indent)]
        return "".join(lines)
    while end < len(lines) and not lines[end].strip():
        end += 1
    del lines[start:end]
    return "".join(lines)


def _used_names(tree: ast.Module) -> set[str]:
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    for node in tree.body:  # names exported through __all__ count as used
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            used |= {e.value for e in getattr(node.value, "elts", []) if isinstance(e, ast.Constant)}
    return used


def prune_imports(source: str) -> tuple[str, list[str]]:
    """Drop top-level imports that nothing uses any more; return the text and what was dropped."""
    tree = ast.parse(source)
    used = _used_names(tree)
    lines = source.splitlines(keepends=True)
    dropped, replacements = [], []
    for node in tree.body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or getattr(node, "module", "") == "__future__":
            continue
        keep = [a for a in node.names if (a.asname or a.name).split(".")[0] in used]
        if len(keep) == len(node.names):
            continue
        dropped += [a.name for a in node.names if a not in keep]
        start, end, indent = _line_span(lines, node)
        names = [a.name + (f" as {a.asname}" if a.asname else "") for a in keep]
        if not keep:
            new = ""
        elif isinstance(node, ast.Import):
            new = f"{indent}import {', '.join(names)}\n"
        else:
            new = _from_line(indent, "." * node.level + (node.module or ""), names)
        replacements.append((start, end, new))
    for start, end, new in sorted(replacements, reverse=True):
        lines[start:end] = [new]
    return "".join(lines), dropped


def _replace_mentions(text: str, module: str) -> str:
    """``deepod_mnp[.module][.name]`` in docstrings and comments -> where it lives in DeepOD."""
    def repl(match: re.Match) -> str:
        parts = [p for p in match.group(1).split(".") if p]
        for n in range(len(parts), 0, -1):
            ours = ".".join([PACKAGE, *parts[:n]])
            if ours in MODULES:
                return ".".join([TARGET_PACKAGE, _stem(ours), *parts[n:]])
            if any(m.startswith(ours + ".") for m in MODULES):  # a package of ours that goes upstream
                return ".".join([TARGET_PACKAGE, *parts[n:]])
        if parts:
            raise UpstreamError(f"{module} mentions `{match.group(0)}`, which does not go upstream; reword "
                                "that docstring or comment, or add the module to MODULES")
        return TARGET_PACKAGE

    for old, new in TEXT_REPLACEMENTS.items():
        text = text.replace(old, new)
    return _PACKAGE_REF.sub(repl, text)


def upstream_source(module: str) -> tuple[str, list[str]]:
    """The upstream copy of one of our modules, and notes on what differs from ours."""
    text = read_text(module_path(module))
    notes = []
    for edit in (e for e in EDITS if e.module == module):
        count = text.count(edit.old)
        if count != 1:
            raise UpstreamError(f"the edit of {module} ({edit.why}) expects its text once, found it {count} "
                                f"times; update EDITS in tools/upstream/manifest.py:\n{edit.old}")
        text = text.replace(edit.old, edit.new)
        notes.append(f"{MODULES[module]}: {edit.why}.")
    for drop in (d for d in DROPS if d.module == module):
        if isinstance(drop, ReplaceMethod):
            text = _drop(text, drop.qualname, read_text(TEMPLATES / drop.template))
            notes.append(f"{MODULES[module]}: `{drop.qualname}` is templates/{drop.template}: {drop.why}.")
        else:
            text = _drop(text, drop.qualname)
            notes.append(f"{MODULES[module]}: no `{drop.qualname}`: {drop.why}.")
    text = _rewrite_imports(text, module)
    text, dropped = prune_imports(text)
    if dropped:
        notes.append(f"{MODULES[module]}: imports left unused by the above dropped ({', '.join(dropped)}).")
    return _replace_mentions(text, module).rstrip("\n") + "\n", notes  # no blank lines at the end


def render_init() -> str:
    """The subpackage's ``__init__.py``: the paper, where the code comes from, and ``MNP`` only."""
    template = string.Template(read_text(TEMPLATES / "mnp__init__.py.in"))
    return template.substitute(title=PAPER_TITLE, version=deepod_mnp.__version__,
                               model=_stem(MODEL_MODULE))


def build_package() -> tuple[dict[str, str], list[str]]:
    """``{path in DeepOD's tree: text}`` of the subpackage, and notes on the upstream edits."""
    files = {f"{TARGET_DIR}/__init__.py": render_init()}
    notes: list[str] = []
    for module, filename in MODULES.items():
        files[f"{TARGET_DIR}/{filename}"], module_notes = upstream_source(module)
        notes += module_notes
    return files, notes
