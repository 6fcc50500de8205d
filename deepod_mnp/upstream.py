"""``deepod-mnp upstream``: MNP as a ready-to-merge pull request against DeepOD.

:func:`build_upstream` writes, from this package's own source, the files a DeepOD
pull request needs, laid out as DeepOD's tree:

* ``deepod/models/tabular/mnp.py``: one module with :class:`MNP` and everything it
  needs (networks, losses, prototypes, sampling, DWA, input checks), assembled from
  our modules with :mod:`ast`: imports of this package are removed, references like
  ``losses.reconstruction_error`` become ``reconstruction_error``, the remaining
  imports are merged at the top, and the result is checked (it imports only the
  standard library and DeepOD's own dependencies, every global name resolves,
  nothing of this package is left);
* the ``MNP`` exports in ``deepod/models/tabular/__init__.py`` and ``deepod/models/__init__.py``;
* ``deepod/test/test_mnp.py`` in the unittest style of DeepOD's ``test_devnet.py``;
* the README model-table row and reference (and the docs API entry and BibTeX
  record when the DeepOD source has ``docs/``);
* ``deepod-mnp.patch``: a git-style unified diff of all of it against the released
  DeepOD sources, ``PULL_REQUEST.md`` (a description to paste) and ``pin-fix/``
  (relaxing DeepOD 0.4.1's ``torch<1.13.1`` pin, with ``EVIDENCE.md``).

Our modules stay the single source: nothing here copies their code, so the
generated module follows every change to them.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import difflib
import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import symtable
import sys
import sysconfig
import tarfile
import tempfile
import textwrap
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = "deepod_mnp"
PACKAGE_DIR = Path(__file__).resolve().parent
ENTRY_MODULE = "models.mnp"
# Modules that never go upstream: DeepOD gets the detector, not our tooling.
EXCLUDED_MODULES = frozenset({"__init__", "__main__", "models.anoonly", "method.anoonly", "benchmark", "cli",
                              "data", "datasets", "deepod_plugin", "registry", "upstream"})
DEEPOD_VERSION = "0.4.1"
TARGET_MODULE = "deepod.models.tabular.mnp"
TARGET_PATH = "deepod/models/tabular/mnp.py"
TABULAR_INIT = "deepod/models/tabular/__init__.py"
MODELS_INIT = "deepod/models/__init__.py"
TEST_PATH = "deepod/test/test_mnp.py"
README = "README.rst"
DOCS_API = "docs/api_reference.tabular.rst"
DOCS_BIB = "docs/zreferences.bib"
PATCH_NAME = "deepod-mnp.patch"
# Top-level modules the generated code may import besides the standard library:
# DeepOD's install_requires (numpy, scipy, scikit_learn, pandas, torch, tqdm) and DeepOD.
DEEPOD_RUNTIME_MODULES = frozenset({"numpy", "scipy", "sklearn", "pandas", "torch", "tqdm", "deepod"})
# Budget of the generated DeepOD unit test (each setUp fits one detector).
TEST_PARAMS = {"epochs": 10, "epoch_steps": 8, "pretrain_epochs": 1, "n_prototypes": 2, "n_ensemble": 1}
# DeepOD's own tests run for EVIDENCE.md: two weakly supervised tabular models, and MNP's.
EVIDENCE_TESTS = ("deepod.test.test_rosas", "deepod.test.test_feawad", "deepod.test.test_mnp")

PAPER_TITLE = "Multi-Normal Prototypes Learning for Weakly Supervised Anomaly Detection"
PAPER_KEY = "Dong2024MNP"
PAPER_ROW = f"MNP, arXiv, 2024, weakly-supervised, {PAPER_TITLE} [#{PAPER_KEY}]_"
PAPER_REFERENCE = f'.. [#{PAPER_KEY}] Dong, Zhijin, et al. "{PAPER_TITLE}". arXiv:2408.14498. 2024.'
PAPER_BIBTEX = """@article{dong2024multi,
  title={Multi-Normal Prototypes Learning for Weakly Supervised Anomaly Detection},
  author={Dong, Zhijin and Liu, Hongzhi and Ren, Boyuan and Xiong, Weimin and Wu, Zhonghai},
  journal={arXiv preprint arXiv:2408.14498},
  year={2024}
}
"""

# Prepended to `python -c` code that must run against a DeepOD tree without this package.
ISOLATION_CODE = f"""import sys
class _BlockPackage:
    def find_spec(self, name, path=None, target=None):
        if name == {PACKAGE!r} or name.startswith({PACKAGE + '.'!r}):
            raise ImportError(name + ' is blocked: the DeepOD tree must work on its own')
        return None
sys.meta_path.insert(0, _BlockPackage())
"""


class UpstreamError(RuntimeError):
    """The pull request cannot be generated faithfully from the current source."""


# ============================================================== source handling
def _is_stdlib(name: str) -> bool:
    if hasattr(sys, "stdlib_module_names"):
        return name in sys.stdlib_module_names or name in sys.builtin_module_names
    if name in sys.builtin_module_names:  # pragma: no cover - Python 3.9
        return True
    import importlib.util  # pragma: no cover - Python 3.9

    spec = importlib.util.find_spec(name)  # pragma: no cover
    origin = getattr(spec, "origin", None) or ""  # pragma: no cover
    stdlib = sysconfig.get_paths()["stdlib"]  # pragma: no cover
    return origin in ("built-in", "frozen") or (origin.startswith(stdlib) and "site-packages" not in origin)


def _read(path: Path) -> str:
    """Text with its line endings untouched (DeepOD's README uses CRLF)."""
    return path.read_bytes().decode("utf-8")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


@dataclass
class _Import:
    """One hoisted top-level import: ``import module [as asname]`` or ``from module import name``."""

    module: str
    name: str | None = None
    asname: str | None = None

    @property
    def binding(self) -> str:
        if self.asname:
            return self.asname
        return self.name if self.name is not None else self.module.split(".")[0]

    def key(self) -> tuple:
        return (self.module, self.name, self.asname)

    def resolve(self) -> Any:
        obj = importlib.import_module(self.module)
        if self.name is None:
            return obj if self.asname else importlib.import_module(self.module.split(".")[0])
        try:
            return getattr(obj, self.name)
        except AttributeError:
            return importlib.import_module(f"{self.module}.{self.name}")


@dataclass
class _Module:
    """One of our modules being merged, with the edits that turn it into a section."""

    name: str
    path: Path
    source: str
    tree: ast.Module
    deps: list[str] = field(default_factory=list)
    module_aliases: dict[str, str] = field(default_factory=dict)  # local alias -> our module
    package_aliases: set[str] = field(default_factory=set)  # `import deepod_mnp.x` binds these
    name_aliases: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name)
    imports: list[_Import] = field(default_factory=list)
    future: list[str] = field(default_factory=list)
    docstring: str = ""
    edits: list[tuple[int, int, str]] = field(default_factory=list)
    bound: set[str] = field(default_factory=set)
    binding_table: dict[str, _Binding] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lines = self.source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, lineno: int, col: int) -> int:
        """Character offset of an AST position (``col`` counts UTF-8 bytes)."""
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),
                self.offset(node.end_lineno, node.end_col_offset))

    def remove_lines(self, node: ast.stmt, replacement: str = "") -> None:
        """Drop the whole lines of a statement that stands alone on them."""
        start = self.starts[node.lineno - 1]
        end = self.starts[node.end_lineno]
        before = self.source[start:self.offset(node.lineno, node.col_offset)]
        after = self.source[self.offset(node.end_lineno, node.end_col_offset):end]
        if before.strip() or (after.strip() and not after.strip().startswith("#")):
            raise UpstreamError(f"{self.path.name}:{node.lineno}: put this statement on lines of its own "
                                "so that it can be moved.")
        self.edits.append((start, end, replacement and before + replacement + "\n"))

    def where(self, node: ast.AST) -> str:
        return f"{self.path.name}:{getattr(node, 'lineno', '?')}"


