"""Check that the default input scaler is the identity on the protocol's features, data set by data set.

For each data set, the protocol's min-max scaled train and test splits are fed
through ``FeatureScaler()`` fitted on the train split (what a detector
with the default ``scaler='minmax'`` does in ``fit``) and compared, as the
float32 arrays the networks see, with the splits cast to float32 directly
(``scaler=None``). Identical arrays mean identical models and scores: the
records made before the scaler existed stand.

    python scripts/check_minmax_identity.py
"""
from __future__ import annotations

import glob
import sys

import numpy as np

from deepod_mnp.benchmark.protocol import make_split
from deepod_mnp.data import data_root, load_dataset
from deepod_mnp.method.scaling import FeatureScaler

MAIN = ["pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
        "backdoor"]


def main() -> int:
    root = data_root()
    specs = MAIN + sorted(glob.glob(str(root / "adbench_pool" / "*.npz"))) + \
        sorted(glob.glob(str(root / "adbench_embeddings" / "*.npz")))
    bad = 0
    for spec in specs:
        ds = load_dataset(spec)
        split = make_split(ds.X, ds.y, 0.01)
        scaler = FeatureScaler().fit(split.X_train)
        same = all(np.array_equal(scaler.transform(X, np.float32), X.astype(np.float32))
                   for X in (split.X_train, split.X_test))
        bad += not same
        print(f"{ds.name:24s} {'identical' if same else 'DIFFERENT'}", flush=True)
    print(f"{len(specs) - bad} of {len(specs)} data sets identical")
    return int(bad > 0)


if __name__ == "__main__":
    sys.exit(main())
