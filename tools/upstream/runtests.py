"""Run code and DeepOD's unittest modules against a DeepOD tree, with deepod_mnp blocked from import."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tools.upstream.manifest import EVIDENCE_TESTS, UpstreamError

# Prepended to code that must run against a DeepOD tree alone: neither our package nor
# (with block_ray) ray can be imported.
_BLOCKER = """import sys
class _Block:
    def __init__(self, names):
        self.names = names
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in self.names:
            raise ImportError(name + ' is blocked: the DeepOD tree must work without it')
        return None
sys.meta_path.insert(0, _Block({names!r}))
"""

_RUN_TESTS = textwrap.dedent("""
    import json, platform, time, unittest
    import deepod, numpy, scipy, sklearn, pandas, torch
    results = []
    for name in sys.argv[1:]:
        t0 = time.perf_counter()
        suite = unittest.defaultTestLoader.loadTestsFromName(name)
        res = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
        results.append({"module": name, "tests": res.testsRun, "failures": len(res.failures),
                        "errors": len(res.errors), "skipped": len(res.skipped),
                        "seconds": round(time.perf_counter() - t0, 1),
                        "problems": [str(t) + ": " + tb.strip().splitlines()[-1]
                                     for t, tb in res.failures + res.errors]})
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "numpy": numpy.__version__, "scipy": scipy.__version__,
                "scikit-learn": sklearn.__version__, "pandas": pandas.__version__,
                "platform": platform.platform()}
    print("@@RESULT@@" + json.dumps({"deepod_file": deepod.__file__, "results": results,
                                     "versions": versions}))
""")


def run_isolated(tree: Path, code: str, *args: str, block_ray: bool = False,
                 timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -c code args`` in ``tree`` (first on sys.path), deepod_mnp (and ray) blocked, one thread."""
    names = {"deepod_mnp", *(["ray"] if block_ray else [])}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run([sys.executable, "-c", _BLOCKER.format(names=sorted(names)) + code, *args],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)


def run_deepod_tests(tree: str | Path, modules: tuple[str, ...] = EVIDENCE_TESTS, *,
                     block_ray: bool = True, timeout: float = 900) -> dict[str, Any]:
    """Run DeepOD unittest modules against ``tree``; ``ok``, per-module ``results``, ``versions``, ``log``."""
    tree = Path(tree)
    proc = run_isolated(tree, _RUN_TESTS, *modules, block_ray=block_ray, timeout=timeout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")), None)
    if line is None:
        raise UpstreamError(f"DeepOD's tests did not run: {proc.stderr.strip()[-2000:]}")
    result = json.loads(line[len("@@RESULT@@"):])
    if not Path(result["deepod_file"]).resolve().is_relative_to(tree.resolve()):
        raise UpstreamError(f"the tests imported deepod from {result['deepod_file']}, not from {tree}")
    result["ok"] = all(r["failures"] == 0 and r["errors"] == 0 and r["tests"] > 0 for r in result["results"])
    result["ray_blocked"] = block_ray
    result["log"] = proc.stderr[-4000:]
    return result