def _internal_module(node: ast.ImportFrom) -> tuple[bool, str | None]:
    """(is this an import of our package, the submodule named after ``from``)."""
    if node.level:
        if node.level > 1:
            raise UpstreamError(f"relative import with level {node.level} is not supported")
        return True, node.module
    if node.module == PACKAGE:
        return True, None
    if node.module and node.module.startswith(PACKAGE + "."):
        return True, node.module[len(PACKAGE) + 1:]
    return False, None


def _module_path(package_dir: Path, name: str) -> Path:
    """``models.mnp`` -> ``package_dir/models/mnp.py``."""
    return package_dir.joinpath(*name.split(".")).with_suffix(".py")


def _check_module_name(mod: _Module, name: str, node: ast.AST, package_dir: Path) -> str:
    if name in EXCLUDED_MODULES or name.split(".")[0] in EXCLUDED_MODULES \
            or not _module_path(package_dir, name).is_file():
        raise UpstreamError(
            f"{mod.where(node)} imports {PACKAGE}.{name}, which cannot go into the one upstream module "
            f"(only single-file modules outside {sorted(EXCLUDED_MODULES)} can).")
    return name


def _scan_imports(mod: _Module, package_dir: Path) -> None:
    """Record our-package imports (dependencies and aliases) and the edits that drop them."""
    top = set(map(id, mod.tree.body))
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.ImportFrom):
            internal, sub = _internal_module(node)
            if node.module == "__future__" and id(node) in top:
                mod.future += [a.name for a in node.names]
                mod.remove_lines(node)
                continue
            if not internal:
                if id(node) in top:
                    mod.imports += [_Import(node.module, a.name, a.asname) for a in node.names]
                    if node.level or any(a.name == "*" for a in node.names):
                        raise UpstreamError(f"{mod.where(node)}: star or relative imports cannot be merged.")
                    mod.remove_lines(node)
                continue
            for alias in node.names:
                if alias.name == "*":
                    raise UpstreamError(f"{mod.where(node)}: `import *` from {PACKAGE} cannot be resolved.")
                if sub is None:
                    target = _check_module_name(mod, alias.name, node, package_dir)
                    mod.module_aliases[alias.asname or alias.name] = target
                else:
                    target = _check_module_name(mod, sub, node, package_dir)
                    mod.name_aliases[alias.asname or alias.name] = (target, alias.name)
                if target not in mod.deps:
                    mod.deps.append(target)
        elif isinstance(node, ast.Import):
            ours = [a for a in node.names if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
            if not ours:
                if id(node) in top:
                    mod.imports += [_Import(a.name, None, a.asname) for a in node.names]
                    mod.remove_lines(node)
                continue
            if len(ours) != len(node.names):
                raise UpstreamError(f"{mod.where(node)}: split this import into one per line.")
            for alias in ours:
                parts = alias.name.split(".")
                if len(parts) != 2:
                    raise UpstreamError(f"{mod.where(node)}: import a module of {PACKAGE}, not the package.")
                target = _check_module_name(mod, parts[1], node, package_dir)
                if alias.asname:
                    mod.module_aliases[alias.asname] = target
                else:
                    mod.package_aliases.add(PACKAGE)
                if target not in mod.deps:
                    mod.deps.append(target)
        else:
            continue
        if id(node) in top:
            mod.remove_lines(node)
    _drop_nested_internal_imports(mod)


def _is_internal_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return _internal_module(node)[0]
    if isinstance(node, ast.Import):
        return any(a.name == PACKAGE or a.name.startswith(PACKAGE + ".") for a in node.names)
    return False


def _drop_nested_internal_imports(mod: _Module) -> None:
    """Imports of our package inside functions or blocks: the names are global once merged."""
    for parent in ast.walk(mod.tree):
        if parent is mod.tree:
            continue
        for attr in ("body", "orelse", "finalbody"):
            body = getattr(parent, attr, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.AST):
                continue
            internal = [s for s in body if isinstance(s, ast.stmt) and _is_internal_import(s)]
            for i, stmt in enumerate(internal):
                keep_pass = len(internal) == len(body) and i == 0
                mod.remove_lines(stmt, "pass" if keep_pass else "")


def _load_module(name: str, package_dir: Path) -> _Module:
    path = _module_path(package_dir, name)
    source = _read(path)
    tree = ast.parse(source, filename=str(path))
    mod = _Module(name, path, source, tree)
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        mod.docstring = inspect.cleandoc(body[0].value.value)
        mod.remove_lines(body[0])
    _scan_imports(mod, package_dir)
    if "__file__" in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}:
        raise UpstreamError(f"{path.name} uses __file__; package data cannot travel in one DeepOD module.")
    return mod


def _collect_modules(package_dir: Path, entry: str) -> list[_Module]:
    """Our modules the entry module needs, dependencies first (depth-first, in import order)."""
    loaded: dict[str, _Module] = {}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise UpstreamError(f"import cycle through {PACKAGE}.{name}")
        visiting.add(name)
        loaded[name] = _load_module(name, package_dir)
        for dep in loaded[name].deps:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    visit(entry)
    return [loaded[n] for n in order]


def _all_symbols(table: symtable.SymbolTable) -> list[symtable.SymbolTable]:
    out = [table]
    for child in table.get_children():
        out += _all_symbols(child)
    return out


def _global_refs(source: str, filename: str) -> tuple[set[str], set[str]]:
    """(names bound at module level, names any scope reads from the module or builtins)."""
    top = symtable.symtable(source, filename, "exec")
    bound = {s.get_name() for s in top.get_symbols()
             if s.is_assigned() or s.is_imported() or s.is_namespace()}
    refs = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    for table in _all_symbols(top)[1:]:
        if table.get_type() == "function" or table.get_type() == "class":
            refs |= {s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced()}
        else:  # pragma: no cover - other scopes (type parameters) in recent Pythons
            refs |= {s.get_name() for s in table.get_symbols() if s.is_global()}
    return bound, refs


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
           ast.DictComp, ast.GeneratorExp)


def _scope_bindings(scope: ast.AST) -> set[str]:
    """Names bound directly in a function, lambda, class or comprehension scope."""
    names: set[str] = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = scope.args
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None:
                names.add(a.arg)
        roots = scope.body if isinstance(scope.body, list) else [scope.body]
    elif isinstance(scope, ast.ClassDef):
        roots = scope.body
    else:
        roots = [g.target for g in scope.generators]
    declared_global: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global |= set(node.names)
        elif type(node).__name__ in ("MatchAs", "MatchStar") and getattr(node, "name", None):
            names.add(node.name)
        stack.extend(ast.iter_child_nodes(node))
    return names - declared_global


