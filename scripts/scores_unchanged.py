"""Whether a change to the code changed what MNP (and SelectByLabels) score: bit for bit.

Usage::

    python scripts/scores_unchanged.py --save BEFORE.npz      # on the code before the change
    python scripts/scores_unchanged.py --compare BEFORE.npz   # on the code after it

Fits, one torch thread, on the nine main sets' protocol splits (PROTOCOL.md:
60/35/5 per class, min-max scaling fitted on train, 1 % of the train anomalies
labeled), seeds 42-46 (``--seeds``):

* ``MNP`` with its defaults,
* ``MNP-log``: ``MNP(recon_norm='log')``, SelectByLabels' candidate,
* ``SelectByLabels`` with its defaults (``--no-select`` skips it: the slowest),

and scores each test split. ``--save`` writes the scores; ``--compare``
checks each against the saved ones with ``numpy.array_equal`` and exits 1 when
one differs (a refactoring that removes weight, not behaviour, changes no
bit). Data root: ``../shared/data`` or ``$DEEPOD_MNP_DATA``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings

import numpy as np
import torch

from deepod_mnp import MNP, SelectByLabels
from deepod_mnp.benchmark.protocol import make_split
from deepod_mnp.data import load_dataset

MAIN_SETS = ("pendigits", "thyroid", "cardio", "pima", "annthyroid", "vehicle_insurance", "gamma", "bank",
             "backdoor")
MODELS = {
    "MNP": lambda seed: MNP(device="cpu", random_state=seed),
    "MNP-log": lambda seed: MNP(device="cpu", random_state=seed, recon_norm="log"),
    "SelectByLabels": lambda seed: SelectByLabels(device="cpu", random_state=seed),
}


def scores(models: list[str], seeds: list[int], sets: list[str]) -> dict[str, np.ndarray]:
    """``{'<set>/<model>/<seed>': test scores}`` of every fit."""
    out = {}
    for name in sets:
        dataset = load_dataset(name)
        split = make_split(dataset.X, dataset.y, labeled_ratio=0.01)
        for model in models:
            for seed in seeds:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    detector = MODELS[model](seed).fit(split.X_train, split.y_train_semi)
                out[f"{name}/{model}/{seed}"] = detector.decision_function(split.X_test)
                logging.info("%s %s %d: %.1f s", name, model, seed, time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", metavar="FILE", help="write the scores to FILE (.npz)")
    mode.add_argument("--compare", metavar="FILE", help="compare with the scores in FILE (.npz)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    parser.add_argument("--data", nargs="+", default=list(MAIN_SETS))
    parser.add_argument("--no-select", action="store_true", help="leave SelectByLabels out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    models = [m for m in MODELS if not (args.no_select and m == "SelectByLabels")]
    got = scores(models, args.seeds, args.data)
    if args.save:
        np.savez_compressed(args.save, **got)
        print(f"saved {len(got)} score vectors to {args.save}")
        return 0
    with np.load(args.compare) as saved:
        differ = [key for key in got if key not in saved or not np.array_equal(got[key], saved[key])]
    print(f"{len(got) - len(differ)} of {len(got)} score vectors bit-identical to {args.compare}")
    for key in differ:
        print(f"  differs: {key}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
