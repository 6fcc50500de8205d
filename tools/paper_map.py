"""The paper map: where the code computes each equation of the MNP paper, read from the code itself.

Every equation is marked where it is computed by a comment naming it (``# Eq. 8``,
``# Eq. 3-5``; CONTRIBUTING.md). :func:`equation_sites` finds those comments
(comments only, not docstrings) in the package and the function or class they
sit in, so the map in the documentation (``docs/paper.md``, built by
``docs/conf.py``) follows the code wherever an equation moves.
:func:`hook_owners` says which class defines each of DeepOD's hooks for a
detector. Used by ``docs/conf.py`` and ``tests/test_docs.py``.
"""
from __future__ import annotations

import ast
import inspect
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepod_mnp"

# The equations of Dong et al. (2024), by number, as the paper names them.
EQUATIONS: dict[int, str] = {
    1: "encoder ψ: x → z",
    2: "decoder ψ': z → x̂",
    3: "reconstruction loss of the unlabeled rows, weighted by w_i",
    4: "hinge on the labeled anomalies' reconstruction error (margin m1)",
    5: "L_recon: Eq. 3 + Eq. 4",
    6: "Student-t similarity of a normalised code to each prototype",
    7: "normality weight w_i of an unlabeled row",
    8: "DEC's clustering loss L_kl",
    9: "contrastive loss L_con",
    10: "prototype loss L_np: Eq. 8 + Eq. 9",
    11: "the unified scoring MLP on (e_i, z_i, s_i)",
    12: "score loss L_score",
    13: "dynamic weight averaging of the three losses",
}
# DeepOD's hooks (BaseDeepAD) and the training loop that calls them.
HOOKS = ("training_prepare", "training_forward", "epoch_update", "_training", "inference_prepare",
         "inference_forward")
_EQ = re.compile(r"\bEq\.\s*(\d+)(?:\s*-\s*(\d+))?")


@dataclass(frozen=True)
class Site:
    """One place where an equation is computed."""

    module: str  # dotted, e.g. deepod_mnp.deepod_tabular.mnp
    qualname: str  # e.g. similarity or MNPLoss.losses; '' at module level
    path: str  # relative to the repository root
    line: int

    @property
    def target(self) -> str:
        return f"{self.module}.{self.qualname}" if self.qualname else self.module


def _scopes(tree: ast.AST) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function and class, outermost first."""
    out: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                out.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def equation_sites(package: Path = PACKAGE) -> dict[int, list[Site]]:
    """Every ``# Eq. N`` (or ``# Eq. N-M``) comment of the package, by equation number."""
    root = package.parent
    sites: dict[int, list[Site]] = {n: [] for n in EQUATIONS}
    for path in sorted(package.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        scopes = _scopes(ast.parse(source))
        module = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type != tokenize.COMMENT:
                continue
            line = token.start[0]
            inside = [name for first, last, name in scopes if first <= line <= last]
            site = Site(module, inside[-1] if inside else "", str(path.relative_to(root)), line)
            for match in _EQ.finditer(token.string):
                first = int(match.group(1))
                for number in range(first, int(match.group(2) or first) + 1):
                    if number in sites and site not in sites[number]:
                        sites[number].append(site)
    return sites


def hook_owners(detector: type) -> dict[str, str]:
    """Which class in ``detector``'s MRO defines each of DeepOD's hooks, as ``module.Class.hook``."""
    import deepod_mnp  # noqa: F401  (a detector class implies the package is loaded; made explicit)

    owners = {}
    for hook in HOOKS:
        owner = next((cls for cls in inspect.getmro(detector) if hook in vars(cls)), None)
        if owner is not None:  # by its public name where the package exports the class (deepod_mnp.MNP)
            public = getattr(sys.modules["deepod_mnp"], owner.__name__, None) is owner
            owners[hook] = f"{'deepod_mnp' if public else owner.__module__}.{owner.__qualname__}.{hook}"
    return owners


def markdown(detector: type | None = None) -> str:
    """The paper map as MyST Markdown: one row per equation, then the hooks of ``detector``."""
    lines = ["| paper | computed in |", "|---|---|"]
    for number, sites in equation_sites().items():
        where = ", ".join(f"{{py:obj}}`{s.target}` (`{s.path}:{s.line}`)" for s in sites) or "—"
        lines.append(f"| Eq. {number}: {EQUATIONS[number]} | {where} |")
    if detector is not None:
        lines += ["", f"DeepOD's hooks, as {detector.__name__} has them:", "",
                  "| hook | defined in |", "|---|---|"]
        lines += [f"| `{hook}` | {{py:obj}}`{target}` |" for hook, target in hook_owners(detector).items()]
    return "\n".join(lines) + "\n"
