"""Peak extra memory of scoring a large input, per detector, each in a fresh subprocess.

Each detector is fitted on a small synthetic set, then scores ``--mb`` MB of
float32 rows (``--features`` columns). The figure is the growth of the
process's peak resident set (``resource.getrusage`` maxrss, which sees torch's
allocations, unlike tracemalloc) from just before scoring to just after; the
input is allocated (in float32, with no float64 temporary) before the first
reading. Run: ``python scripts/scoring_memory.py [--mb 122] [--features 8]``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, warnings
import numpy as np, torch
torch.set_num_threads(1)
from deepod_mnp import make_detector
name, mb, d = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.normal(size=(2000, d)).astype(np.float32)
y = np.zeros(2000, dtype=int); y[:20] = 1; X[:20] += 4
small = dict(epochs=1, epoch_steps=4)
if name == "MNP":
    small.update(pretrain_epochs=1, n_prototypes=2, n_ensemble=1)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = make_detector(name, device="cpu", **small).fit(X, y)
big = rng.standard_normal((int(mb * 2**20 / (4 * d)), d), dtype=np.float32)  # no float64 temporary
model.decision_function(big[:10])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scores = model.decision_function(big)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"detector": name, "rows": len(big), "input_mb": big.nbytes / 2**20,
                  "peak_extra_mb": (after - before) / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=122.0)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=["MNP", "DevNetAnoOnly", "DeepSADAnoOnly"])
    args = parser.parse_args()
    for name in args.models:
        out = subprocess.run([sys.executable, "-c", CHILD, name, str(args.mb), str(args.features)],
                             capture_output=True, text=True, check=True)
        print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1])))


if __name__ == "__main__":
    main()
