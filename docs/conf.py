"""Sphinx configuration of deepod-mnp's documentation (``make docs`` builds it into docs/_build/html).

The committed notebooks are rendered with their stored outputs and never
executed (``nb_execution_mode = "off"``): building the site needs neither the
data sets, a GPU nor the network (no intersphinx inventories are fetched).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

import deepod_mnp
from deepod_mnp.cli import _build_parser

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # tools/ (not installed with the package)
from tools import paper_map  # noqa: E402

project = "deepod-mnp"
author = "deepod-mnp developers"
copyright = "2026, deepod-mnp developers"
release = version = deepod_mnp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_*.md"]
templates_path = ["_templates"]

# --- the notebooks: copied from notebooks/ at build time, rendered with their outputs, never run
NOTEBOOKS = HERE / "notebooks"
NOTEBOOKS.mkdir(exist_ok=True)
for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
    target = NOTEBOOKS / notebook.name
    if not target.exists() or target.read_bytes() != notebook.read_bytes():
        shutil.copyfile(notebook, target)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _write_cli_reference(path: Path) -> None:
    """Every command's ``--help``, exactly as the terminal prints it, for cli.md to include."""
    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal's width; the page shows about 80
    parser = _build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    parts = ["## deepod-mnp\n", "```text", parser.format_help().rstrip(), "```\n"]
    for name, sub in commands.items():
        parts += [f"## deepod-mnp {name}\n", "```text", sub.format_help().rstrip(), "```\n"]
    _write_if_changed(path, "\n".join(parts))


_write_cli_reference(HERE / "_cli_reference.md")

# The repository's Markdown files that are pages of the site too (one source): copied with their links
# to each other turned into links to those pages, and their other relative links made relative to docs/.
REPO_PAGES = {"README.md": "index.md", "BENCHMARKS.md": "benchmark.md", "PROTOCOL.md": "protocol.md",
              "CONTRIBUTING.md": "contributing.md"}
_LINK = re.compile(r"\]\((?!https?:|#|/)([^)\s]+)\)")


def _page_link(match: re.Match) -> str:
    target = match.group(1)
    path, _, anchor = target.partition("#")
    page = REPO_PAGES.get(path, path.removeprefix("docs/") if path.startswith("docs/") else f"../{path}")
    return f"]({page}{'#' + anchor if anchor else ''})"


def _write_repo_page(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    _write_if_changed(HERE / f"_{name}", _LINK.sub(_page_link, text))


for _name in ("BENCHMARKS.md", "PROTOCOL.md", "CONTRIBUTING.md"):
    _write_repo_page(_name)
# paper.md's map: each equation and where the code computes it, from the code's '# Eq. N' comments
_write_if_changed(HERE / "_paper_map.md", paper_map.markdown(deepod_mnp.MNP))
smartquotes = False  # command lines keep their '--' and quotes
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

# --- API reference from the numpydoc docstrings
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


html_theme = "furo"
html_title = f"deepod-mnp {version}"
html_static_path = ["_static"]
html_css_files = ["tables.css"]


def _skip_sklearn_routing(app, what, name, obj, skip, options):
    """scikit-learn's metadata-routing setters (``set_fit_request``, ...) are not ours to document."""
    return True if name.startswith("set_") and name.endswith("_request") else None


def _cite(name, rawtext, text, lineno, inliner, options=None, content=None):
    """DeepOD's ``:cite:`key``` (sphinxcontrib-bibtex there): deepod_tabular/ is written as DeepOD's code."""
    from docutils import nodes

    return [nodes.literal(rawtext, text)], []


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_routing)
    app.add_role("cite", _cite)
