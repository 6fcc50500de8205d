"""Build MNP's DeepOD pull request: the subpackage, DeepOD's edited files, the patches, the descriptions."""
from __future__ import annotations

import ast
import inspect
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

from deepod_mnp import MNP
from tools.upstream import patches
from tools.upstream.checks import check_package, is_stdlib
from tools.upstream.diff import git_apply, init_repo, unified_diff
from tools.upstream.manifest import (
    DOCS_API,
    DOCS_BIB,
    EVIDENCE_TESTS,
    MODELS_INIT,
    PAPER_TITLE,
    PATCH_NAME,
    PIN_FIX_DIR,
    PIN_FIX_PATCH,
    README,
    TABULAR_INIT,
    TARGET_DIR,
    TEST_PARAMS,
    TEST_PATH,
    UpstreamError,
)
from tools.upstream.package import TEMPLATES, build_package
from tools.upstream.pinfix import build_pin_fix
from tools.upstream.runtests import run_deepod_tests
from tools.upstream.source import default_source, describe, open_source, read_text, write_text

# DeepOD files the pull request edits, and how.
FILE_PATCHES = {
    TABULAR_INIT: patches.patch_tabular_init,
    MODELS_INIT: patches.patch_models_init,
    README: patches.patch_readme,
    DOCS_API: patches.patch_docs_api,
    DOCS_BIB: patches.patch_bib,
}


def render_deepod_test() -> str:
    """``deepod/test/test_mnp.py`` from templates/, with the small training budget of :data:`TEST_PARAMS`."""
    unknown = sorted(set(TEST_PARAMS) - set(inspect.signature(MNP).parameters))
    if unknown:
        raise UpstreamError(f"TEST_PARAMS names {unknown}, which MNP no longer accepts")
    params = ", ".join(f"{k}={v!r}" for k, v in TEST_PARAMS.items())
    return string.Template(read_text(TEMPLATES / "test_mnp.py.in")).substitute(params=params)


def _line_counts(files: dict[str, str]) -> dict[str, int]:
    return {path: text.count("\n") for path, text in sorted(files.items())}


def _summaries(files: dict[str, str]) -> dict[str, str]:
    """The first line of each module's docstring."""
    out = {}
    for path, text in sorted(files.items()):
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not path.endswith("__init__.py"):
            out[path] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def numstat(patch: str) -> dict[str, tuple[int, int]]:
    """Lines added and removed per file of a git patch."""
    counts: dict[str, list[int]] = {}
    current, in_hunk = None, False
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            current, in_hunk = counts.setdefault(line.rsplit(" b/", 1)[1], [0, 0]), False
        elif line.startswith("@@ "):
            in_hunk = True
        elif current is not None and in_hunk and line[:1] in "+-":
            current[line[:1] == "-"] += 1
    return {path: (added, removed) for path, (added, removed) in counts.items()}