def _rewrite_references(mod: _Module, modules: dict[str, _Module]) -> None:
    """``alias.name`` -> ``name`` for aliases of our modules; bare uses of an alias are errors."""
    parents = {id(child): parent for parent in ast.walk(mod.tree) for child in ast.iter_child_nodes(parent)}
    consumed: set[int] = set()

    def rewrite(node: ast.Attribute, target: str, value: ast.AST) -> None:
        if node.attr not in modules[target].bound:
            raise UpstreamError(f"{mod.where(node)}: {target}.{node.attr} is not a module-level name of "
                                f"{target}.py.")
        scope = parents.get(id(node))
        first_function_seen = False
        while scope is not None:
            if isinstance(scope, _SCOPES):
                if isinstance(scope, ast.ClassDef) and first_function_seen:
                    scope = parents.get(id(scope))
                    continue  # class bodies are not visible from their methods
                if node.attr in _scope_bindings(scope):
                    raise UpstreamError(
                        f"{mod.where(node)}: {target}.{node.attr} would become `{node.attr}`, which a local "
                        "name of the same spelling shadows there; rename the local name.")
                first_function_seen = first_function_seen or not isinstance(scope, ast.ClassDef)
            scope = parents.get(id(scope))
        start, end = mod.span(node)
        mod.edits.append((start, end, node.attr))
        consumed.add(id(value))

    for node in ast.walk(mod.tree):
        if not isinstance(node, ast.Attribute) or id(node) in consumed:
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in mod.module_aliases:
            rewrite(node, mod.module_aliases[value.id], value)
        elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) \
                and value.value.id in mod.package_aliases:
            rewrite(node, value.attr, value)
            consumed.add(id(value.value))
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Name) and id(node) not in consumed and (
                node.id in mod.module_aliases or node.id in mod.package_aliases):
            raise UpstreamError(f"{mod.where(node)}: `{node.id}` (a module of {PACKAGE}) is used as an "
                                "object; only `module.name` references can be merged.")


@dataclass
class _Binding:
    kind: str  # 'import' or 'def'
    key: tuple
    module: str
    imp: _Import | None = None


def _bindings(mod: _Module, modules: dict[str, _Module]) -> dict[str, _Binding]:
    """What each module-level name of ``mod`` means, in terms valid across the merged module."""
    out: dict[str, _Binding] = {}
    by_binding = {imp.binding: imp for imp in mod.imports}
    for name in mod.bound:
        if name in mod.module_aliases or name in mod.package_aliases or name in mod.future:
            continue
        if name in mod.name_aliases:
            target, orig = mod.name_aliases[name]
            resolved = modules[target].binding_table.get(orig)
            if resolved is None:
                raise UpstreamError(f"{mod.path.name} imports {orig} from {target}.py, where it is not a "
                                    "module-level name.")
            out[name] = resolved
        elif name in by_binding:
            imp = by_binding[name]
            out[name] = _Binding("import", ("import", *imp.key()), mod.name, imp)
        else:
            out[name] = _Binding("def", ("def", mod.name, name), mod.name)
    return out


def _defining_statement(mod: _Module, name: str) -> ast.stmt | None:
    for stmt in mod.tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == name:
            return stmt
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if [t.id for t in targets if isinstance(t, ast.Name)] == [name] and len(targets) == 1:
                return stmt
    return None


def _merge_bindings(mods: list[_Module], modules: dict[str, _Module], notes: list[str]) -> None:
    """Fail when two modules give one name two meanings; drop identical duplicate definitions."""
    merged: dict[str, _Binding] = {}
    for mod in mods:
        mod.binding_table = _bindings(mod, modules)
        for name, binding in sorted(mod.binding_table.items()):
            if name == "__all__":
                stmt = _defining_statement(mod, name)
                if stmt is not None:
                    mod.remove_lines(stmt)
                continue
            seen = merged.get(name)
            if seen is None or seen.key == binding.key:
                merged.setdefault(name, binding)
                continue
            if seen.kind == binding.kind == "import":
                try:
                    same = seen.imp.resolve() is binding.imp.resolve()
                except Exception:  # noqa: BLE001 - unresolvable means not provably the same
                    same = False
                if same:
                    continue
            if seen.kind == binding.kind == "def" and binding.module == mod.name:
                first = _defining_statement(modules[seen.module], name)
                again = _defining_statement(mod, name)
                if first is not None and again is not None and ast.dump(first) == ast.dump(again):
                    mod.remove_lines(again)
                    notes.append(f"`{name}` is defined identically in {seen.module}.py and {mod.name}.py; "
                                 "kept once.")
                    continue
            raise UpstreamError(
                f"`{name}` means different things in {seen.module}.py and {mod.name}.py; in one module it "
                "can have only one meaning. Rename one of them.")
    # A name one module reads from builtins must not become another module's global.
    for mod in mods:
        _, refs = _global_refs(mod.source, str(mod.path))
        for name in sorted(refs - mod.bound):
            if name in merged and merged[name].module != mod.name:
                raise UpstreamError(f"{mod.path.name} uses the builtin `{name}`, which "
                                    f"{merged[name].module}.py redefines at module level; merged, the two "
                                    "would clash.")


def _format_imports(imports: list[_Import], future: list[str]) -> str:
    """isort-style blocks: __future__, standard library, third party, then DeepOD (first party there)."""
    def section(imp: _Import) -> int:
        top = imp.module.split(".")[0]
        if top == "deepod":
            return 3
        return 1 if _is_stdlib(top) else 2

    def name_key(name: str) -> tuple:
        kind = 0 if name.isupper() and len(name) > 1 else (1 if name[:1].isupper() else 2)
        return (kind, name.lower(), name)

    blocks = []
    if future:
        blocks.append([f"from __future__ import {', '.join(sorted(set(future)))}"])
    for sec in (1, 2, 3):
        plain = sorted({(i.module, i.asname) for i in imports if section(i) == sec and i.name is None},
                       key=lambda t: (t[0].lower(), t[1] or ""))
        froms: dict[str, set[str]] = {}
        for i in imports:
            if section(i) == sec and i.name is not None:
                froms.setdefault(i.module, set()).add(i.name + (f" as {i.asname}" if i.asname else ""))
        lines = [f"import {m}" + (f" as {a}" if a else "") for m, a in plain]
        for module in sorted(froms, key=str.lower):
            names = sorted(froms[module], key=lambda n: name_key(n.split(" as ")[0]))
            line = f"from {module} import {', '.join(names)}"
            if len(line) > 100:
                line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
            lines.append(line)
        if lines:
            blocks.append(lines)
    return "\n\n".join("\n".join(b) for b in blocks)


def _apply_edits(mod: _Module) -> str:
    text = mod.source
    last = len(text) + 1
    for start, end, new in sorted(set(mod.edits), key=lambda e: (e[0], e[1]), reverse=True):
        if end > last:
            raise UpstreamError(f"{mod.path.name}: overlapping edits near offset {start}")
        text = text[:start] + new + text[end:]
        last = start
    return text


_PACKAGE_REF = re.compile(rf"\b{PACKAGE}((?:\.[A-Za-z_]\w*)*)")


