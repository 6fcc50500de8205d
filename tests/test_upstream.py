"""``python -m tools.upstream``: MNP's pull request against DeepOD ``main`` applies, works without
deepod_mnp and trains exactly as deepod_mnp.MNP does.

DeepOD ``main`` comes from the ``git archive`` tarball in ``../shared/deepod-main``;
without it (a fresh clone) the tests that need it skip.
"""
from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import re
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
from deepod_mnp.deepod_tabular.mnp import MNP as DeepODMNP
from tools.upstream import checks, patches, pinfix
from tools.upstream.__main__ import main as upstream_main
from tools.upstream.build import benchmark_table, build_upstream, module_path
from tools.upstream.manifest import (
    EVIDENCE_TESTS,
    MAX_MODULE_LINES,
    MODELS_INIT,
    PATCH_NAME,
    PIN_FIX_DIR,
    PIN_FIX_PATCH,
    README,
    TABULAR_INIT,
    TARGET_PATH,
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
    assert set(result["new_files"]) == {TARGET_PATH, TEST_PATH}
    # besides the module and its test, only DeepOD's model registry, README and docs
    assert set(result["lines"]) == {TARGET_PATH, TEST_PATH, TABULAR_INIT, MODELS_INIT, README,
                                    "docs/api_reference.tabular.rst", "docs/zreferences.bib"}
    assert set(result["changes"]) == set(result["lines"])
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
    assert f"{result['patch_lines']} lines" in text
    assert f"`{TARGET_PATH}` ({result['lines'][TARGET_PATH]} lines)" in text
    assert "arXiv:2408.14498" in text and "| MNP | DevNet |" in text


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
def test_the_module_is_ours_verbatim(pr):
    """DeepOD receives deepod_mnp/deepod_tabular/mnp.py byte for byte: one file in DeepOD's size range."""
    result, out, applied, _ = pr
    text = (out / TARGET_PATH).read_text()
    ours = module_path().read_bytes()
    assert (out / TARGET_PATH).read_bytes() == ours == (applied / TARGET_PATH).read_bytes()
    assert result["lines"][TARGET_PATH] == text.count("\n") <= MAX_MODULE_LINES
    assert checks.check_module(TARGET_PATH, text) == result["module_imports"]
    assert set(result["module_imports"]) == {"collections", "deepod", "numpy", "sklearn", "torch"}
    assert "class MNP(BaseDeepAD)" in text and "deepod_mnp" not in text
    for absent in ("set_num_threads", "ThreadPoolExecutor", "ensure_all_finite", "def fit(", "def _training(",
                   "def decision_function(", "def save_model("):  # DeepOD's own fit, loop and scoring run
        assert absent not in text


#: deepod_mnp.MNP's parameters that DeepOD's MNP takes under another name
RENAMED = {"n_ensemble": "n_members"}


@needs_main
@needs_git
def test_deepod_main_trains_exactly_as_deepod_mnp(pr, tmp_path):
    """DeepOD's MNP run through DeepOD main's own fit and loop (deepod_mnp and ray blocked) trains the
    very weights deepod_mnp.MNP trains, with the same losses; the scores agree to float rounding (ours are
    fused, DeepOD's member by member in DataLoader batches)."""
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
        model = MNP(**json.loads(sys.argv[2]))
        other = MNP(**json.loads(sys.argv[2]))  # built before the first fit: BaseDeepAD reseeds globally
        model.fit(d["X"], d["y"])
        torch.save(model.net.state_dict(), sys.argv[3])
        print(json.dumps({"deepod": deepod.__file__, "module": MNP.__module__, "blocked": blocked,
                          "same_export": deepod.models.MNP is MNP, "base": issubclass(MNP, BaseDeepAD),
                          "n_ensemble": model.n_ensemble, "steps": len(model.train_loader),
                          "history": np.array(model.criterion.history).tolist(),
                          "train": model.decision_scores_.tolist(),
                          "test": model.decision_function(d["X_test"]).tolist(),
                          "other": other.fit(d["X"], d["y"]).decision_function(d["X_test"]).tolist()}))
    """)
    ours = MNP(**TINY_MNP, n_ensemble=2, scaler=None).fit(data.X, data.y)
    theirs = {RENAMED.get(k, k): v for k, v in ours.get_params().items()
              if k in inspect.signature(DeepODMNP).parameters or k in RENAMED}
    theirs["verbose"] = 0
    proc = run_isolated(applied, code, str(tmp_path / "data.npz"), json.dumps(theirs),
                        str(tmp_path / "sd.pt"), block_ray=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["blocked"] == ["deepod_mnp", "ray"] and got["same_export"] and got["base"]
    assert got["module"] == "deepod.models.tabular.mnp" and got["n_ensemble"] == 1
    assert Path(got["deepod"]).resolve().is_relative_to(applied.resolve())
    assert got["steps"] == ours.epoch_steps_ == TINY_MNP["epoch_steps"]
    state = torch.load(tmp_path / "sd.pt")
    assert list(state) == list(ours.net.state_dict())
    for name, value in ours.net.state_dict().items():
        assert torch.equal(state[name], value), name  # bit for bit
    history = np.array(got["history"])  # (epochs, members, losses)
    losses = ours.loss_history_[[f"loss_{n}" for n in ("recon", "prototype", "score")]]
    for member in range(2):
        np.testing.assert_array_equal(history[:, member], losses.loc[member].to_numpy())
    np.testing.assert_allclose(got["train"], ours.decision_scores_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["test"], ours.decision_function(X_test), rtol=0, atol=1e-6)
    assert got["other"] == got["test"]


@needs_main
@needs_git
def test_generated_deepod_test_passes(pr):
    _, _, applied, _ = pr
    assert "deepod.test.test_mnp" in EVIDENCE_TESTS
    result = run_deepod_tests(applied, ("deepod.test.test_mnp",), timeout=300)
    (run,) = result["results"]
    assert result["ok"], result["log"]
    assert run["tests"] >= 9 and run["failures"] == run["errors"] == 0
    assert run["skipped"] == (2 if torch.cuda.is_available() else 0)  # bit-for-bit tests are CPU only


@needs_main
def test_cli_prints_sizes(tmp_path):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert upstream_main(["--out", str(tmp_path / "cli"), "--deepod-src", str(MAIN)]) == 0
    text = printed.getvalue()
    out = tmp_path / "cli"
    assert (out / TARGET_PATH).read_bytes() == module_path().read_bytes()
    # the sizes printed are those of the files written, counted here independently
    patch = len((out / PATCH_NAME).read_text().splitlines())
    pin_fix = len((out / PIN_FIX_DIR / PIN_FIX_PATCH).read_text().splitlines())
    assert f"{PATCH_NAME}: {patch} lines; {PIN_FIX_DIR}/{PIN_FIX_PATCH}: {pin_fix} lines" in text
    module = len(module_path().read_text().splitlines())
    assert re.search(rf"^ +{module}  {re.escape(TARGET_PATH)}  \(new\)$", text, flags=re.MULTILINE), text
    test = len((out / TEST_PATH).read_text().splitlines())
    assert re.search(rf"^ +{test}  {re.escape(TEST_PATH)}  \(new\)$", text, flags=re.MULTILINE), text
    assert f"{TARGET_PATH} imports: collections, deepod, numpy, sklearn, torch" in text


def test_runtime_package_does_not_load_the_tool():
    """``import deepod_mnp`` loads no release tooling (test_architecture checks the CLI's imports)."""
    code = ("import sys, deepod_mnp; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tools' or m.endswith('upstream')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert not (module_path().parents[1] / "upstream.py").exists()


@pytest.mark.parametrize("code, message", [
    ("import torch\ntorch.set_num_threads(1)\n", "thread count"),
    ("import numpy as np\nnp.random.seed(0)\n", "reseeds"),
    ("import torch\ntorch.manual_seed(0)\n", "outside torch.random.fork_rng"),
    ("from sklearn.utils import check_array\ncheck_array([[1]], ensure_all_finite=True)\n",
     "scikit-learn 1.6"),
    # DeepOD declares scikit_learn>=0.20.0; check_array's input_name came with 1.1
    ("from sklearn.utils import check_array\ncheck_array([[1]], input_name='X')\n", "scikit-learn 1.1"),
    ("import torch\ntorch.load('x', weights_only=True)\n", "torch 1.13"),
    ("import requests\n", "does not depend on"),
    ("import ray\n", "does not depend on"),
    ("x = 'deepod_mnp'\n", "mentions deepod_mnp"),
    ("from .elsewhere import x\n", "relative import"),
])
def test_checks_reject(code, message):
    with pytest.raises(UpstreamError, match=message):
        checks.check_file("m.py", code)


def test_checks_limit_the_module_to_deepods_size():
    body = "class MNP:\n    pass\n"
    assert checks.check_module("m.py", body + "\n" * (MAX_MODULE_LINES - 2)) == []
    with pytest.raises(UpstreamError, match=f"has {MAX_MODULE_LINES + 1} lines"):
        checks.check_module("m.py", body + "\n" * (MAX_MODULE_LINES - 1))
    with pytest.raises(UpstreamError, match="defines no class MNP"):
        checks.check_module("m.py", "x = 1\n")


def test_checks_accept_guarded_code():
    code = textwrap.dedent("""\
        import torch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
        try:
            state = torch.load('x', weights_only=True)
        except TypeError:
            state = torch.load('x')
        """)
    assert checks.check_file("m.py", code) == {"torch"}


def test_pin_fix_requirements_and_lazy_ray():
    requirements = "numpy>=1.19\nscikit_learn>=0.20.0\ntorch>=1.10.0,<1.13.1\nray==2.6.1\neinops\n"
    text, notes, ray_line = pinfix.fix_requirements(requirements)
    assert text == "numpy>=1.19\nscikit_learn>=0.20.0\ntorch>=1.10.0\neinops\n" and ray_line == "ray==2.6.1"
    assert len(notes) == 2
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


def test_pin_fix_lets_deepods_encoder_layers_take_is_causal():
    """torch 2's TransformerEncoder passes ``is_causal=`` to its layers; DeepOD's take it (and ignore it)."""
    module = textwrap.dedent("""\
        from typing import Optional
        import torch
        from torch import Tensor


        class Annotated(torch.nn.Module):
            def forward(self, src: Tensor, src_mask: Optional[Tensor] = None,
                        src_key_padding_mask: Optional[Tensor] = None) -> Tensor:
                return src


        class Plain(torch.nn.Module):
            def forward(self, src, src_mask=None, src_key_padding_mask=None):
                return src * 2


        class Other(torch.nn.Module):
            def forward(self, x, mask=None):
                return x
        """)
    fixed = pinfix.accept_is_causal(module)
    assert "src_key_padding_mask: Optional[Tensor] = None, is_causal: bool = False) -> Tensor:" in fixed
    assert "def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):" in fixed
    assert "def forward(self, x, mask=None):" in fixed and pinfix.accept_is_causal(fixed) == fixed
    namespace: dict = {}
    exec(compile(fixed, "m.py", "exec"), namespace)
    x = torch.ones(3, 2, 4)  # called as torch.nn.TransformerEncoder.forward calls its layers
    out = namespace["Plain"]()(x, src_mask=None, is_causal=False, src_key_padding_mask=None)
    torch.testing.assert_close(out, 2 * x)
    assert "is_causal=is_causal" in inspect.getsource(torch.nn.TransformerEncoder.forward)


def test_benchmark_table_reads_the_main_results(tmp_path):
    rows = ["dataset,model,seed,status,auc_pr", "a,MNP,42,ok,0.5", "a,MNP,43,ok,0.7", "a,DevNet,42,ok,0.25",
            "a,DevNet,43,failed,", "b,MNP,42,ok,0.1", "b,XGBOD,42,ok,0.9"]
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    table = benchmark_table(tmp_path / "r.csv").splitlines()
    assert table[0] == "| data set | MNP | DevNet | PReNet | FeaWAD | RoSAS | DeepSAD |"
    assert table[2] == "| a | 0.600 | 0.250 | failed | failed | failed | failed |"
    assert table[3] == "| b | 0.100 | failed | failed | failed | failed | failed |"
    assert table[4].startswith("| average | 0.350 | 0.250 |")
