"""Edits of DeepOD's own files, each built from the target's text and keeping its line endings.

Every function takes a file's current text and returns the edited text; applied
to its own output it changes nothing.
"""
from __future__ import annotations

import ast
import re

from tools.upstream.manifest import (
    PAPER_BIBTEX,
    PAPER_KEY,
    PAPER_REFERENCE,
    PAPER_ROW,
    TARGET_PACKAGE,
    UpstreamError,
)
from tools.upstream.source import newline


def _add_to_all(text: str, name: str, after: set[str] | None = None) -> str:
    """Insert ``name`` into the ``__all__`` list, after the last entry in ``after`` (else at the end)."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            if not isinstance(node.value, (ast.List, ast.Tuple)) or not node.value.elts:
                raise UpstreamError("__all__ is not a literal list")
            elts = node.value.elts
            if any(isinstance(e, ast.Constant) and e.value == name for e in elts):
                return text
            anchors = [e for e in elts if isinstance(e, ast.Constant) and (after is None or e.value in after)]
            anchor = (anchors or elts)[-1]
            lines = text.splitlines(keepends=True)
            line = lines[anchor.end_lineno - 1]
            col = len(line.encode("utf-8")[:anchor.end_col_offset].decode("utf-8"))
            quote = line[col - 1] if line[col - 1] in "'\"" else "'"
            lines[anchor.end_lineno - 1] = line[:col] + f", {quote}{name}{quote}" + line[col:]
            return "".join(lines)
    raise UpstreamError("no __all__ list found")


def _add_import_after(text: str, statement: str, prefix: str) -> str:
    """Insert ``statement`` after the last line starting with ``prefix``."""
    if statement in text.splitlines():
        return text
    lines = text.splitlines(keepends=True)
    idx = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    if not idx:
        raise UpstreamError(f"no import line starting with {prefix!r}")
    i = idx[-1]
    if not lines[i].endswith(("\n", "\r")):
        lines[i] += newline(text)
    lines.insert(i + 1, statement + newline(text))
    return "".join(lines)


def patch_tabular_init(text: str) -> str:
    """``deepod/models/tabular/__init__.py``: ``from .mnp import MNP`` and ``'MNP'`` in ``__all__``."""
    return _add_to_all(_add_import_after(text, "from .mnp import MNP", "from ."), "MNP")


def patch_models_init(text: str) -> str:
    """``deepod/models/__init__.py``: import MNP after the tabular models and export it after them."""
    tabular = {a.asname or a.name for node in ast.parse(text).body
               if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepod.models.tabular")
               for a in node.names}
    text = _add_import_after(text, f"from {TARGET_PACKAGE} import MNP", "from deepod.models.tabular.")
    return _add_to_all(text, "MNP", after=tabular or None)


def patch_readme(text: str) -> str:
    """``README.rst``: MNP's row after the last weakly supervised tabular model, its reference, the count."""
    if f"[#{PAPER_KEY}]" in text:
        return text
    nl = newline(text)
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
    if not refs:
        raise UpstreamError("README: no reference list (`.. [#...]`) found")
    if not lines[refs[-1]].endswith(("\n", "\r")):
        lines[refs[-1]] += nl
    if all(not line.strip() for line in lines[refs[-1] + 1:]):
        # the last reference ends the file: the new one ends it now (git flags blank lines added at the end)
        del lines[refs[-1] + 1:]
    lines.insert(refs[-1] + 1, nl + PAPER_REFERENCE + nl)
    lines.insert(last + 1, indent + PAPER_ROW + nl)
    count = re.compile(r"(DeepOD includes \*\*)(\d+)(\*\*)")
    return count.sub(lambda m: f"{m[1]}{int(m[2]) + 1}{m[3]}", "".join(lines), count=1)


def patch_docs_api(text: str) -> str:
    """``docs/api_reference.tabular.rst``: ``models.MNP`` in the weakly-supervised autosummary."""
    if re.search(r"^\s+models\.MNP\s*$", text, flags=re.M):
        return text
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
        lines[last] += newline(text)
    lines.insert(last + 1, indent + "models.MNP" + newline(text))
    return "".join(lines)


def patch_bib(text: str) -> str:
    """``docs/zreferences.bib``: the paper's BibTeX record, after the others."""
    if "dong2024multi" in text:
        return text
    nl = newline(text)
    sep = "" if text.endswith(("\n", "\r")) else nl
    return text + sep + nl + nl + PAPER_BIBTEX.replace("\n", nl)