def _replace_package_refs(text: str, merged: set[str]) -> str:
    """``deepod_mnp[.module][.name]`` in docstrings, comments and strings -> the DeepOD module."""
    def repl(match: re.Match) -> str:
        parts = [p for p in match.group(1).split(".") if p]
        dotted = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]  # longest module name first
        if any(name in EXCLUDED_MODULES for name in dotted):
            raise UpstreamError(f"the merged source mentions `{match.group(0)}`, which does not go upstream; "
                                "reword that docstring or comment.")
        for i, name in zip(range(len(parts), 0, -1), dotted):
            if name in merged or name in ("models", "method"):
                parts = parts[i:]
                break
        return ".".join([TARGET_MODULE, *parts])

    return _PACKAGE_REF.sub(repl, text)


def _section_comment(mod: _Module) -> str:
    rule = "# " + "-" * 76
    lines = (mod.docstring or f"{mod.name}").splitlines()
    body = [f"# {mod.name}: {lines[0]}".rstrip()] + [f"# {line}".rstrip() for line in lines[1:]]
    return "\n".join([rule, *body, rule])


def check_generated_module(source: str) -> list[str]:
    """Check a generated module; return its top-level imported modules or raise :class:`UpstreamError`.

    It must parse, import nothing but the standard library and DeepOD's own
    dependencies (:data:`DEEPOD_RUNTIME_MODULES`), contain no trace of this
    package, resolve every global name and define ``MNP``.
    """
    tree = ast.parse(source, filename=TARGET_PATH)
    tops = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                raise UpstreamError(f"{TARGET_PATH}:{node.lineno}: relative import")
            tops.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
    tops.discard("__future__")
    bad = sorted(t for t in tops if t not in DEEPOD_RUNTIME_MODULES and not _is_stdlib(t))
    if bad:
        raise UpstreamError(f"the generated module imports {bad}, which DeepOD does not depend on "
                            f"(allowed: the standard library and {sorted(DEEPOD_RUNTIME_MODULES)}).")
    if PACKAGE in source:
        raise UpstreamError(f"the generated module still mentions {PACKAGE}.")
    bound, refs = _global_refs(source, TARGET_PATH)
    known = set(dir(builtins)) | {"__file__", "__builtins__", "__annotations__"}
    missing = sorted(refs - bound - known)
    if missing:
        raise UpstreamError(f"the generated module uses undefined names {missing}.")
    if "MNP" not in bound:
        raise UpstreamError("the generated module defines no MNP.")
    return sorted(tops)


def assemble_module(package_dir: str | Path | None = None, entry: str = ENTRY_MODULE,
                    notes: list[str] | None = None) -> str:
    """Assemble our detector and every module it imports into one DeepOD module's source.

    Parameters
    ----------
    package_dir : path, optional
        The package's directory (default: this installed package).
    entry : str
        Module that defines the detector; its dependencies are followed from its imports.
    notes : list, optional
        Receives remarks on what the merge did (duplicates kept once, and so on).

    Returns
    -------
    str
        Source of ``deepod/models/tabular/mnp.py``, checked by :func:`check_generated_module`.
    """
    notes = [] if notes is None else notes
    package_dir = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    if entry == ENTRY_MODULE and not _module_path(package_dir, entry).is_file():
        entry = "detector"  # a flat package (the generator's own tests) keeps its detector in detector.py
    mods = _collect_modules(package_dir, entry)
    modules = {m.name: m for m in mods}
    for mod in mods:
        mod.bound, _ = _global_refs(mod.source, str(mod.path))
    for mod in mods:
        _rewrite_references(mod, modules)
    _merge_bindings(mods, modules, notes)

    futures = sorted({f for m in mods for f in m.future})
    for mod in mods:
        if set(mod.future) != set(futures):
            notes.append(f"{mod.name}.py lacks `from __future__ import {', '.join(futures)}`, which the "
                         "merged module applies to it too.")
    imports: list[_Import] = []
    for mod in mods:
        for imp in mod.imports:
            if imp.key() not in {i.key() for i in imports}:
                imports.append(imp)

    sections = []
    for mod in mods:
        body = _apply_edits(mod).strip("\n")
        aliases = [f"{name} = {orig}" for name, (_, orig) in sorted(mod.name_aliases.items()) if name != orig]
        if aliases:
            body = "\n".join(aliases) + "\n\n\n" + body
        sections.append(_section_comment(mod) + "\n\n\n" + body)

    from deepod_mnp import __version__

    header = textwrap.dedent(f'''\
        # -*- coding: utf-8 -*-
        """
        Weakly-supervised anomaly detection with multiple normal prototypes
        MNP: {PAPER_TITLE} (arXiv, 2024)

        Dong, Zhijin, et al. "{PAPER_TITLE}".
        arXiv:2408.14498. 2024.

        {{provenance}}
        """''')
    provenance = (f"Generated by ``deepod-mnp upstream`` from deepod-mnp {__version__}: its modules "
                  f"{', '.join(m.name for m in mods)} follow one another below, in that order.")
    header = header.replace("{provenance}", "\n".join(textwrap.wrap(provenance, 88)))
    text = header + "\n" + _format_imports(imports, futures) + "\n\n\n" + "\n\n\n".join(sections) + "\n"
    text = _replace_package_refs(text, set(modules))
    check_generated_module(text)
    env_reads = sorted({i + 1 for i, line in enumerate(text.splitlines()) if "os.environ" in line})
    if env_reads:
        notes.append(f"the module reads environment variables (os.environ, lines {env_reads} of "
                     f"{TARGET_PATH}); experiment switches should not go upstream.")
    return text


# ============================================================ DeepOD file patches
def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _add_to_all(text: str, name: str, after: set[str] | None = None) -> str:
    """Insert ``name`` into the ``__all__`` list, after the last entry in ``after`` (else at the end)."""
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            if not isinstance(node.value, (ast.List, ast.Tuple)) or not node.value.elts:
                raise UpstreamError("__all__ is not a literal list")
            elts = node.value.elts
            if any(isinstance(e, ast.Constant) and e.value == name for e in elts):
                return text
            anchors = [e for e in elts if isinstance(e, ast.Constant) and (after is None or e.value in after)]
            anchor = anchors[-1] if anchors else elts[-1]
            lines = text.splitlines(keepends=True)
            line = lines[anchor.end_lineno - 1]
            col = len(line.encode("utf-8")[:anchor.end_col_offset].decode("utf-8"))
            quote = line[col - 1] if line[col - 1] in "'\"" else "'"
            lines[anchor.end_lineno - 1] = line[:col] + f", {quote}{name}{quote}" + line[col:]
            return "".join(lines)
    raise UpstreamError("no __all__ list found")


def _add_import_after(text: str, statement: str, prefix: str) -> str:
    """Insert ``statement`` after the last import line starting with ``prefix``."""
    if statement in text.splitlines():
        return text
    nl = _newline(text)
    lines = text.splitlines(keepends=True)
    idx = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    if not idx:
        raise UpstreamError(f"no import line starting with {prefix!r}")
    i = idx[-1]
    if not lines[i].endswith(("\n", "\r")):
        lines[i] += nl
    lines.insert(i + 1, statement + nl)
    return "".join(lines)


def patch_tabular_init(text: str) -> str:
    """``deepod/models/tabular/__init__.py``: ``from .mnp import MNP`` and ``'MNP'`` in ``__all__``."""
    return _add_to_all(_add_import_after(text, "from .mnp import MNP", "from ."), "MNP")


