"""``deepod-mnp upstream``: the generated DeepOD pull request works without deepod_mnp and matches it.

The DeepOD sources are a copy of the installed ``deepod`` package (no network)
plus a README excerpt in the released README.rst's layout (CRLF line endings).
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import deepod
import numpy as np
import pytest
from conftest import TINY_MNP, make_weak_data

from deepod_mnp import MNP, upstream
from deepod_mnp.cli import main

ALLOWED = {"numpy", "scipy", "sklearn", "pandas", "torch", "tqdm", "deepod"}
README_EXCERPT = "\r\n".join([
    "Python Deep Outlier/Anomaly Detection (DeepOD)",
    "==================================================",
    "",
    "DeepOD includes **25** deep outlier detection / anomaly detection algorithms.",
    "",
    "**Tabular Anomaly Detection models:**",
    "",
    ".. csv-table:: ",
    ' :header: "Model", "Venue", "Year", "Type", "Title"',
    " :widths: 4, 4, 4, 8, 20 ",
    "",
    " Deep SVDD, ICML, 2018, unsupervised, Deep One-Class Classification  [#Ruff2018Deep]_",
    " DevNet, KDD, 2019, weakly-supervised, Deep Anomaly Detection with Deviation Networks",
    " ICL, ICLR, 2022, unsupervised, Anomaly Detection for Tabular Data with Internal Contrastive Learning",
    "",
    "**Time-series Anomaly Detection models:**",
    "",
    ".. csv-table:: ",
    ' :header: "Model", "Venue", "Year", "Type", "Title"',
    "",
    " TimesNet, ICLR, 2023, unsupervised, TIMESNET: Temporal 2D-Variation Modeling",
    "",
    "Reference",
    "~~~~~~~~~~~~~~~~~",
    "",
    '.. [#Ruff2018Deep] Ruff, Lukas, et al. "Deep one-class classification." ICML. 2018.',
    "",
])
# Blocks deepod_mnp in a subprocess, so only the generated DeepOD tree can provide MNP.
BLOCKER = textwrap.dedent("""
    import sys
    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] == 'deepod_mnp':
                raise ImportError('blocked')
    sys.meta_path.insert(0, Blocker())