def _copy_tree(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
    return dest


def check_patches(root: Path, patch_files: list[Path], workdir: Path) -> Path:
    """``git apply --check`` each patch on a git repository of the pristine tree, then apply them all.

    Returns the tree with every patch applied.
    """
    tree = _copy_tree(root, workdir / "applied")
    init_repo(tree)
    for patch in patch_files:
        git_apply(patch, tree, check=True)
    for patch in patch_files:
        git_apply(patch, tree, check=False)
    return tree


def _pull_request_md(result: dict[str, Any]) -> str:
    files = "\n".join(f"- `{path}`: " + (f"new, {result['lines'][path]} lines" if path in result["new_files"]
                                         else f"+{added} -{removed}")
                      for path, (added, removed) in result["changes"].items())
    evidence = result["evidence"]
    if evidence is None:
        checks = ("Not run when this description was generated; run `python -m unittest -v "
                  + " ".join(EVIDENCE_TESTS) + "` with both patches applied.")
    else:
        v = evidence["versions"]
        runs = "; ".join(f"`{r['module']}` {r['tests']} tests, {r['failures'] + r['errors']} failed"
                         for r in evidence["results"])
        checks = (f"With both patches applied to `main`, on Python {v['python']}, torch {v['torch']}, "
                  f"NumPy {v['numpy']}, scikit-learn {v['scikit-learn']}, ray blocked from import: {runs}.")
    third_party = ", ".join(m for m in result["module_imports"] if not is_stdlib(m) and m != "deepod")
    modules = "\n".join(f"- `{path.rsplit('/', 1)[1]}`: {summary}"
                        for path, summary in result["summaries"].items())
    return string.Template(read_text(TEMPLATES / "PULL_REQUEST.md")).substitute(
        title=PAPER_TITLE, target_dir=TARGET_DIR, modules=modules, files=files, third_party=third_party,
        patch_lines=result["patch_lines"], checks=checks,
        upstream_notes="\n".join(f"- {n}" for n in result["notes"]) or "- none",
        pin_notes="\n".join(f"- {n}" for n in result["pin_fix"]["notes"]))


def _evidence_md(result: dict[str, Any], command: str) -> str:
    evidence = result["evidence"]
    if evidence is None:
        table = f"Not run when this file was generated. Run `{command}`."
    else:
        rows = ["| package | version |", "|---|---|",
                *(f"| {k} | {v} |" for k, v in evidence["versions"].items()), "",
                "| test module | tests | failures | errors | seconds |", "|---|---|---|---|---|",
                *(f"| `{r['module']}` | {r['tests']} | {r['failures']} | {r['errors']} | {r['seconds']} |"
                  for r in evidence["results"])]
        problems = [f"- {p}" for r in evidence["results"] for p in r["problems"]]
        verdict = "**all passed**." if evidence["ok"] else "**failures**:"
        table = "\n".join([*rows, "", "Result: " + verdict, *problems, "",
                           f"Run with `{command}`: DeepOD's tests on DeepOD `main` with both patches "
                           "applied, that tree first on the path, deepod-mnp and ray blocked from import."])
    return string.Template(read_text(TEMPLATES / "EVIDENCE.md")).substitute(
        notes="\n".join(f"- {n}" for n in result["pin_fix"]["notes"]), results=table)


def build_upstream(out_dir: str | Path, deepod_src: str | Path | None = None, *,
                   run_tests: bool = False, tests: tuple[str, ...] = EVIDENCE_TESTS) -> dict[str, Any]:
    """Write MNP's DeepOD pull request into ``out_dir``, laid out as DeepOD's tree.

    Parameters
    ----------
    out_dir : path
        Output folder: the new and edited DeepOD files, ``deepod-mnp.patch``,
        ``PULL_REQUEST.md`` and ``pin-fix/`` (``pin-fix.patch``, the edited
        requirement files, ``EVIDENCE.md``).
    deepod_src : path, optional
        DeepOD's ``main``: a ``git archive`` tarball or a checkout. Default: the
        tarball in ``../shared/deepod-main``.
    run_tests : bool
        Also run DeepOD's tests (``tests``) on ``main`` with both patches
        applied and record them in ``pin-fix/EVIDENCE.md``.
    tests : tuple of str
        The DeepOD test modules ``run_tests`` runs.

    Returns
    -------
    dict
        ``source``, ``files`` (written), ``lines`` (lines per file of the PR),
        ``changes`` (lines added and removed per file),
        ``new_files``, ``patch_lines``, ``module_imports``, ``notes``,
        ``pin_fix`` (``notes``, ``patch_lines``, ``lines``) and ``evidence``
        (None unless ``run_tests``).
    """
    out = Path(out_dir).resolve()
    src = Path(deepod_src) if deepod_src is not None else default_source()
    if src is None:
        raise UpstreamError("no DeepOD source: pass --deepod-src (a checkout or `git archive` tarball of "
                            "DeepOD's main branch)")
    package, notes = build_package()
    module_imports = check_package(package)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = open_source(src, tmp_path / "src")
        source = describe(root, str(src))
        if (root / TARGET_DIR).exists() or (root / f"{TARGET_DIR}.py").exists():
            raise UpstreamError(f"{TARGET_DIR} already exists in {src}")
        old: dict[str, str | None] = {}
        new = dict(package)
        new[TEST_PATH] = render_deepod_test()
        for path, patch in FILE_PATCHES.items():
            if not (root / path).is_file():
                raise UpstreamError(f"{path} is not in {src}; is it DeepOD's main branch?")
            old[path] = read_text(root / path)
            new[path] = patch(old[path])
        patch_text = unified_diff(old, new)
        pin = build_pin_fix(root)
        pin_text = unified_diff(pin["old"], pin["new"])

        written = []
        for path, text in new.items():
            write_text(out / path, text)
            written.append(path)
        write_text(out / PATCH_NAME, patch_text)
        write_text(out / PIN_FIX_DIR / PIN_FIX_PATCH, pin_text)
        for path, text in pin["new"].items():
            write_text(out / PIN_FIX_DIR / path, text)
        written += [PATCH_NAME, f"{PIN_FIX_DIR}/{PIN_FIX_PATCH}", *(f"{PIN_FIX_DIR}/{p}" for p in pin["new"])]

        tree = check_patches(root, [out / PIN_FIX_DIR / PIN_FIX_PATCH, out / PATCH_NAME], tmp_path)
        evidence = None
        if run_tests:
            evidence = run_deepod_tests(tree, tests)
            evidence = {k: evidence[k] for k in ("ok", "results", "versions", "ray_blocked", "log")}
        result = {"out_dir": str(out), "source": source, "lines": _line_counts(new),
                  "changes": numstat(patch_text), "summaries": _summaries(package),
                  "new_files": sorted(p for p in new if p not in old), "patch_lines": patch_text.count("\n"),
                  "patch_checked": True, "module_imports": module_imports, "notes": notes,
                  "pin_fix": {"notes": pin["notes"], "patch_lines": pin_text.count("\n"),
                              "lines_changed": sum(1 for line in pin_text.splitlines()
                                                   if line[:1] in "+-" and line[:3] not in ("+++", "---"))},
                  "evidence": evidence}
        source_arg = "" if deepod_src is None else f" --deepod-src {deepod_src}"
        command = f"python -m tools.upstream --out {out_dir}{source_arg} --run-tests"
        write_text(out / PIN_FIX_DIR / "EVIDENCE.md", _evidence_md(result, command))
        write_text(out / "PULL_REQUEST.md", _pull_request_md(result))
        result["files"] = [*written, f"{PIN_FIX_DIR}/EVIDENCE.md", "PULL_REQUEST.md"]
    return result
