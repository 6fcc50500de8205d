"""A git-style unified diff of edited files, and ``git apply --check`` of it on a tree."""
from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

from tools.upstream.manifest import UpstreamError


def unified_diff(old: dict[str, str | None], new: dict[str, str]) -> str:
    """A git-style patch of ``old`` -> ``new``: paths relative to the tree, None for a new file."""
    out: list[str] = []
    for path in sorted(new):
        before, after = old.get(path), new[path]
        if before == after:
            continue
        out.append(f"diff --git a/{path} b/{path}\n")
        if before is None:
            out.append("new file mode 100644\n")
        a = before.splitlines(keepends=True) if before is not None else []
        fromfile = f"a/{path}" if before is not None else "/dev/null"
        for line in difflib.unified_diff(a, after.splitlines(keepends=True), fromfile, f"b/{path}", n=3):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def git_apply(patch: Path, tree: Path, *, check: bool) -> None:
    """``git apply [--check] patch`` in ``tree``; raise :class:`UpstreamError` with git's message."""
    git = shutil.which("git")
    if git is None:
        raise UpstreamError("git is needed to check the patch and was not found")
    cmd = [git, "apply", *(["--check"] if check else []), str(patch.resolve())]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    if proc.returncode:
        raise UpstreamError(f"{patch.name} does not apply to {tree}: {proc.stderr.strip()}")


def init_repo(tree: Path) -> None:
    """Make ``tree`` a git repository with one commit of its files (as a clone of DeepOD would be)."""
    git = shutil.which("git")
    if git is None:
        raise UpstreamError("git is needed to check the patch and was not found")
    env_args = ["-c", "user.name=upstream-check", "-c", "user.email=upstream-check@localhost",
                "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "DeepOD source"]):
        proc = subprocess.run([git, *env_args, *args], cwd=tree, capture_output=True, text=True)
        if proc.returncode:
            raise UpstreamError(f"git {' '.join(args)} failed in {tree}: {proc.stderr.strip()}")
