"""``python -m tools.upstream``: MNP's pull request against DeepOD ``main`` applies, works without
deepod_mnp and scores exactly like it.

DeepOD ``main`` comes from the ``git archive`` tarball in ``../shared/deepod-main``;
without it (a fresh clone) the tests that need it skip.
"""
from __future__ import annotations

import ast
import contextlib
import difflib
import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_MNP, make_weak_data

from deepod_mnp import MNP
from tools.upstream import checks, package, patches, pinfix
from tools.upstream.__main__ import main as upstream_main
from tools.upstream.build import build_upstream
from tools.upstream.manifest import (
    DROPS,
    EDITS,
    MODEL_MODULE,
    MODELS_INIT,
    MODULES,
    PATCH_NAME,
    PIN_FIX_DIR,
    PIN_FIX_PATCH,
    README,
    TABULAR_INIT,
    TARGET_DIR,
    TEST_PATH,
    UpstreamError,
)
from tools.upstream.runtests import run_deepod_tests, run_isolated
from tools.upstream.source import default_source, extract

MAIN = default_source()
needs_main = pytest.mark.skipif(
    MAIN is None, reason="../shared/deepod-main (DeepOD main's source tarball) is absent, as in a fresh "
                         "clone; pass a DeepOD checkout to `python -m tools.upstream --deepod-src` instead")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to apply the patches")


def _git(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "-c",
                           "core.autocrlf=false", *args], cwd=tree, capture_output=True, text=True)


@pytest.fixture(scope="module")
def pr(tmp_path_factory):
    """``(build result, output dir, DeepOD main with both patches applied, pristine DeepOD main)``."""
    if MAIN is None or shutil.which("git") is None:
        pytest.skip("needs ../shared/deepod-main and git")
    tmp = tmp_path_factory.mktemp("upstream")
    result = build_upstream(tmp / "out", MAIN)
    pristine = extract(MAIN, tmp / "pristine")
    applied = extract(MAIN, tmp / "applied")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "main"]):
        assert _git(applied, *args).returncode == 0
    patches_ = [tmp / "out" / PIN_FIX_DIR / PIN_FIX_PATCH, tmp / "out" / PATCH_NAME]
    for patch in patches_:  # each applies to main on its own, without git's whitespace warnings
        proc = _git(applied, "apply", "--check", "--whitespace=error", str(patch))
        assert proc.returncode == 0, proc.stderr
    for patch in patches_:
        proc = _git(applied, "apply", str(patch))
        assert proc.returncode == 0, proc.stderr
    return result, tmp / "out", applied, pristine


@needs_main
@needs_git
def test_the_patch_reproduces_the_written_files(pr):
    result, out, applied, pristine = pr
    package_files = {f"{TARGET_DIR}/__init__.py", *(f"{TARGET_DIR}/{f}" for f in MODULES.values())}
    assert set(result["new_files"]) == package_files | {TEST_PATH}
    assert {TABULAR_INIT, MODELS_INIT, README, "docs/api_reference.tabular.rst",
            "docs/zreferences.bib"} <= set(result["lines"])
    for rel in result["lines"]:
        assert (applied / rel).read_bytes() == (out / rel).read_bytes(), rel
    for rel in result["new_files"]:  # lines added per file, as reported
        assert result["changes"][rel] == (result["lines"][rel], 0), rel
    assert result["changes"][README] == (3, 2)  # count, row, reference; the old count and a blank at the end
    for rel in set(result["lines"]) - set(result["new_files"]):  # main's files keep their LF endings
        assert b"\r\n" not in (pristine / rel).read_bytes() and b"\r\n" not in (out / rel).read_bytes()
    for rel in ("PULL_REQUEST.md", f"{PIN_FIX_DIR}/EVIDENCE.md"):
        assert (out / rel).is_file()
    text = (out / "PULL_REQUEST.md").read_text()
    assert f"{result['patch_lines']} lines" in text and "scikit-learn >= 0.22" in text


