"""Git-style patches of edited files (made by git itself), and ``git apply`` of them on a tree."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tools.upstream.manifest import UpstreamError
from tools.upstream.source import write_text

# No user configuration may change what git writes or how it treats line endings.
_GIT_CONFIG = ["-c", "user.name=deepod-mnp upstream", "-c", "user.email=upstream@localhost",
               "-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "commit.gpgsign=false",
               "-c", "diff.noprefix=false", "-c", "diff.mnemonicprefix=false"]


def _git(*args: str, cwd: Path) -> str:
    git = shutil.which("git")
    if git is None:
        raise UpstreamError("git is needed to write and check the patches and was not found")
    proc = subprocess.run([git, *_GIT_CONFIG, *args], cwd=cwd, capture_output=True, text=True,
                          env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "PATH": ""})
    if proc.returncode:
        raise UpstreamError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout


def unified_diff(old: dict[str, str | None], new: dict[str, str]) -> str:
    """A patch of ``old`` -> ``new`` (paths relative to the tree; None for a new file), as ``git diff``."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        _git("init", "-q", cwd=repo)
        for path, text in old.items():
            if text is not None:
                write_text(repo / path, text)
        _git("add", "-A", cwd=repo)
        _git("commit", "-q", "--allow-empty", "-m", "before", cwd=repo)
        for path, text in new.items():
            write_text(repo / path, text)
        _git("add", "-A", cwd=repo)
        return _git("diff", "--cached", "--no-color", "--no-ext-diff", "--no-renames", "--full-index",
                    "--binary", cwd=repo)


def git_apply(patch: Path, tree: Path, *, check: bool) -> None:
    """``git apply [--check] patch`` in ``tree``; raise :class:`UpstreamError` with git's message.

    Whitespace errors in the added lines (trailing spaces, blank lines added at
    the end of a file) fail too.
    """
    _git("apply", "--whitespace=error", *(["--check"] if check else []), str(patch.resolve()), cwd=tree)


def init_repo(tree: Path) -> None:
    """Make ``tree`` a git repository with one commit of its files (as a clone of DeepOD would be)."""
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "DeepOD source"]):
        _git(*args, cwd=tree)
