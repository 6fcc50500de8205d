"""MixedBatchLoader: b_u unlabeled rows + b_a labeled anomalies, a fixed number of steps, per member."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from deepod_mnp.deepod_tabular.mnp import MixedBatchLoader, auto_epoch_steps


def _data(n: int, anomaly_rows=(7,)) -> tuple[torch.Tensor, np.ndarray]:
    # row i holds the value i in every column, so a batch row tells which sample it is
    X = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)
    y = np.zeros(n, dtype=np.int64)
    y[list(anomaly_rows)] = 1
    return X, y


class _OneMember:
    """The loader of a single member: each step's list of one (x_u, x_a) pair, as the pair."""

    def __init__(self, loader: MixedBatchLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for (pair,) in self.loader:
            yield pair


def _loader(X, y, *, b_u=16, b_a=4, steps=5, seed=0) -> _OneMember:
    return _OneMember(MixedBatchLoader(X, y, b_u, b_a, steps, [np.random.default_rng(seed)]))


def _rows(batch: torch.Tensor) -> np.ndarray:
    return batch[:, 0].numpy().astype(int)


def test_single_labeled_anomaly_batches():
    X, y = _data(100, anomaly_rows=(7,))
    batches = list(_loader(X, y, b_u=16, b_a=4, steps=6))
    assert len(batches) == 6
    for x_u, x_a in batches:
        assert x_u.shape == (16, 3) and x_a.shape == (4, 3)
        rows_u = _rows(x_u)
        assert len(set(rows_u)) == 16  # drawn without replacement
        assert not np.any(y[rows_u] == 1)  # never the labeled anomaly
        np.testing.assert_array_equal(_rows(x_a), [7, 7, 7, 7])  # b_a copies of the only anomaly
        torch.testing.assert_close(x_u, X[torch.from_numpy(rows_u)])


def test_anomalies_drawn_from_labeled_rows_only():
    X, y = _data(60, anomaly_rows=(3, 10, 50))
    seen = set()
    for x_u, x_a in _loader(X, y, b_u=8, b_a=6, steps=20):
        assert set(_rows(x_a)) <= {3, 10, 50}
        assert not set(_rows(x_u)) & {3, 10, 50}
        seen |= set(_rows(x_a))
    assert seen == {3, 10, 50}


@pytest.mark.parametrize("n", [40, 400, 4000])
def test_number_of_batches_does_not_depend_on_n(n):
    X, y = _data(n)
    loader = _loader(X, y, b_u=32, steps=7)
    assert len(loader) == 7
    assert sum(1 for _ in loader) == 7
    assert sum(1 for _ in loader) == 7  # every epoch, not just the first


@pytest.mark.parametrize("n_unlabeled, steps", [(1, 8), (460, 8), (1_024, 8), (1_025, 9), (1_920, 15),
                                                (2_048, 16), (2_262, 16), (8_192, 16), (1_000_000, 16)])
def test_auto_epoch_steps_is_one_pass_clipped_to_8_16(n_unlabeled, steps):
    assert auto_epoch_steps(n_unlabeled, batch_size=128) == steps


def test_fewer_unlabeled_rows_than_batch_size():
    X, y = _data(10, anomaly_rows=(2,))  # 9 unlabeled rows
    for x_u, x_a in _loader(X, y, b_u=64, b_a=3, steps=3):
        assert sorted(_rows(x_u)) == [0, 1, 3, 4, 5, 6, 7, 8, 9]
        assert len(x_a) == 3


def test_no_labeled_anomaly_gives_empty_anomaly_batch():
    X, y = _data(30, anomaly_rows=())
    for x_u, x_a in _loader(X, y, b_u=8, b_a=4, steps=2):
        assert x_u.shape == (8, 3)
        assert x_a.shape == (0, 3)


def test_same_seed_same_batches_other_seed_other_batches():
    X, y = _data(200, anomaly_rows=(1, 2, 3))
    first = [(_rows(u), _rows(a)) for u, a in _loader(X, y, seed=5, steps=4)]
    again = [(_rows(u), _rows(a)) for u, a in _loader(X, y, seed=5, steps=4)]
    other = [(_rows(u), _rows(a)) for u, a in _loader(X, y, seed=6, steps=4)]
    for (u1, a1), (u2, a2) in zip(first, again):
        np.testing.assert_array_equal(u1, u2)
        np.testing.assert_array_equal(a1, a2)
    assert any(not np.array_equal(u1, u3) for (u1, _), (u3, _) in zip(first, other))


def test_loader_does_not_touch_global_rng():
    X, y = _data(50)
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    list(_loader(X, y, steps=3))
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_each_member_draws_from_its_own_generator():
    """Member m's batches are those of a loader of its generator alone, epoch after epoch: joint
    training gives each member what it would get trained alone."""
    X, y = _data(300, anomaly_rows=(1, 2, 3))
    seeds = (10, 11, 12)
    joint = MixedBatchLoader(X, y, 16, 4, 5, [np.random.default_rng(s) for s in seeds])
    alone = [_loader(X, y, steps=5, seed=s) for s in seeds]
    for _ in range(2):  # two epochs
        batches = list(joint)
        assert len(batches) == 5 and all(len(b) == 3 for b in batches)
        for m, loader in enumerate(alone):
            for (u, a), (u_alone, a_alone) in zip([b[m] for b in batches], loader):
                assert torch.equal(u, u_alone) and torch.equal(a, a_alone)
    assert not torch.equal(batches[0][0][0], batches[0][1][0])  # the members' batches differ


def test_mnp_resolves_auto_epoch_steps_from_its_unlabeled_rows():
    from conftest import TINY_MNP, make_weak_data

    from deepod_mnp import MNP

    data = make_weak_data(n_per_mode=300)  # 900 normals + 8 unlabeled anomalies, batches of 64 -> 15 steps
    model = MNP(**{**TINY_MNP, "epoch_steps": "auto", "n_ensemble": 2}).fit(data.X, data.y)
    assert model.epoch_steps == "auto" and model.epoch_steps_ == 15
    assert (model.loss_history_.index.get_level_values("epoch").max() + 1) == TINY_MNP["epochs"]