@needs_main
@needs_git
def test_exports_readme_and_docs(pr):
    _, out, _, pristine = pr
    assert "from .mnp import MNP" in (out / TABULAR_INIT).read_text()
    assert "from deepod.models.tabular.mnp import MNP" in (out / MODELS_INIT).read_text()
    for rel in (TABULAR_INIT, MODELS_INIT):
        before, after = _all_list(pristine / rel), _all_list(out / rel)
        assert after.count("MNP") == 1 and [n for n in after if n != "MNP"] == before
    models_all = _all_list(out / MODELS_INIT)
    assert models_all.index("MNP") == models_all.index("RoSAS") + 1  # with the tabular models
    readme = (out / README).read_text()
    assert "DeepOD includes **28**" in (out / README).read_text()  # main says 27
    row = readme.index(" MNP, arXiv, 2024, weakly-supervised, Multi-Normal Prototypes Learning")
    assert readme.index(" RoSAS, IP&M") < row < readme.index("**Time-series Anomaly Detection models:**")
    assert ".. [#Dong2024MNP] Dong, Zhijin, et al." in readme
    assert "    models.PReNet\n    models.MNP\n" in (out / "docs/api_reference.tabular.rst").read_text()
    assert "arXiv:2408.14498" in (out / "docs/zreferences.bib").read_text()
    for patch, rel in ((patches.patch_readme, README), (patches.patch_tabular_init, TABULAR_INIT),
                       (patches.patch_models_init, MODELS_INIT)):
        assert patch((out / rel).read_text()) == (out / rel).read_text(), rel  # idempotent


def _all_list(path: Path) -> list[str]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__":
            return ast.literal_eval(node.value)
    raise AssertionError(f"no __all__ in {path}")


def test_patches_keep_crlf_endings():
    """The 0.4.1 sdist's files are CRLF; an edit built from such a file stays CRLF."""
    text = "from .devnet import DevNet\r\nfrom .rosas import RoSAS\r\n\r\n__all__ = ['DevNet', 'RoSAS']\r\n"
    patched = patches.patch_tabular_init(text)
    assert patched.count("\n") == patched.count("\r\n") == 5
    assert "from .mnp import MNP\r\n" in patched and "'RoSAS', 'MNP']" in patched


@needs_main
@needs_git
def test_subpackage_files_are_our_modules(pr):
    """Each file is one of ours: only its imports of deepod_mnp and the listed edits differ."""
    result, out, _, _ = pr
    files = {p: (out / p).read_text() for p in result["new_files"] if p.startswith(TARGET_DIR)}
    assert checks.check_package(files) == result["module_imports"]
    assert not {"ray", "einops"} & set(result["module_imports"])
    for module, filename in MODULES.items():
        source = package.module_path(module).read_text()
        allowed = set()  # line numbers of ours that the manifest's edits and drops may change
        for edit in (e for e in EDITS if e.module == module):
            first = source[:source.index(edit.old)].count("\n")
            allowed |= set(range(first, first + edit.old.count("\n") + 1))
        tree = ast.parse(source)
        for node in ast.walk(tree):  # imports: made relative, or pruned when an edit leaves them unused
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                allowed |= set(range(node.lineno - 1, node.end_lineno))
        for drop in (d for d in DROPS if d.module == module):
            cls, name = drop.qualname.split(".")
            node = next(f for c in tree.body if getattr(c, "name", None) == cls for f in c.body
                        if getattr(f, "name", None) == name)
            allowed |= set(range(node.lineno - 1, node.end_lineno + 1))
        ours = source.rstrip("\n").splitlines()  # the copy ends without blank lines
        theirs = files[f"{TARGET_DIR}/{filename}"].splitlines()
        matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
        for tag, i1, i2, _, _ in matcher.get_opcodes():
            for i in range(i1, i2) if tag != "equal" else ():
                line = ours[i]
                assert "deepod_mnp" in line or ".md" in line or i in allowed, (module, line)
        assert not any("deepod_mnp" in line for line in theirs)
    everything = "\n".join(files.values())
    for absent in ("set_num_threads", "ThreadPoolExecutor", "ensure_all_finite"):
        assert absent not in everything
    assert "class MNP(" in files[f"{TARGET_DIR}/{MODULES[MODEL_MODULE]}"]
    assert result["lines"][f"{TARGET_DIR}/__init__.py"] < 20


