"""DeepOD ``main``'s requirements made installable on current stacks: the "pin fix", a patch of its own.

DeepOD ``main`` declares ``torch>=1.10.0,<1.13.1`` and ``ray==2.6.1`` and imports
ray at the top of ``deepod/core/base_model.py`` and of three models. No resolver
combines ``torch<1.13.1`` with torch 2, ray 2.6.1 does not run on NumPy 2, and
the ray API DeepOD calls (``ray.air.Checkpoint.from_dict``, ``ray.air.session``)
is gone from current ray (``from ray.air import Checkpoint`` fails on ray 2.60).
Ray serves only the hyper-parameter search (``fit_auto_hyper`` and the models'
``_training_ray``/``set_tuned_params``), so the fix makes it optional rather
than pinning another ray: its imports move into the functions that use them,
and ``ray==2.6.1`` moves from ``install_requires`` into an extra, ``tune``.
Besides, ``torch<1.13.1`` is dropped, and DeepOD's own Transformer encoder
layers accept the ``is_causal`` argument that torch 2 passes them.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from tools.upstream.manifest import UpstreamError
from tools.upstream.source import newline, read_text

RAY_EXTRA = "tune"
_REQ = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*?)\s*$")


def fix_requirements(text: str) -> tuple[str, list[str], str | None]:
    """``requirements.txt`` without the torch upper bound and without ray; also (notes, ray's line)."""
    nl = newline(text)
    out, notes, ray_line = [], [], None
    for line in text.splitlines():
        m = _REQ.match(line)
        name = m.group(1).lower().replace("-", "_") if m and not line.lstrip().startswith("#") else ""
        if name == "torch":
            clauses = [c.strip() for c in m.group(2).split(",") if c.strip()]
            keep = [c for c in clauses if not c.startswith(("<", "=="))] or [">=1.10.0"]
            new = f"{m.group(1)}{','.join(keep)}"
            if new != line:
                notes.append(f"`{line.strip()}` -> `{new}`: no resolver combines torch<1.13.1 with torch 2.")
            line = new
        elif name.startswith("ray"):
            ray_line = line.strip()
            notes.append(f"`{ray_line}` moves to the `{RAY_EXTRA}` extra (`pip install "
                         f"deepod[{RAY_EXTRA}]`): "
                         "only the hyper-parameter search uses ray; ray 2.6.1 does not run on NumPy 2 and "
                         "current ray lacks `ray.air.Checkpoint`.")
            continue
        out.append(line)
    return nl.join(out) + (nl if text.endswith(("\n", "\r")) else ""), notes, ray_line


def fix_setup(text: str, ray_line: str) -> str:
    """``setup.py``: an ``extras_require`` with ray, after ``install_requires``."""
    if "extras_require" in text:
        raise UpstreamError("setup.py already has extras_require; add ray to it by hand")
    lines = text.splitlines(keepends=True)
    idx = next((i for i, line in enumerate(lines) if line.strip().startswith("install_requires=")), None)
    if idx is None:
        raise UpstreamError("setup.py: no install_requires= line")
    indent = lines[idx][:len(lines[idx]) - len(lines[idx].lstrip())]
    lines.insert(idx + 1, f"{indent}extras_require={{'{RAY_EXTRA}': ['{ray_line}']}},{newline(text)}")
    return "".join(lines)


def lazy_ray_imports(text: str, path: str) -> str:
    """Move a module's top-level ``ray`` imports into the functions that use the names they bind."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    nl = newline(text)
    ray_imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) and (
        (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "ray")
        or (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "ray" for a in n.names)))]
    if not ray_imports:
        return text
    statement_of = {}  # bound name -> the import statement that binds it
    for node in ray_imports:
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            if isinstance(node, ast.ImportFrom):
                statement_of[bound] = f"from {node.module} import {alias.name}" + (
                    f" as {alias.asname}" if alias.asname else "")
            else:
                statement_of[bound] = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    needs: dict[int, tuple[ast.FunctionDef, set[str]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in statement_of:
            scope, outermost = node, None
            while id(scope) in parents:
                scope = parents[id(scope)]
                if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    outermost = scope
            if outermost is None:
                raise UpstreamError(f"{path}:{node.lineno}: `{node.id}` (ray) is used outside a function")
            needs.setdefault(id(outermost), (outermost, set()))[1].add(node.id)
    inserts = []
    for func, names in needs.values():
        body = func.body
        has_doc = (len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                   and isinstance(body[0].value.value, str))
        first = body[1] if has_doc else body[0]
        anchor = lines[first.lineno - 1]
        indent = anchor[:len(anchor) - len(anchor.lstrip())]
        statements = _merged(sorted({statement_of[n] for n in names}))
        inserts.append((first.lineno - 1, "".join(f"{indent}{s}{nl}" for s in statements)))
    removals = [(n.lineno - 1, n.end_lineno) for n in ray_imports]
    edits = [(start, end, "") for start, end in removals] + [(at, at, new) for at, new in inserts]
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[start:end] = [new] if new else []
    return "".join(lines)


def _merged(statements: list[str]) -> list[str]:
    """``from m import a`` and ``from m import b`` -> ``from m import a, b``."""
    names: dict[str, list[str]] = {}
    out = []
    for statement in statements:
        m = re.match(r"from (\S+) import (.+)$", statement)
        if m is None:
            out.append(statement)
        else:
            names.setdefault(m.group(1), []).append(m.group(2))
    return out + [f"from {module} import {', '.join(n)}" for module, n in names.items()]


def accept_is_causal(text: str) -> str:
    """Encoder layers' ``forward(self, src, src_mask, src_key_padding_mask)`` also take ``is_causal``.

    From torch 2.0 ``torch.nn.TransformerEncoder`` calls each layer with
    ``is_causal=``, a hint that ``src_mask`` is causal; DeepOD's own layers
    (``deepod/core/networks/ts_network_transformer.py``) do not take it and fail
    with ``TypeError``. The hint is optional: the layers keep applying the mask
    they are given.
    """
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    inserts = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.FunctionDef) and node.name == "forward"):
            continue
        names = [a.arg for a in node.args.args]
        if "src_key_padding_mask" not in names or "is_causal" in names or not node.args.defaults:
            continue
        last, default = node.args.args[-1], node.args.defaults[-1]
        new = ", is_causal: bool = False" if last.annotation is not None else ", is_causal=False"
        inserts.append((default.end_lineno - 1, default.end_col_offset, new))
    for line, col, new in sorted(inserts, reverse=True):
        raw = lines[line].encode("utf-8")
        lines[line] = (raw[:col] + new.encode("utf-8") + raw[col:]).decode("utf-8")
    return "".join(lines)


def build_pin_fix(root: Path) -> dict[str, Any]:
    """The pin fix's ``old``/``new`` texts of DeepOD's files, and notes on each change."""
    req = root / "requirements.txt"
    if not req.is_file():
        raise UpstreamError(f"{root} has no requirements.txt; the pin fix targets DeepOD's main branch")
    old: dict[str, str | None] = {"requirements.txt": read_text(req)}
    new_req, notes, ray_line = fix_requirements(old["requirements.txt"])
    new = {"requirements.txt": new_req}
    if ray_line is not None:
        old["setup.py"] = read_text(root / "setup.py")
        new["setup.py"] = fix_setup(old["setup.py"], ray_line)
        for path in sorted(p.relative_to(root).as_posix() for p in (root / "deepod").rglob("*.py")):
            text = read_text(root / path)
            if re.search(r"^(from|import) ray\b", text, flags=re.M):
                old[path], new[path] = text, lazy_ray_imports(text, path)
        moved = [p for p in new if p.endswith(".py") and p != "setup.py"]
        notes.append(f"ray is imported where it is used, in {', '.join(f'`{p}`' for p in moved)}, so "
                     "`import deepod` works without it.")
    layers = "deepod/core/networks/ts_network_transformer.py"
    if (root / layers).is_file():
        text = read_text(root / layers)
        fixed = accept_is_causal(text)
        if fixed != text:
            old[layers], new[layers] = text, fixed
            notes.append(f"the encoder layers of `{layers}` take torch 2's `is_causal` argument, which "
                         "`torch.nn.TransformerEncoder` passes them from torch 2.0 (a hint about the mask "
                         "they apply as before); without it DeepSADTS and the other Transformer models fail "
                         "with `TypeError`, and so does `test_dsad`.")
    return {"old": old, "new": new, "notes": notes}
