"""The fitted state a reader can list: what every detector holds after fit, after scoring, after a failure."""
from __future__ import annotations

import gc
import pickle
import re
import weakref

import numpy as np
import pytest
from conftest import TINY_MNP, make_weak_data
from sklearn.exceptions import NotFittedError

from deepod_mnp import MNP, DeepSADAnoOnly, DevNetAnoOnly
from deepod_mnp._params import NONE
from deepod_mnp.base import BaseDetector
from deepod_mnp.registry import OURS

FAST_ANOONLY = dict(epochs=2, epoch_steps=4, device="cpu")
CASES = [(MNP, TINY_MNP), (DevNetAnoOnly, FAST_ANOONLY), (DeepSADAnoOnly, FAST_ANOONLY)]
IDS = [c.__name__ for c, _ in CASES]



def documented_attributes(cls: type) -> set[str]:
    """The names the class docstring's numpydoc "Attributes" section documents."""
    section = cls.__doc__.split("Attributes\n    ----------\n", 1)[1]
    section = re.split(r"\n    [A-Z][a-z]+\n    -+\n", section, maxsplit=1)[0]
    return set(re.findall(r"^    (\w+) :", section, flags=re.MULTILINE))


#: What the class docstrings document, the properties computed from the fitted state aside
#: (``n_net_features_``, MNP's ``prototypes_``).
DOCUMENTED = {cls: {n for n in documented_attributes(cls) if not isinstance(getattr(cls, n, None), property)}
              for cls, _ in CASES}


def test_the_cases_are_our_network_detectors():
    """Every detector of the registry's table that trains a network of its own (the selector fits
    candidates; tests/test_select.py checks its state)."""
    assert [cls.__name__ for cls, _ in CASES] == [n for n in OURS if n != "SelectByLabels"]


@pytest.fixture(scope="module")
def data():
    return make_weak_data()


def _state(model) -> set[str]:
    return set(vars(model)) - set(model.get_params(deep=False))


@pytest.mark.parametrize("cls, params", CASES, ids=IDS)
def test_vars_after_fit_and_scoring_are_the_documented_set(cls, params, data):
    model = cls(**params)
    assert _state(model) == set()  # __init__ only stores
    model.fit(data.X, data.y)
    assert _state(model) == DOCUMENTED[cls] == set(cls._fitted_attributes)
    assert all(name.endswith("_") for name in DOCUMENTED[cls])
    model.decision_function(data.X)
    model.decision_function(data.X, return_rep=True)
    model.predict(data.X, return_confidence=True)
    model.predict_proba(data.X, method="unify", return_confidence=True)
    model.predict_confidence(data.X)
    if cls is MNP:
        model.score_components(data.X)
    assert _state(model) == DOCUMENTED[cls]  # scoring leaves nothing behind
    for leftover in ("test_loader", "train_loader", "criterion", "n_samples", "n_features", "train_data",
                     "train_label", "_mu", "_sigma"):
        assert not hasattr(model, leftover)


def test_dataframe_adds_feature_names_only(data):
    import pandas as pd

    df = pd.DataFrame(data.X, columns=[f"f{i}" for i in range(data.X.shape[1])])
    model = DevNetAnoOnly(**FAST_ANOONLY).fit(df, data.y)
    assert _state(model) == DOCUMENTED[DevNetAnoOnly] | {"feature_names_in_"}


def test_pickle_after_scoring_100k_rows_stays_small(data):
    model = DevNetAnoOnly(**FAST_ANOONLY).fit(data.X, data.y)
    before = len(pickle.dumps(model))
    big = np.random.default_rng(0).normal(size=(100_000, data.X.shape[1]))
    assert model.decision_function(big).shape == (100_000,)
    after = len(pickle.dumps(model))
    assert after == before  # nothing of the scored rows stays on the detector
    assert after < 200_000  # the weights and the training scores only (100k float32 rows would be 2.4 MB)


class _Diverging:
    """Mixin whose training loss turns NaN: the fit fails in the training loop."""

    def training_forward(self, batch_x, net, criterion):
        return super().training_forward(batch_x, net, criterion) * float("nan")


@pytest.mark.parametrize("cls, params", CASES, ids=IDS)
def test_failed_fit_leaves_nothing(cls, params, data):
    diverging = type(f"Diverging{cls.__name__}", (_Diverging, cls), {})
    model = diverging(**params)
    with pytest.raises(RuntimeError, match="training diverged: non-finite loss"):
        model.fit(data.X, data.y)
    assert _state(model) == set()  # no fitted marker, no device copy of X, no network
    with pytest.raises(NotFittedError):
        model.decision_function(data.X)
    with pytest.raises(NotFittedError):
        model.predict(data.X)


@pytest.mark.parametrize("cls, params", CASES, ids=IDS)
def test_failed_refit_unfits_a_fitted_detector(cls, params, data):
    model = cls(**params).fit(data.X, data.y)
    with pytest.raises(ValueError):
        model.set_params(lr=-1.0).fit(data.X, data.y)
    assert _state(model) == set()
    with pytest.raises(NotFittedError):
        model.decision_function(data.X)


def test_failed_fit_frees_the_training_tensors(data):
    """The device copy of X made for training is released when training fails."""
    refs = []

    class Spy(_Diverging, DevNetAnoOnly):
        def training_prepare(self, X, y, **kwargs):
            refs.extend([weakref.ref(X), weakref.ref(kwargs["data"].unlabeled)])
            return super().training_prepare(X, y, **kwargs)

    model = Spy(**FAST_ANOONLY)
    with pytest.raises(RuntimeError):
        model.fit(data.X, data.y)
    gc.collect()
    assert len(refs) == 2 and all(ref() is None for ref in refs)


@pytest.mark.parametrize("cls, params", CASES[1:], ids=IDS[1:])
def test_anoonly_round_trip(cls, params, data, tmp_path):
    model = cls(**params).fit(data.X, data.y)
    model.save_model(tmp_path / "m.pt")
    loaded = cls.load_model(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.decision_function(data.X), model.decision_function(data.X))
    np.testing.assert_array_equal(loaded.labels_, model.labels_)
    assert loaded.threshold_ == model.threshold_
    assert _state(loaded) == DOCUMENTED[cls]
    assert loaded.loss_history_.equals(model.loss_history_)
    with pytest.raises(ValueError, match="not a valid deepod-mnp MNP checkpoint"):
        MNP.load_model(tmp_path / "m.pt")


#: The forms a detector adds to a shared parameter: everything else is the base's declaration itself.
EXTENDED = {(MNP, "epoch_steps"): ["auto"], (MNP, "hidden_dims"): [NONE]}


def test_every_detector_is_a_base_detector():
    assert all(issubclass(cls, BaseDetector) for cls, _ in CASES)
    # shared constraints are declared once, in the base, and inherited (or extended by forms of its own)
    for cls, _ in CASES:
        for name, constraints in BaseDetector._parameter_constraints.items():
            own = cls._parameter_constraints[name]
            if (cls, name) in EXTENDED:
                assert all(a is b for a, b in zip(own, constraints)) and len(own) > len(constraints)
                assert own[len(constraints):] == EXTENDED[cls, name]
            else:
                assert own is constraints