@needs_main
@needs_git
def test_same_scores_without_deepod_mnp(pr, tmp_path):
    """The DeepOD tree alone (deepod_mnp and ray blocked) gives exactly our scores."""
    _, _, applied, _ = pr
    data = make_weak_data(n_per_mode=40, n_anomalies=8, n_labeled=3, seed=5)
    X_test = make_weak_data(n_per_mode=10, n_anomalies=4, n_labeled=1, seed=6).X
    np.savez(tmp_path / "data.npz", X=data.X, y=data.y, X_test=X_test)
    code = textwrap.dedent("""
        import json
        import numpy as np, torch
        torch.set_num_threads(1)
        import deepod, deepod.models
        from deepod.core.base_model import BaseDeepAD
        from deepod.models.tabular import MNP
        blocked = []
        for name in ("deepod_mnp", "ray"):
            try:
                __import__(name)
            except ImportError:
                blocked.append(name)
        d = np.load(sys.argv[1])
        model = MNP(**json.loads(sys.argv[2])).fit(d["X"], d["y"])
        print(json.dumps({"deepod": deepod.__file__, "module": MNP.__module__, "blocked": blocked,
                          "same_export": deepod.models.MNP is MNP, "base": issubclass(MNP, BaseDeepAD),
                          "exports": sorted(n for n in dir(deepod.models.tabular.mnp) if not n.startswith("_")
                                            and not isinstance(getattr(deepod.models.tabular.mnp, n),
                                                               type(deepod))),
                          "train": model.decision_scores_.tolist(),
                          "test": model.decision_function(d["X_test"]).tolist()}))
    """)
    params = dict(TINY_MNP, n_ensemble=2, inference_batch_size=16)  # several chunks to score
    proc = run_isolated(applied, code, str(tmp_path / "data.npz"), json.dumps(params), block_ray=True,
                        timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["blocked"] == ["deepod_mnp", "ray"] and got["same_export"] and got["base"]
    assert got["module"] == "deepod.models.tabular.mnp.model" and got["exports"] == ["MNP"]
    assert Path(got["deepod"]).resolve().is_relative_to(applied.resolve())
    ours = MNP(**params).fit(data.X, data.y)
    np.testing.assert_array_equal(got["train"], ours.decision_scores_)
    np.testing.assert_array_equal(got["test"], ours.decision_function(X_test))


@needs_main
@needs_git
def test_generated_deepod_test_passes(pr):
    _, _, applied, _ = pr
    result = run_deepod_tests(applied, ("deepod.test.test_mnp",), timeout=300)
    (run,) = result["results"]
    assert result["ok"], result["log"]
    assert run["tests"] >= 8 and run["failures"] == run["errors"] == 0
    assert run["skipped"] == (1 if torch.cuda.is_available() else 0)  # the same-seed test is CPU only


@needs_main
def test_cli_prints_sizes(tmp_path):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert upstream_main(["--out", str(tmp_path / "cli"), "--deepod-src", str(MAIN)]) == 0
    text = printed.getvalue()
    assert f"{PATCH_NAME}:" in text and f"{TARGET_DIR}/ in all" in text
    assert (tmp_path / "cli" / TARGET_DIR / "model.py").is_file()


def test_runtime_package_does_not_load_the_tool():
    """``import deepod_mnp`` loads no release tooling (test_architecture checks the CLI's imports)."""
    code = ("import sys, deepod_mnp; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tools' or m.endswith('upstream')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert not (package.module_path("deepod_mnp.cli").parent / "upstream.py").exists()


def test_imports_become_relative():
    """Every form of import of a manifest module becomes a relative import of its file."""
    (a, file_a), (b, file_b) = list(MODULES.items())[:2]
    pkg_a, name_a = a.rsplit(".", 1)
    stem_a, stem_b = file_a[:-3], file_b[:-3]
    relative = "." * (a.count(".") - b.count(".") + 1) + b.rsplit(".", 1)[1]  # b, seen from a's package
    source = textwrap.dedent(f"""\
        from {pkg_a} import {name_a} as alias
        from {pkg_a} import {name_a}
        from {b} import X as Y, Z
        from {relative} import W


        def f():
            from {b} import V
            return V
        """)
    text = package._rewrite_imports(source, a)
    plain = f"from . import {stem_a}" + (f" as {name_a}" if name_a != stem_a else "")
    assert text.splitlines()[:4] == [f"from . import {stem_a} as alias", plain,
                                     f"from .{stem_b} import X as Y, Z", f"from .{stem_b} import W"]
    assert f"    from .{stem_b} import V\n" in text
    with pytest.raises(UpstreamError, match="does not go upstream"):
        package._rewrite_imports("from deepod_mnp import data\n", a)
    with pytest.raises(UpstreamError, match="from deepod_mnp"):
        package._rewrite_imports(f"import {b}\n", a)


def test_unused_imports_are_pruned():
    text, dropped = package.prune_imports("import os\nfrom typing import Any, List\n\nx: List = os.sep\n")
    assert text == "import os\nfrom typing import List\n\nx: List = os.sep\n" and dropped == ["Any"]


def test_a_stale_edit_fails_loudly(monkeypatch):
    module = next(iter(MODULES))
    stale = EDITS[0].__class__(module, "text that is not there", "", "a test")
    monkeypatch.setattr(package, "EDITS", (stale,))
    with pytest.raises(UpstreamError, match="expects its text once, found it 0 times"):
        package.upstream_source(module)


@pytest.mark.parametrize("code, message", [
    ("import torch\ntorch.set_num_threads(1)\n", "thread count"),
    ("import numpy as np\nnp.random.seed(0)\n", "reseeds"),
    ("import torch\ntorch.manual_seed(0)\n", "outside torch.random.fork_rng"),
    ("from sklearn.utils import check_array\ncheck_array([[1]], ensure_all_finite=True)\n",
     "scikit-learn 1.6"),
    ("import torch\ntorch.load('x', weights_only=True)\n", "torch 1.13"),
    ("import requests\n", "does not depend on"),
    ("import ray\n", "does not depend on"),
    ("x = 'deepod_mnp'\n", "mentions deepod_mnp"),
    ("from .elsewhere import x\n", "outside the subpackage"),
])
def test_checks_reject(code, message):
    with pytest.raises(UpstreamError, match=message):
        checks.check_file("m.py", code, {"m.py"})


def test_checks_accept_guarded_code():
    code = textwrap.dedent("""\
        import torch
        from .m import x
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
        try:
            state = torch.load('x', weights_only=True)
        except TypeError:
            state = torch.load('x')
        """)
    assert checks.check_file("m.py", code, {"m.py"}) == {"torch"}


def test_pin_fix_requirements_and_lazy_ray():
    requirements = "numpy>=1.19\nscikit_learn>=0.20.0\ntorch>=1.10.0,<1.13.1\nray==2.6.1\neinops\n"
    text, notes, ray_line = pinfix.fix_requirements(requirements)
    assert text == "numpy>=1.19\nscikit_learn>=0.22\ntorch>=1.10.0\neinops\n" and ray_line == "ray==2.6.1"
    assert len(notes) == 3
    setup = pinfix.fix_setup("setup(\n    install_requires=requirements,\n)\n", ray_line)
    assert "    extras_require={'tune': ['ray==2.6.1']},\n" in setup
    module = textwrap.dedent('''\
        import numpy as np
        from ray import tune
        from ray.air import session, Checkpoint


        class M:
            def fit_auto_hyper(self):
                """Doc."""
                return tune.run(lambda: session.report(Checkpoint))

            def fit(self):
                return np.zeros(1)
        ''')
    lazy = pinfix.lazy_ray_imports(module, "m.py")
    assert "from ray" not in lazy.split("class M")[0]
    fit_auto_hyper = lazy.split("def fit_auto_hyper(self):\n")[1].split("\n\n")[0].splitlines()
    assert fit_auto_hyper[:3] == ['        """Doc."""', "        from ray import tune",
                                  "        from ray.air import Checkpoint, session"]
    namespace: dict = {}
    exec(compile(lazy, "m.py", "exec"), namespace)  # importable without ray
    assert namespace["M"]().fit().tolist() == [0.0]
    with pytest.raises(UpstreamError, match="outside a function"):
        pinfix.lazy_ray_imports("from ray import tune\nX = tune.choice([1])\n", "m.py")


def test_methods_are_dropped_or_replaced():
    source = "class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n"
    assert package._drop(source, "A.f") == "class A:\n    def g(self):\n        return 2\n"
    replaced = package._drop(source, "A.f", "def f(self):\n    return 3\n")
    assert replaced == source.replace("return 1", "return 3")
    with pytest.raises(UpstreamError, match="A.h not found"):
        package._drop(source, "A.h")
