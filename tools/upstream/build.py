"""Build MNP's DeepOD pull request: the module, its test, DeepOD's edited files, patches, description."""
from __future__ import annotations

import csv
import inspect
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

from tools.upstream import patches
from tools.upstream.checks import check_module, is_stdlib
from tools.upstream.diff import git_apply, init_repo, unified_diff
from tools.upstream.manifest import (
    DOCS_API,
    DOCS_BIB,
    EVIDENCE_TESTS,
    MAIN_RESULTS,
    MODELS_INIT,
    MODULE,
    PAPER_TITLE,
    PARITY_SUMMARY,
    PATCH_NAME,
    PEERS,
    PIN_FIX_DIR,
    PIN_FIX_PATCH,
    README,
    TABULAR_INIT,
    TARGET_PATH,
    TEST_PARAMS,
    TEST_PATH,
    UpstreamError,
)
from tools.upstream.pinfix import build_pin_fix
from tools.upstream.runtests import run_deepod_tests
from tools.upstream.source import REPO_ROOT, default_source, describe, open_source, read_text, write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"

# DeepOD files the pull request edits, and how.
FILE_PATCHES = {
    TABULAR_INIT: patches.patch_tabular_init,
    MODELS_INIT: patches.patch_models_init,
    README: patches.patch_readme,
    DOCS_API: patches.patch_docs_api,
    DOCS_BIB: patches.patch_bib,
}


def module_path() -> Path:
    """Our source of the module DeepOD receives."""
    return REPO_ROOT / (MODULE.replace(".", "/") + ".py")


def module_source() -> str:
    """The module DeepOD receives: ours, byte for byte."""
    return read_text(module_path())


def render_deepod_test() -> str:
    """``deepod/test/test_mnp.py`` from templates/, with the small training budget of :data:`TEST_PARAMS`."""
    from deepod_mnp.deepod_tabular.mnp import MNP

    unknown = sorted(set(TEST_PARAMS) - set(inspect.signature(MNP).parameters))
    if unknown:
        raise UpstreamError(f"TEST_PARAMS names {unknown}, which DeepOD's MNP does not take")
    params = ", ".join(f"{k}={v!r}" for k, v in TEST_PARAMS.items())
    return string.Template(read_text(TEMPLATES / "test_mnp.py.in")).substitute(params=params)


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


def benchmark_table(results_csv: Path = REPO_ROOT / MAIN_RESULTS) -> str:
    """Mean test AUC-PR over seeds of MNP and DeepOD's weakly supervised models on the main data sets."""
    if not results_csv.is_file():
        return f"(`{MAIN_RESULTS}` is absent from this checkout.)"
    runs: dict[tuple[str, str], list[float]] = {}
    with results_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["model"] in ("MNP", *PEERS) and row["status"] == "ok":
                runs.setdefault((row["dataset"], row["model"]), []).append(float(row["auc_pr"]))
    models = ["MNP", *PEERS]
    sets = sorted({d for d, _ in runs})
    means = {key: sum(v) / len(v) for key, v in runs.items()}
    lines = ["| data set | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for d in sets:
        cells = [f"{means[d, m]:.3f}" if (d, m) in means else "failed" for m in models]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    averages = [sum(means[d, m] for d in sets if (d, m) in means) / max(1, sum((d, m) in means for d in sets))
                for m in models]
    lines.append("| average | " + " | ".join(f"{a:.3f}" for a in averages) + " |")
    seeds = sorted({len(v) for v in runs.values()})
    return "\n".join(lines) + f"\n\n(seeds per cell: {', '.join(map(str, seeds))})"


def parity_section(summary: Path = REPO_ROOT / PARITY_SUMMARY) -> str:
    """The parity table of ``scripts/upstream_parity.py`` (committed), or a note that it has not run."""
    if not summary.is_file():
        return f"(`{PARITY_SUMMARY}` is absent: run `python scripts/upstream_parity.py`.)"
    text = read_text(summary)
    return text.split("\n", 1)[1].strip() if text.startswith("# ") else text.strip()


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
        runs = "\n".join(f"- `{r['module']}`: {r['tests']} tests, {r['failures'] + r['errors']} failed, "
                         f"{r['skipped']} skipped ({r['seconds']} s)" for r in evidence["results"])
        checks = (f"With both patches applied to `main` (Python {v['python']}, torch {v['torch']}, "
                  f"NumPy {v['numpy']}, scikit-learn {v['scikit-learn']}; deepod-mnp and ray blocked from "
                  f"import):\n\n{runs}")
    third_party = ", ".join(m for m in result["module_imports"] if not is_stdlib(m) and m != "deepod")
    return string.Template(read_text(TEMPLATES / "PULL_REQUEST.md")).substitute(
        title=PAPER_TITLE, target=TARGET_PATH, module_lines=result["lines"][TARGET_PATH],
        files=files, third_party=third_party, patch_lines=result["patch_lines"], checks=checks,
        parity=parity_section(), benchmark=benchmark_table(),
        pin_notes="\n".join(f"- {n}" for n in result["pin_fix"]["notes"]))


def _evidence_md(result: dict[str, Any], command: str) -> str:
    evidence = result["evidence"]
    if evidence is None:
        table = f"Not run when this file was generated. Run `{command}`."
    else:
        rows = ["| package | version |", "|---|---|",
                *(f"| {k} | {v} |" for k, v in evidence["versions"].items()), "",
                "| test module | tests | failures | errors | skipped | seconds |", "|---" * 6 + "|",
                *(f"| `{r['module']}` | {r['tests']} | {r['failures']} | {r['errors']} | {r['skipped']} | "
                  f"{r['seconds']} |" for r in evidence["results"])]
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
        applied and record them in ``pin-fix/EVIDENCE.md`` and the description.
    tests : tuple of str
        The DeepOD test modules ``run_tests`` runs.

    Returns
    -------
    dict
        ``source``, ``files`` (written), ``lines`` (lines per file of the PR),
        ``changes`` (lines added and removed per file), ``new_files``,
        ``patch_lines``, ``module_imports``, ``pin_fix`` (``notes``,
        ``patch_lines``, ``lines_changed``) and ``evidence`` (None unless
        ``run_tests``).
    """
    out = Path(out_dir).resolve()
    src = Path(deepod_src) if deepod_src is not None else default_source()
    if src is None:
        raise UpstreamError("no DeepOD source: pass --deepod-src (a checkout or `git archive` tarball of "
                            "DeepOD's main branch)")
    module = module_source()
    module_imports = check_module(TARGET_PATH, module)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = open_source(src, tmp_path / "src")
        source = describe(root, str(src))
        if (root / TARGET_PATH).exists() or (root / TARGET_PATH[:-len(".py")]).exists():
            raise UpstreamError(f"{TARGET_PATH} already exists in {src}")
        old: dict[str, str | None] = {}
        new = {TARGET_PATH: module, TEST_PATH: render_deepod_test()}
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
        result = {"out_dir": str(out), "source": source,
                  "lines": {path: text.count("\n") for path, text in sorted(new.items())},
                  "changes": numstat(patch_text), "new_files": sorted(p for p in new if p not in old),
                  "patch_lines": patch_text.count("\n"), "patch_checked": True,
                  "module_imports": module_imports,
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
