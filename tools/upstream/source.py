"""DeepOD's source: a ``git archive`` or sdist tarball, or a directory (a checkout or an unpacked archive)."""
from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

from tools.upstream.manifest import UpstreamError

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the team keeps DeepOD's main branch as a `git archive` tarball (absent in a fresh clone).
SHARED_DEEPOD_MAIN = REPO_ROOT.parent / "shared" / "deepod-main"


def read_text(path: Path) -> str:
    """A file's text with its line endings untouched."""
    return path.read_bytes().decode("utf-8")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` byte for byte (no newline translation), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def newline(text: str) -> str:
    """The line ending a file uses: CRLF if it has any, else LF."""
    return "\r\n" if "\r\n" in text else "\n"


def default_source() -> Path | None:
    """The newest DeepOD ``main`` tarball in ``../shared/deepod-main``, if there is one."""
    found = sorted(SHARED_DEEPOD_MAIN.glob("DeepOD-*.tar.gz")) if SHARED_DEEPOD_MAIN.is_dir() else []
    return found[-1] if found else None


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a tarball into ``dest``; return the folder that holds the ``deepod`` package."""
    with tarfile.open(archive) as tar:
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **kwargs)  # noqa: S202 - a source archive, filtered where supported
    return find_root(dest)


def find_root(path: Path) -> Path:
    """The folder holding the ``deepod`` package: ``path`` itself or one of its subfolders."""
    if (path / "deepod" / "__init__.py").is_file():
        return path
    for sub in sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []:
        if (sub / "deepod" / "__init__.py").is_file():
            return sub
    raise UpstreamError(f"{path} holds no deepod package")


def open_source(src: Path, workdir: Path) -> Path:
    """The DeepOD tree of ``src`` (a tarball is unpacked into ``workdir``)."""
    if src.is_file():
        return extract(src, workdir)
    if src.is_dir():
        return find_root(src)
    raise UpstreamError(f"{src}: no such file or folder")


def describe(root: Path, origin: str) -> dict[str, Any]:
    """Where the DeepOD tree came from and its version (from ``setup.py``)."""
    version = None
    setup = root / "setup.py"
    if setup.is_file():
        m = re.search(r"version\s*=\s*['\"]([^'\"]+)['\"]", read_text(setup))
        version = m.group(1) if m else None
    return {"origin": origin, "root": str(root), "version": version}
