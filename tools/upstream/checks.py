"""Checks on the code DeepOD receives: its imports, no trace of deepod_mnp, no process-wide side effects,
nothing that DeepOD's declared minimum versions lack."""
from __future__ import annotations

import ast
import sys

from tools.upstream.manifest import DEEPOD_RUNTIME_MODULES, MAX_MODULE_LINES, UpstreamError

# Calls that change state outside the model (``module.attr`` as written).
SIDE_EFFECTS = {
    "torch.set_num_threads": "sets torch's thread count for the whole process",
    "torch.set_num_interop_threads": "sets torch's thread count for the whole process",
    "torch.set_default_dtype": "changes torch's default dtype for the whole process",
    "torch.set_default_tensor_type": "changes torch's default dtype for the whole process",
    "torch.use_deterministic_algorithms": "changes torch's settings for the whole process",
    "np.random.seed": "reseeds NumPy's global generator",
    "random.seed": "reseeds Python's global generator",
    "warnings.filterwarnings": "changes the process's warning filters",
    "warnings.simplefilter": "changes the process's warning filters",
    "logging.basicConfig": "configures the process's logging",
}
# torch's global generator may be seeded only inside ``torch.random.fork_rng`` (restored on exit).
FORKED_ONLY = {"torch.manual_seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all"}
# Keywords DeepOD's declared minimums lack, and the version that has them.
NEWER_KEYWORDS = {"ensure_all_finite": "scikit-learn 1.6", "input_name": "scikit-learn 1.1",
                  "weights_only": "torch 1.13"}
# Names that DeepOD's declared minimums lack.
NEWER_NAMES = {"validate_data": "scikit-learn 1.6"}


def is_stdlib(name: str) -> bool:
    """A module of the standard library (Python >= 3.10 lists them; 3.9 knows only the built-in ones)."""
    return name in getattr(sys, "stdlib_module_names", ()) or name in sys.builtin_module_names


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _ancestors(node: ast.AST, parents: dict[int, ast.AST]):
    while id(node) in parents:
        node = parents[id(node)]
        yield node


def _guarded_by_type_error(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Inside the body of a ``try`` that catches TypeError (the old version's answer to a new keyword)."""
    for parent in _ancestors(node, parents):
        if isinstance(parent, ast.Try) and any(
                any(n.id == "TypeError" for n in ast.walk(h.type) if isinstance(n, ast.Name))
                for h in parent.handlers if h.type is not None):
            return True
    return False


def _in_fork_rng(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    return any(isinstance(p, ast.With) and any("fork_rng" in _dotted(i.context_expr.func)
                                               for i in p.items if isinstance(i.context_expr, ast.Call))
               for p in _ancestors(node, parents))


def check_file(path: str, text: str) -> set[str]:
    """Problems of one file raise :class:`UpstreamError`; returns the top-level modules it imports."""
    tree = ast.parse(text, filename=path)
    problems = []
    try:  # DeepOD's setup.py lists Python 3.7 to 3.10
        ast.parse(text, filename=path, feature_version=(3, 7))
    except SyntaxError as exc:
        problems.append(f"{path}:{exc.lineno}: syntax newer than Python 3.7 ({exc.msg})")
    tops = set()
    if "deepod_mnp" in text:
        problems.append("mentions deepod_mnp")
    parents = _parents(tree)
    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.level:
            problems.append(f"{where}: relative import of {node.module or [a.name for a in node.names]} "
                            "(DeepOD receives this module alone)")
        elif isinstance(node, ast.ImportFrom):
            tops.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in SIDE_EFFECTS:
                problems.append(f"{where}: {name} {SIDE_EFFECTS[name]}")
            if name in FORKED_ONLY and not _in_fork_rng(node, parents):
                problems.append(f"{where}: {name} outside torch.random.fork_rng reseeds torch globally")
            for kw in node.keywords:
                if kw.arg in NEWER_KEYWORDS and not (kw.arg == "weights_only"
                                                     and _guarded_by_type_error(node, parents)):
                    problems.append(f"{where}: `{kw.arg}=` needs {NEWER_KEYWORDS[kw.arg]}, newer than "
                                    "DeepOD's declared minimum (guard it or drop it)")
        elif isinstance(node, (ast.Name, ast.alias)):
            name = node.id if isinstance(node, ast.Name) else node.name
            if name in NEWER_NAMES:
                problems.append(f"{where}: {name} needs {NEWER_NAMES[name]}")
        elif isinstance(node, ast.Assign) and any(_dotted(t).startswith("os.environ") for t in node.targets):
            problems.append(f"{where}: writes os.environ")
    tops.discard("__future__")
    bad = sorted(t for t in tops if t not in DEEPOD_RUNTIME_MODULES and not is_stdlib(t))
    if bad:
        problems.append(f"imports {bad}, which DeepOD does not depend on")
    if problems:
        raise UpstreamError(f"{path}: " + "; ".join(problems))
    return tops


def check_module(path: str, text: str) -> list[str]:
    """Check the module DeepOD receives (:func:`check_file`, and at most ``MAX_MODULE_LINES`` lines);
    return the top-level modules it imports, sorted."""
    n_lines = text.count("\n")
    if n_lines > MAX_MODULE_LINES:
        raise UpstreamError(f"{path} has {n_lines} lines; DeepOD's detectors are one file of at most "
                            f"{MAX_MODULE_LINES}")
    tree = ast.parse(text)
    if not any(isinstance(n, ast.ClassDef) and n.name == "MNP" for n in tree.body):
        raise UpstreamError(f"{path} defines no class MNP")
    return sorted(check_file(path, text))