def patch_models_init(text: str) -> str:
    """``deepod/models/__init__.py``: import MNP with the tabular models and export it after them."""
    tabular = {a.asname or a.name for node in ast.parse(text).body
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepod.models.tabular")
               for a in node.names}
    text = _add_import_after(text, f"from {TARGET_MODULE} import MNP", "from deepod.models.tabular.")
    return _add_to_all(text, "MNP", after=tabular or None)


def patch_readme(text: str) -> str:
    """DeepOD's README.rst: MNP's row in the tabular model table, its reference, the model count."""
    if f"[#{PAPER_KEY}]" in text:
        return text
    nl = _newline(text)
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if "tabular" in line.lower() and "model" in line.lower()]
    table = next((j for i in starts for j in range(i, min(i + 8, len(lines)))
                  if lines[j].lstrip().startswith(".. csv-table::")), None)
    if table is None:
        raise UpstreamError("README: no csv-table of tabular models found")
    j = table + 1
    while j < len(lines) and (not lines[j].strip() or lines[j].lstrip().startswith(":")):
        j += 1
    rows = []
    while j < len(lines) and lines[j].strip():
        rows.append(j)
        j += 1
    if not rows:
        raise UpstreamError("README: the tabular model table has no rows")
    cells = {r: [c.strip() for c in lines[r].split(",")] for r in rows}
    weak = [r for r in rows if len(cells[r]) > 3 and cells[r][3].startswith("weak")]
    last = (weak or rows)[-1]
    indent = lines[last][:len(lines[last]) - len(lines[last].lstrip())]
    refs = [i for i, line in enumerate(lines) if line.startswith(".. [#")]
    row = PAPER_ROW if refs else PAPER_ROW.replace(f" [#{PAPER_KEY}]_", "")
    if refs:
        r = refs[-1]
        if not lines[r].endswith(("\n", "\r")):
            lines[r] += nl
        lines.insert(r + 1, nl + PAPER_REFERENCE + nl)
    lines.insert(last + 1, indent + row + nl)
    out = "".join(lines)
    count = re.compile(r"(DeepOD includes \*\*)(\d+)(\*\*)")
    return count.sub(lambda m: f"{m[1]}{int(m[2]) + 1}{m[3]}", out, count=1)


def patch_docs_api(text: str) -> str:
    """``docs/api_reference.tabular.rst``: ``models.MNP`` in the weakly-supervised autosummary."""
    if re.search(r"^\s+models\.MNP\s*$", text, flags=re.M):
        return text
    nl = _newline(text)
    lines = text.splitlines(keepends=True)
    head = next((i for i, line in enumerate(lines) if line.lower().startswith("weakly")), None)
    if head is None:
        raise UpstreamError("docs: no weakly-supervised section in the API reference")
    entries = []
    for i in range(head + 1, len(lines)):
        if re.match(r"^\s+models\.\w+\s*$", lines[i]):
            entries.append(i)
        elif entries and lines[i].strip() and not lines[i][:1].isspace():
            break
    if not entries:
        raise UpstreamError("docs: no autosummary entries under the weakly-supervised heading")
    last = entries[-1]
    indent = lines[last][:len(lines[last]) - len(lines[last].lstrip())]
    if not lines[last].endswith(("\n", "\r")):
        lines[last] += nl
    lines.insert(last + 1, indent + "models.MNP" + nl)
    return "".join(lines)


def patch_bib(text: str) -> str:
    """``docs/zreferences.bib``: the paper's BibTeX record."""
    if "dong2024multi" in text:
        return text
    nl = _newline(text)
    sep = "" if text.endswith(("\n", "\r")) else nl
    return text + sep + nl + PAPER_BIBTEX.replace("\n", nl)


def render_deepod_test() -> str:
    """``deepod/test/test_mnp.py`` in the style of DeepOD's ``test_devnet.py``."""
    from deepod_mnp.models.mnp import MNP

    accepted = inspect.signature(MNP).parameters
    unknown = sorted(set(TEST_PARAMS) - set(accepted))
    if unknown:
        raise UpstreamError(f"TEST_PARAMS names {unknown}, which MNP no longer accepts.")
    params = ", ".join(f"{k}={v!r}" for k, v in TEST_PARAMS.items())
    return _DEEPOD_TEST.replace("@PARAMS@", params)


_DEEPOD_TEST = '''# -*- coding: utf-8 -*-
from __future__ import division
from __future__ import print_function

import os
import sys
import unittest

# noinspection PyProtectedMember
from numpy.testing import assert_equal
from sklearn.metrics import roc_auc_score
import torch

# temporary solution for relative imports in case pyod is not installed
# if deepod is installed, no need to use the following line
sys.path.append(os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))

from deepod.models.tabular.mnp import MNP
from deepod.utils.data import generate_data
import numpy as np


class TestMNP(unittest.TestCase):
    def setUp(self):
        self.n_train = 200
        self.n_test = 100
        self.contamination = 0.1
        self.roc_floor = 0.8

        self.X_train, self.X_test, self.y_train, self.y_test = generate_data(
            n_train=self.n_train, n_test=self.n_test, n_features=10,
            contamination=self.contamination, random_state=42)

        np.random.seed(42)
        anom_id = np.where(self.y_train == 1)[0]
        known_anom_id = np.random.choice(anom_id, 10, replace=False)
        y_semi = np.zeros_like(self.y_train, dtype=int)
        y_semi[known_anom_id] = 1

        device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.clf = MNP(@PARAMS@,
                       device=device, random_state=42)
        self.clf.fit(self.X_train, y_semi)

    def test_parameters(self):
        assert (hasattr(self.clf, 'decision_scores_') and
                self.clf.decision_scores_ is not None)
        assert (hasattr(self.clf, 'labels_') and
                self.clf.labels_ is not None)
        assert (hasattr(self.clf, 'threshold_') and
                self.clf.threshold_ is not None)

    def test_train_scores(self):
        assert_equal(len(self.clf.decision_scores_), self.X_train.shape[0])

    def test_prediction_scores(self):
        pred_scores = self.clf.decision_function(self.X_test)

        # check score shapes
        assert_equal(pred_scores.shape[0], self.X_test.shape[0])

        # check performance
        auc = roc_auc_score(self.y_test, pred_scores)
        assert (auc >= self.roc_floor), f'auc {auc} does not reach minimum auc standard {self.roc_floor}'

    def test_prediction_labels(self):
        pred_labels = self.clf.predict(self.X_test)
        assert_equal(pred_labels.shape, self.y_test.shape)

    def test_prediction_labels_confidence(self):
        pred_labels, confidence = self.clf.predict(self.X_test,
                                                   return_confidence=True)

        assert_equal(pred_labels.shape, self.y_test.shape)
        assert_equal(confidence.shape, self.y_test.shape)
        assert (confidence.min() >= 0)
        assert (confidence.max() <= 1)

    def tearDown(self):
        pass


if __name__ == '__main__':
    unittest.main()
'''


# ======================================================================== diff
def unified_diff(old: dict[str, str | None], new: dict[str, str]) -> str:
    """A git-style patch (``a/`` and ``b/`` prefixes, new files from /dev/null) of ``old`` -> ``new``."""
    out: list[str] = []
    for path in sorted(new):
        before, after = old.get(path), new[path]
        if before == after:
            continue
        a = before.splitlines(keepends=True) if before is not None else []
        b = after.splitlines(keepends=True)
        out.append(f"diff --git a/{path} b/{path}\n")
        if before is None:
            out.append("new file mode 100644\n")
        fromfile = f"a/{path}" if before is not None else "/dev/null"
        for line in difflib.unified_diff(a, b, fromfile, f"b/{path}", n=3):
            if not line.endswith("\n"):
                line += "\n\\ No newline at end of file\n"
            out.append(line)
    return "".join(out)


