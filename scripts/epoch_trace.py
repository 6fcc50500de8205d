"""Trace each MNP member's development AUC-PR epoch by epoch (no test or validation labels).

Uses the development split of ``select_defaults.py`` (70 % of the protocol's
train split to fit, 30 % to evaluate). After every training epoch (the
members train side by side) it scores the development rows with each member alone and
records its AUC-PR, the median logit of the score head for development
anomalies and normals, and the epoch's three mean losses.

Usage::

    python scripts/epoch_trace.py --data backdoor --seeds 45 46 47 --epochs 8 \
        --params '{"epoch_steps": 64}' --out results/defaults/epoch_trace_backdoor_64.csv
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import torch
from select_defaults import dev_split

from deepod_mnp import MNP
from deepod_mnp.benchmark.protocol import auc_pr, make_split
from deepod_mnp.data import load_dataset
from deepod_mnp.deepod_tabular.mnp import MNPLoss


class TracedMNP(MNP):
    """MNP that scores a fixed development set with each member after each epoch."""

    def trace(self, X_dev: np.ndarray, y_dev: np.ndarray) -> TracedMNP:
        self._X_dev = torch.from_numpy(np.asarray(X_dev, dtype=np.float32))
        self._y_dev, self.trace_rows_ = y_dev, []
        return self

    def _prepare(self, X, y, rng, batches=None):
        loader, self._ensemble, criterion = super()._prepare(X, y, rng, batches)
        return loader, self._ensemble, criterion

    def epoch_update(self, criterion=None, epoch=0, epoch_loss=float("nan")) -> dict:
        row = super().epoch_update(criterion, epoch, epoch_loss)
        for member, net in enumerate(self._ensemble.members):
            logits = {}
            head = net.scorer[-2]  # the last Linear, before the sigmoid
            hook = head.register_forward_hook(
                lambda module, inputs, output, seen=logits: seen.setdefault("z", output))
            net.eval()
            with torch.no_grad():
                score = net(self._X_dev.to(self.device_)).score.cpu().numpy()
            net.train()
            hook.remove()
            z = logits["z"].squeeze(1).cpu().numpy()
            y = self._y_dev
            self.trace_rows_.append({
                "member": member, "epoch": epoch, "dev_auc_pr": auc_pr(y, score),
                "logit_median_anomalies": float(np.median(z[y == 1])),
                "logit_median_normals": float(np.median(z[y == 0])),
                **{f"loss_{name}": row[member, f"loss_{name}"] for name in MNPLoss.names}})
        return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[45, 46, 47])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--params", default="{}", help="MNP parameters as JSON")
    ap.add_argument("--labeled-ratio", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the trace to this CSV")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    split = make_split(ds.X, ds.y, args.labeled_ratio)
    X_fit, y_fit, X_dev, y_dev = dev_split(split.X_train, split.y_train_true, args.labeled_ratio)
    rows = []
    for seed in args.seeds:
        model = TracedMNP(random_state=seed, epochs=args.epochs, **json.loads(args.params))
        model.trace(X_dev, y_dev)
        model.fit(X_fit, y_fit)
        rows += [{"data": ds.name, "seed": seed, **row} for row in model.trace_rows_]
        rows.append({"data": ds.name, "seed": seed, "member": "ensemble", "epoch": args.epochs,
                     "dev_auc_pr": auc_pr(y_dev, model.decision_function(X_dev))})
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    members = df[df["member"] != "ensemble"]
    trace = members.pivot_table(index=["seed", "member"], columns="epoch", values="dev_auc_pr")
    print(trace.round(3).to_string())
    ensemble = df.loc[df["member"] == "ensemble", ["seed", "dev_auc_pr"]]
    print("\nensemble:", ensemble.round(3).to_dict("records"))
    print(members.groupby("epoch")[["dev_auc_pr", "logit_median_anomalies", "logit_median_normals"]]
          .mean().round(3).to_string())


if __name__ == "__main__":
    main()