""")


def _isolated(tree: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", BLOCKER + code, *args], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def pr(tmp_path_factory):
    """``(build result, output dir, patched DeepOD tree, pristine DeepOD tree)``."""
    tmp = tmp_path_factory.mktemp("upstream")
    src = tmp / "deepod-src"
    shutil.copytree(Path(deepod.__file__).parent, src / "deepod",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (src / "README.rst").write_bytes(README_EXCERPT.encode())
    result = upstream.build_upstream(tmp / "out", src)
    applied = tmp / "applied"
    shutil.copytree(src, applied)
    patch = tmp / "out" / upstream.PATCH_NAME
    if shutil.which("git"):
        proc = subprocess.run(["git", "apply", str(patch)], cwd=applied, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    else:  # pragma: no cover
        for rel in result["changed"]:
            shutil.copyfile(tmp / "out" / rel, applied / rel)
    return result, tmp / "out", applied, src


def test_writes_the_pull_request_files(pr):
    result, out, applied, _ = pr
    expected = {upstream.TARGET_PATH, upstream.TABULAR_INIT, upstream.MODELS_INIT, upstream.TEST_PATH,
                "README.rst"}
    assert set(result["changed"]) == expected
    for rel in [*expected, upstream.PATCH_NAME, "PULL_REQUEST.md", "pin-fix/EVIDENCE.md"]:
        assert (out / rel).is_file(), rel
    assert result["patch_lines"] > 500 and result["patch_checked"] in (True, None)
    for rel in expected:  # the patch reproduces exactly the written files
        assert (applied / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_generated_module_is_self_contained(pr):
    _, out, _, _ = pr
    text = (out / upstream.TARGET_PATH).read_text()
    assert "deepod_mnp" not in text
    tree = ast.parse(text)
    tops = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            tops.add(node.module.split(".")[0])
    assert {t for t in tops if not upstream._is_stdlib(t)} <= ALLOWED
    assert "from deepod.core.base_model import BaseDeepAD" in text
    assert text.count("from __future__ import annotations") == 1
    assert "class MNP(BaseDetector" in text and "class BaseDetector(BaseDeepAD" in text
    assert "def reconstruction_error(" in text
    assert "losses.reconstruction_error" not in text and "val.check_X" not in text


def _all_list(path: Path) -> list[str]:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__":
            return ast.literal_eval(node.value)
    raise AssertionError(f"no __all__ in {path}")


def test_exports_readme_and_crlf(pr):
    _, out, _, src = pr
    assert "from .mnp import MNP" in (out / upstream.TABULAR_INIT).read_text()
    assert "from deepod.models.tabular.mnp import MNP" in (out / upstream.MODELS_INIT).read_text()
    for rel in (upstream.TABULAR_INIT, upstream.MODELS_INIT):
        before, after = _all_list(src / rel), _all_list(out / rel)
        assert after.count("MNP") == 1 and [n for n in after if n != "MNP"] == before
    readme = (out / "README.rst").read_bytes().decode()
    assert readme.count("\n") == readme.count("\r\n")
    assert " MNP, arXiv, 2024, weakly-supervised, Multi-Normal Prototypes Learning" in readme
    assert readme.index(" MNP, arXiv") > readme.index(" DevNet, KDD") > 0
    assert readme.index(" MNP, arXiv") < readme.index("**Time-series")
    assert ".. [#Dong2024MNP] Dong, Zhijin, et al." in readme and "arXiv:2408.14498" in readme
    assert "**26**" in readme
    assert upstream.patch_readme(readme) == readme  # idempotent


def test_same_scores_without_deepod_mnp(pr, tmp_path):
    _, _, applied, _ = pr
    data = make_weak_data(n_per_mode=40, n_anomalies=8, n_labeled=3, seed=5)
    X_test = make_weak_data(n_per_mode=10, n_anomalies=4, n_labeled=1, seed=6).X
    np.savez(tmp_path / "data.npz", X=data.X, y=data.y, X_test=X_test)
    code = textwrap.dedent("""
        import json, sys
        import numpy as np, torch
        torch.set_num_threads(1)
        import deepod, deepod.models
        from deepod.models.tabular import MNP
        try:
            import deepod_mnp  # noqa: F401
            blocked = False
        except ImportError:
            blocked = True
        d = np.load(sys.argv[1])
        model = MNP(**json.loads(sys.argv[2])).fit(d["X"], d["y"])
        print(json.dumps({"deepod": deepod.__file__, "module": MNP.__module__, "blocked": blocked,
                          "same_export": deepod.models.MNP is MNP,
                          "train": model.decision_scores_.tolist(),
                          "test": model.decision_function(d["X_test"]).tolist()}))
    """)
    proc = _isolated(applied, code, str(tmp_path / "data.npz"), json.dumps(TINY_MNP))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["blocked"] and got["same_export"]
    assert got["module"] == "deepod.models.tabular.mnp"
    assert Path(got["deepod"]).resolve().is_relative_to(applied.resolve())
    ours = MNP(**TINY_MNP).fit(data.X, data.y)
    np.testing.assert_allclose(got["train"], ours.decision_scores_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["test"], ours.decision_function(X_test), rtol=0, atol=1e-6)


def test_generated_deepod_test_passes(pr):
    _, _, applied, _ = pr
    result = upstream.run_deepod_tests(applied, ("deepod.test.test_mnp",))
    (run,) = result["results"]
    assert result["ok"], result["log"]
    assert run["tests"] >= 4 and run["failures"] == run["errors"] == 0


def test_cli_upstream(pr, tmp_path):
    _, _, _, src = pr
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["upstream", "--out", str(tmp_path / "cli"), "--deepod-src", str(src)]) == 0
    assert "deepod-mnp.patch" in printed.getvalue()
    assert (tmp_path / "cli" / upstream.TARGET_PATH).is_file()


def test_docs_and_bib_patches():
    api = textwrap.dedent("""\
        Weakly-supervised Models
        ^^^^^^^^^^^^^^^^^^^^^^^^^^
        .. autosummary::
           :toctree: generated

            models.DevNet
            models.PReNet


        .. rubric:: References
        """)
    patched = upstream.patch_docs_api(api)
    assert "    models.PReNet\n    models.MNP\n" in patched
    assert upstream.patch_docs_api(patched) == patched
    bib = upstream.patch_bib("@article{x,\n  title={X}\n}")
    assert bib.count("@article") == 2 and "arXiv:2408.14498" in bib
    assert upstream.patch_bib(bib) == bib


def test_pin_fix_for_the_released_sdist(tmp_path):
    """The 0.4.1 sdist: setup.py reads requirements.txt, which it lacks; the pin is in egg-info."""
    (tmp_path / "setup.py").write_text("open('requirements.txt')\n")
    (tmp_path / "deepod.egg-info").mkdir()
    (tmp_path / "deepod.egg-info" / "requires.txt").write_text("numpy>=1.19\ntorch<1.13.1,>=1.10.0\n")
    result = upstream.build_pin_fix(tmp_path, tmp_path / "pin-fix")
    assert result["released_torch_requirement"] == "torch<1.13.1,>=1.10.0"
    assert result["torch_requirement"] == "torch>=1.10.0"
    patch = (tmp_path / "pin-fix" / "pin-fix.patch").read_text()
    assert "+torch>=1.10.0" in patch and "+include requirements.txt" in patch


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for name, text in files.items():
        (pkg / name).write_text(textwrap.dedent(text))
    return pkg


def test_generator_resolves_aliases(tmp_path):
    pkg = _fake_package(tmp_path, {
        "helpers.py": '"""Helpers."""\nimport numpy as np\n\n\ndef twice(x):\n    return 2 * np.asarray(x)\n',
        "detector.py": """\
            '''Detector.'''
            from deepod_mnp import helpers as h
            from deepod_mnp.helpers import twice as double


            class MNP:
                def score(self, x):
                    from deepod_mnp import helpers
                    return h.twice(x) + double(x) + helpers.twice(x)
            """})
    text = upstream.assemble_module(pkg)
    assert "double = twice" in text and "return twice(x) + double(x) + twice(x)" in text
    namespace: dict = {}
    exec(compile(text, "mnp.py", "exec"), namespace)
    assert namespace["MNP"]().score(1).tolist() == 6


@pytest.mark.parametrize("files, message", [
    ({"detector.py": "from deepod_mnp import registry\n\n\nclass MNP:\n    pass\n"}, "cannot go into"),
    ({"detector.py": "import requests\n\n\nclass MNP:\n    pass\n"}, "DeepOD does not depend on"),
    ({"helpers.py": "def max(a):\n    return a\n",
      "detector.py": "from deepod_mnp.helpers import max as m\n\n\nclass MNP:\n    n = max(1, 2)\n"},
     "builtin `max`"),
    ({"helpers.py": "def f():\n    return 1\n",
      "detector.py": "from deepod_mnp import helpers\n\n\nclass MNP:\n    def g(self, f):\n"
                     "        return helpers.f() + f\n"}, "shadows"),
    ({"helpers.py": "X = 1\n", "detector.py": "from deepod_mnp import helpers\nX = 2\n\n\nclass MNP:\n"
                                              "    y = helpers.X\n"}, "different things"),
])
def test_generator_fails_loudly(tmp_path, files, message):
    files = {**files, "registry.py": "A = 1\n"}
    with pytest.raises(upstream.UpstreamError, match=message):
        upstream.assemble_module(_fake_package(tmp_path, files))