def _git_apply_check(patch: str, originals: dict[str, str | None]) -> bool | None:
    """``git apply --check`` of the patch on a copy of the original files (None without git)."""
    git = shutil.which("git")
    if git is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for path, text in originals.items():
            if text is not None:
                _write(Path(tmp, path), text)
        _write(Path(tmp, "p.patch"), patch)
        proc = subprocess.run([git, "apply", "--check", "p.patch"], cwd=tmp, capture_output=True, text=True)
        if proc.returncode:
            raise UpstreamError(f"the generated patch does not apply: {proc.stderr.strip()}")
    return True


# ============================================================= DeepOD's sources
def _pypi_sdist(dest: Path, version: str) -> Path:
    """The sdist from PyPI's simple index (JSON API, PEP 691), its sha256 checked."""
    req = urllib.request.Request("https://pypi.org/simple/deepod/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - fixed https URL
        index = json.load(resp)
    wanted = f"deepod-{version}.tar.gz"
    entry = next((f for f in index.get("files", []) if f.get("filename") == wanted), None)
    if entry is None:
        raise UpstreamError(f"PyPI lists no {wanted}")
    with urllib.request.urlopen(entry["url"], timeout=120) as resp:  # noqa: S310
        data = resp.read()
    digest = entry.get("hashes", {}).get("sha256")
    if digest and hashlib.sha256(data).hexdigest() != digest:
        raise UpstreamError(f"{wanted}: sha256 mismatch")
    path = dest / wanted
    path.write_bytes(data)
    return path


def fetch_deepod_sdist(dest: str | Path, version: str = DEEPOD_VERSION) -> Path:
    """Download DeepOD's released source distribution into ``dest``.

    ``pip download --no-binary :all:`` cannot fetch deepod 0.4.1: pip prepares the
    metadata, and the sdist's ``setup.py`` reads a ``requirements.txt`` the sdist
    does not contain. So the file comes from PyPI's simple index (checked against
    its sha256), and pip is the fallback for indexes that need its configuration.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    errors = []
    try:
        return _pypi_sdist(dest, version)
    except Exception as exc:  # noqa: BLE001 - try pip next
        errors.append(f"PyPI simple index: {exc}")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                           f"deepod=={version}", "-d", str(dest)], capture_output=True, text=True)
    found = sorted(dest.glob(f"deepod-{version}.tar.gz"))
    if found:
        return found[0]
    errors.append(f"pip download: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    raise UpstreamError(f"could not download deepod {version} ({'; '.join(errors)}); pass the sources "
                        "with --deepod-src (an sdist, a checkout or an installed deepod directory).")


def _extract(archive: Path, dest: Path) -> Path:
    if archive.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, **kwargs)  # noqa: S202 - a release archive, filtered where supported
    elif archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
    else:
        raise UpstreamError(f"{archive}: not a .tar.gz, .whl or .zip")
    return _find_root(dest)


def _find_root(path: Path) -> Path:
    """The directory holding the ``deepod`` package."""
    if (path / "deepod" / "__init__.py").is_file():
        return path
    if path.name == "deepod" and (path / "__init__.py").is_file():
        return path.parent
    subdirs = [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []
    for sub in subdirs:
        if (sub / "deepod" / "__init__.py").is_file():
            return sub
    raise UpstreamError(f"{path} holds no deepod package")


def _describe_source(root: Path, origin: str) -> dict[str, Any]:
    """Where the DeepOD sources came from and what they hold.

    The version is the distribution's (PKG-INFO, setup.py): DeepOD 0.4.1's own
    ``deepod/version.py`` still says 0.4.0.
    """
    version = None
    patterns = [(root / "PKG-INFO", r"^Version:\s*(\S+)"),
                (root / "setup.py", r"version\s*=\s*['\"]([^'\"]+)['\"]"),
                (root / "deepod" / "version.py", r"__version__\s*=\s*['\"]([^'\"]+)['\"]")]
    for candidate, pattern in patterns:
        m = re.search(pattern, _read(candidate), flags=re.M) if candidate.is_file() else None
        if m:
            version = m.group(1)
            break
    kind = "sdist/checkout" if (root / "setup.py").is_file() else "installed package"
    return {"origin": origin, "root": str(root), "kind": kind, "version": version,
            "has_readme": (root / README).is_file(), "has_docs": (root / DOCS_API).is_file()}


# ================================================================ torch pin fix
_REQ_LINE = re.compile(r"^(torch)\s*([^;#]*)(.*)$", re.I)


def _relax_torch(spec_line: str) -> str:
    m = _REQ_LINE.match(spec_line.strip())
    if not m:
        return spec_line
    clauses = [c.strip() for c in m.group(2).split(",") if c.strip()]
    keep = [c for c in clauses if not c.startswith(("<", "=="))] or [">=1.10.0"]
    return f"{m.group(1)}{','.join(keep)}{m.group(3)}"


def _released_requirements(root: Path) -> list[str] | None:
    requires = root / "deepod.egg-info" / "requires.txt"
    if requires.is_file():
        return [line for line in _read(requires).splitlines() if line.strip() and not line.startswith("[")]
    pkg_info = root / "PKG-INFO"
    if pkg_info.is_file():
        return [line.split(":", 1)[1].strip() for line in _read(pkg_info).splitlines()
                if line.startswith("Requires-Dist:")]
    return None


def build_pin_fix(root: Path, out: Path) -> dict[str, Any]:
    """``pin-fix/``: relax ``torch<1.13.1`` (and make the sdist buildable) as a patch of its own."""
    old: dict[str, str | None] = {}
    new: dict[str, str] = {}
    notes = []
    req = root / "requirements.txt"
    if req.is_file():
        text = _read(req)
        nl = _newline(text)
        lines = text.splitlines()
        relaxed = [_relax_torch(line) if _REQ_LINE.match(line.strip()) else line for line in lines]
        new_text = nl.join(relaxed) + (nl if text.endswith(("\n", "\r")) else "")
        old["requirements.txt"], new["requirements.txt"] = text, new_text
        if new_text == text:
            notes.append("requirements.txt already allows torch 2; only the release is missing.")
    elif (root / "setup.py").is_file() and "requirements.txt" in _read(root / "setup.py"):
        released = _released_requirements(root)
        if released is None:
            return {"written": [], "notes": ["no requirements found in the source; pin fix skipped"]}
        old["requirements.txt"] = None
        new["requirements.txt"] = "\n".join(_relax_torch(r) if _REQ_LINE.match(r) else r
                                            for r in released) + "\n"
        notes.append("the released sdist lacks requirements.txt, which its setup.py reads, so it cannot "
                     "be built (pip download/install from source fail); the patch adds it, from the "
                     "release's metadata, with the torch pin relaxed.")
    else:
        return {"written": [], "notes": ["no setup.py/requirements.txt in the source (an installed package); "
                                         "pin fix skipped - pass the sdist or a checkout with --deepod-src."]}
    manifest = root / "MANIFEST.in"
    manifest_text = _read(manifest) if manifest.is_file() else None
    if manifest_text is None or "requirements.txt" not in manifest_text:
        old["MANIFEST.in"] = manifest_text
        new["MANIFEST.in"] = (manifest_text or "") + "include requirements.txt\n"
        notes.append("MANIFEST.in includes requirements.txt, so future sdists build.")
    patch = unified_diff(old, new)
    written = []
    if patch:
        _write(out / "pin-fix.patch", patch)
        written.append("pin-fix/pin-fix.patch")
        for path, text in new.items():
            _write(out / path, text)
            written.append(f"pin-fix/{path}")
    return {"written": written, "notes": notes, "patch_lines": patch.count("\n"),
            "torch_requirement": next((_relax_torch(r) for r in new.get("requirements.txt", "").splitlines()
                                       if _REQ_LINE.match(r)), None),
            "released_torch_requirement": next((r for r in (_released_requirements(root) or [])
                                                if _REQ_LINE.match(r)), None)}


# ============================================================ DeepOD test runs
_RUN_TESTS_CODE = ISOLATION_CODE + textwrap.dedent("""
    import json, platform, time, unittest
    import deepod, numpy, scipy, sklearn, pandas, torch
    results = []
    for name in sys.argv[1:]:
        t0 = time.perf_counter()
        suite = unittest.defaultTestLoader.loadTestsFromName(name)
        res = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
        results.append({"module": name, "tests": res.testsRun, "failures": len(res.failures),
                        "errors": len(res.errors), "skipped": len(res.skipped),
                        "seconds": round(time.perf_counter() - t0, 1),
                        "problems": [str(t) + ": " + tb.strip().splitlines()[-1]
                                     for t, tb in res.failures + res.errors]})
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": numpy.__version__, "scipy": scipy.__version__,
                "scikit-learn": sklearn.__version__, "pandas": pandas.__version__,
                "platform": platform.platform()}
    print("@@RESULT@@" + json.dumps({"deepod_file": deepod.__file__, "results": results,
                                     "versions": versions}))
""")


def run_deepod_tests(tree: str | Path, modules: tuple[str, ...] = EVIDENCE_TESTS,
                     timeout: float = 900) -> dict[str, Any]:
    """Run DeepOD unittest modules against ``tree`` (first on the path), with this package blocked."""
    tree = Path(tree)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-c", _RUN_TESTS_CODE, *modules]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")), None)
    if line is None:
        raise UpstreamError(f"DeepOD's tests did not run: {proc.stderr.strip()[-2000:]}")
    result = json.loads(line[len("@@RESULT@@"):])
    if not Path(result["deepod_file"]).resolve().is_relative_to(tree.resolve()):
        raise UpstreamError(f"the tests imported deepod from {result['deepod_file']}, not from {tree}")
    result["ok"] = all(r["failures"] == 0 and r["errors"] == 0 and r["tests"] > 0 for r in result["results"])
    result["log"] = proc.stderr[-4000:]
    return result


def _applied_tree(root: Path, out: Path, files: list[str], dest: Path) -> Path:
    """A copy of DeepOD's package with the generated files in place."""
    shutil.copytree(root / "deepod", dest / "deepod", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for rel in files:
        if rel.startswith("deepod/"):
            _write(dest / rel, _read(out / rel))
    return dest


def _evidence_md(pin: dict[str, Any], evidence: dict[str, Any] | None, command: str) -> str:
    released = pin.get("released_torch_requirement") or "torch<1.13.1,>=1.10.0"
    relaxed = pin.get("torch_requirement") or "torch>=1.10.0"
    lines = ["# Evidence: DeepOD runs on torch 2 and NumPy 2", "",
             f"DeepOD {DEEPOD_VERSION} on PyPI declares `{released}`, so no resolver installs it next to "
             f"torch 2. The pin-fix patch declares `{relaxed}` instead.", ""]
    for note in pin.get("notes", []):
        lines.append(f"- {note}")
    lines += ["", "## DeepOD's own tests on a current stack", ""]
    if evidence is None:
        lines += ["Not run when this file was generated. To fill it in:", "", "```bash", command, "```", "",
                  "or by hand, from a DeepOD tree with the patch applied:", "", "```bash",
                  "python -m unittest -v " + " ".join(EVIDENCE_TESTS), "```"]
        return "\n".join(lines) + "\n"
    lines += ["| package | version |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in evidence["versions"].items()]
    lines += ["", "| test module | tests | failures | errors | seconds |", "|---|---|---|---|---|"]
    for r in evidence["results"]:
        lines.append(f"| `{r['module']}` | {r['tests']} | {r['failures']} | {r['errors']} | {r['seconds']} |")
    problems = [p for r in evidence["results"] for p in r["problems"]]
    lines += ["", "Result: " + ("**all passed**." if evidence["ok"] else "**failures**:"), ""]
    lines += [f"- {p}" for p in problems]
    lines += ["", f"Run with `{command}` (DeepOD's tests against the generated tree, with the "
              "DeepOD package of that tree first on the path and deepod-mnp blocked).", ""]
    return "\n".join(lines)


def _pull_request_md(manifest: dict[str, Any], module_imports: list[str]) -> str:
    """A pull-request description to paste, stating only what was checked."""
    third_party = [m for m in module_imports if not _is_stdlib(m) and m != "deepod"]
    changed = "\n".join(f"- `{p}`" for p in manifest["changed"])
    evidence = manifest["evidence"]
    if evidence is None:
        checks = ("Run `python -m unittest -v deepod.test.test_mnp` (DeepOD's unittest layout, small "
                  "budgets, an ROC-AUC floor of 0.8 on `generate_data`).")
    else:
        v = evidence["versions"]
        runs = "; ".join(f"`{r['module']}`: {r['tests']} tests, {r['failures'] + r['errors']} failed"
                         for r in evidence["results"])
        checks = (f"On Python {v['python']}, torch {v['torch']}, NumPy {v['numpy']}: {runs}. The new "
                  "`deepod/test/test_mnp.py` follows `test_devnet.py` (small budgets, an ROC-AUC floor of "
                  "0.8 on `generate_data`).")
    paras = [
        f"This adds `MNP` (Dong et al., \"{PAPER_TITLE}\", arXiv:2408.14498, 2024) to the tabular "
        "models. It is weakly supervised like DevNet, PReNet and RoSAS: `fit(X, y)` takes unlabeled "
        "rows (`y=0`) and a few labeled anomalies (`y=1`). It subclasses `BaseDeepAD`, so "
        "`decision_function`, `predict`, `decision_scores_`, `labels_` and `threshold_` work as for "
        "the other models.",
        "The model is one module, `deepod/models/tabular/mnp.py`, that needs nothing beyond DeepOD's "
        f"own requirements ({', '.join(third_party)}). It is generated from the deepod-mnp project, "
        "whose tests check that it gives the same scores as deepod-mnp's `MNP` for the same seed and data.",
        checks,
    ]
    text = ["# Add MNP: Multi-Normal Prototypes learning for weakly supervised anomaly detection", ""]
    for para in paras[:2]:
        text += [*textwrap.wrap(para, 96), ""]
    text += ["Files:", "", changed, "", "Checks:", "", *textwrap.wrap(paras[2], 96), ""]
    if not manifest["source"]["has_docs"]:
        text += ["### Docs (not in the released sdist; add them in a checkout)", "",
                 f"`{DOCS_API}`, under \"Weakly-supervised Models\", in the autosummary:", "",
                 "```rst", "    models.MNP", "```", "", f"`{DOCS_BIB}`:", "", "```bibtex",
                 PAPER_BIBTEX.rstrip("\n"), "```", ""]
    return "\n".join(text)


# =================================================================== the build
def build_upstream(out_dir: str | Path, deepod_src: str | Path | None = None, *,
                   run_tests: bool = False) -> dict[str, Any]:
    """Write MNP's DeepOD pull request into ``out_dir``, laid out as DeepOD's tree.

    Parameters
    ----------
    out_dir : path
        Output folder (created). Holds ``deepod/...`` and the other changed
        files, ``deepod-mnp.patch``, ``PULL_REQUEST.md`` and ``pin-fix/``. It may
        be the DeepOD tree itself: the originals are read before anything is written.
    deepod_src : path, optional
        DeepOD's released sources: an sdist (``.tar.gz``), a wheel, an unpacked
        sdist, a git checkout, or an installed ``deepod`` directory (which has no
        README, so the README change is then skipped). Default: the 0.4.1 sdist
        downloaded from PyPI.
    run_tests : bool
        Also run DeepOD's own tests (:data:`EVIDENCE_TESTS`) against the
        patched tree, with this package blocked, and record them in
        ``pin-fix/EVIDENCE.md`` (about half a minute on one core).

    Returns
    -------
    dict
        ``files`` (written, relative to ``out_dir``), ``changed`` (paths in the
        patch), ``patch``, ``patch_lines``, ``patch_checked``, ``source``,
        ``module_imports``, ``notes``, ``pin_fix`` and ``evidence``.
    """
    out = Path(out_dir).resolve()
    notes: list[str] = []
    module = assemble_module(notes=notes)
    module_imports = check_generated_module(module)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if deepod_src is None:
            archive = fetch_deepod_sdist(tmp_path / "download")
            root, origin = _extract(archive, tmp_path / "src"), f"PyPI sdist {archive.name}"
        else:
            src = Path(deepod_src)
            if src.is_file():
                root, origin = _extract(src, tmp_path / "src"), str(src)
            else:
                root, origin = _find_root(src), str(src)
        source = _describe_source(root, origin)
        if source["version"] not in (None, DEEPOD_VERSION):
            notes.append(f"the DeepOD source is version {source['version']}, not {DEEPOD_VERSION}.")

        old: dict[str, str | None] = {}
        new: dict[str, str] = {}

        def change(path: str, patcher=None, text: str | None = None) -> None:
            original = root / path
            old[path] = _read(original) if original.is_file() else None
            if patcher is not None:
                if old[path] is None:
                    notes.append(f"{path} is not in the DeepOD source; not changed (see PULL_REQUEST.md).")
                    del old[path]
                    return
                text = patcher(old[path])
            new[path] = text

        if (root / TARGET_PATH).is_file():
            notes.append(f"{TARGET_PATH} already exists in the DeepOD source; it is replaced.")
        change(TARGET_PATH, text=module)
        change(TABULAR_INIT, patch_tabular_init)
        change(MODELS_INIT, patch_models_init)
        change(TEST_PATH, text=render_deepod_test())
        change(README, patch_readme)
        if source["has_docs"]:
            change(DOCS_API, patch_docs_api)
            change(DOCS_BIB, patch_bib)
        else:
            notes.append("the DeepOD source has no docs/ (the sdist and wheel ship none); the API entry and "
                         "BibTeX record are in PULL_REQUEST.md.")

        patch = unified_diff(old, new)
        patch_checked = _git_apply_check(patch, {p: old.get(p) for p in new})
        changed = [p for p in sorted(new) if old.get(p) != new[p]]
        files = []
        for path in changed:
            _write(out / path, new[path])
            files.append(path)
        _write(out / PATCH_NAME, patch)
        files.append(PATCH_NAME)

        pin = build_pin_fix(root, out / "pin-fix")
        evidence = None
        source_arg = f" --deepod-src {deepod_src}" if deepod_src is not None else ""
        command = f"deepod-mnp upstream --out {out_dir}{source_arg} --run-tests"
        if run_tests:
            tree = _applied_tree(root, out, changed, tmp_path / "applied")
            evidence = run_deepod_tests(tree)
        _write(out / "pin-fix" / "EVIDENCE.md", _evidence_md(pin, evidence, command))
        files += [*pin["written"], "pin-fix/EVIDENCE.md"]

        manifest = {"out_dir": str(out), "source": source, "changed": changed, "patch": str(out / PATCH_NAME),
                    "patch_lines": patch.count("\n"), "patch_checked": patch_checked,
                    "module_imports": module_imports, "notes": notes, "pin_fix": pin,
                    "evidence": None if evidence is None else {k: evidence[k] for k in
                                                               ("ok", "results", "versions")}}
        _write(out / "PULL_REQUEST.md", _pull_request_md(manifest, module_imports))
        files.append("PULL_REQUEST.md")
        manifest["files"] = files
    return manifest


# ========================================================================= CLI
def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``upstream`` subcommand to an argparse ``add_subparsers()`` object."""
    parser = subparsers.add_parser(
        "upstream", help="write MNP as a DeepOD pull request (module, exports, test, README, patch)")
    parser.add_argument("--out", required=True, help="output directory, laid out as DeepOD's tree")
    parser.add_argument("--deepod-src", default=None,
                        help=f"DeepOD sources: sdist, wheel, checkout or installed deepod directory "
                             f"(default: download deepod {DEEPOD_VERSION}'s sdist from PyPI)")
    parser.add_argument("--run-tests", action="store_true",
                        help="run DeepOD's own tests (RoSAS, FeaWAD, MNP) on the patched tree for "
                             "pin-fix/EVIDENCE.md (about half a minute)")
    parser.set_defaults(handler=run_cli)
    return parser


def run_cli(args: argparse.Namespace) -> int:
    """Run ``deepod-mnp upstream`` from parsed arguments; print what was written."""
    try:
        result = build_upstream(args.out, args.deepod_src, run_tests=args.run_tests)
    except UpstreamError as exc:
        print(f"deepod-mnp upstream: {exc}", file=sys.stderr)
        return 1
    src = result["source"]
    print(f"DeepOD source: {src['origin']} (version {src['version']}, {src['kind']})")
    print(f"Wrote to {result['out_dir']}:")
    for path in result["files"]:
        print(f"  {path}")
    checked = {True: "checked with git apply", None: "git not found, not checked"}[result["patch_checked"]]
    print(f"{PATCH_NAME}: {result['patch_lines']} lines, {len(result['changed'])} files ({checked})")
    print(f"{TARGET_PATH} imports: {', '.join(result['module_imports'])}")
    for note in result["notes"] + result["pin_fix"].get("notes", []):
        print(f"note: {note}")
    if result["evidence"] is not None:
        for r in result["evidence"]["results"]:
            print(f"  {r['module']}: {r['tests']} tests, {r['failures']} failures, {r['errors']} errors "
                  f"({r['seconds']} s)")
        print("DeepOD tests: " + ("all passed" if result["evidence"]["ok"] else "FAILURES (see EVIDENCE.md)"))
        return 0 if result["evidence"]["ok"] else 1
    return 0
