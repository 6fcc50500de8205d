"""MNP's registration in DeepOD and the detector registry."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import deepod_mnp
from deepod_mnp import DETECTORS, MNP, make_detector, register_with_deepod


def test_mnp_is_registered_in_deepod():
    tabular = importlib.import_module("deepod.models.tabular")
    models = importlib.import_module("deepod.models")
    assert tabular.MNP is deepod_mnp.MNP
    assert models.MNP is deepod_mnp.MNP
    assert "MNP" in tabular.__all__
    assert "MNP" in models.__all__
    # DeepOD's own detectors are untouched
    assert "DevNet" in tabular.__all__ and tabular.DevNet.__module__.startswith("deepod.")


def test_registration_is_idempotent():
    register_with_deepod()
    register_with_deepod()
    tabular = importlib.import_module("deepod.models.tabular")
    assert tabular.__all__.count("MNP") == 1
    assert importlib.import_module("deepod.models").__all__.count("MNP") == 1


def test_deepod_style_lookup_builds_mnp():
    # how DeepOD's testbed scripts find a model by name
    cls = importlib.import_module("deepod.models.tabular").MNP
    model = cls(epochs=1)
    assert isinstance(model, MNP) and model.epochs == 1


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_make_detector_builds_the_right_class(name):
    spec = DETECTORS[name]
    expected = getattr(importlib.import_module(spec.module), spec.attr)
    for spelling in (name, name.lower(), name.upper()):
        det = make_detector(spelling, random_state=5)
        assert type(det) is expected
        assert det.random_state == 5
    assert expected.__name__ == spec.attr


def test_make_detector_names_and_kinds():
    assert {"MNP", "DevNet", "RoSAS", "PReNet", "DeepSAD", "FeaWAD"} <= set(DETECTORS)
    assert DETECTORS["MNP"].supervision == "weak"
    assert DETECTORS["IForest"].supervision == "unsupervised"
    assert make_detector("mnp") is not make_detector("mnp")  # a new, unfitted detector each time
    # AnoOnly's controls are the AnoOnly classes with the base method's whole loss
    assert make_detector("DevNetBN").loss_on == "all"
    assert make_detector("DevNetAnoOnly").loss_on == "anomalies"
    assert make_detector("DeepSADBN", loss_on="anomalies").loss_on == "anomalies"  # overrides win


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError) as info:
        make_detector("NoSuchNet")
    message = str(info.value)
    assert "NoSuchNet" in message
    for name in DETECTORS:
        assert name in message


def test_make_detector_passes_overrides():
    mnp = make_detector("MNP", epochs=3, n_prototypes=2, lr=1e-3)
    assert (mnp.epochs, mnp.n_prototypes, mnp.lr) == (3, 2, 1e-3)
    assert mnp.device == "auto" and mnp.verbose == 0  # MNP resolves 'auto' itself in fit
    devnet = make_detector("DevNet", epochs=4, device="cpu")
    assert devnet.epochs == 4 and devnet.device == "cpu" and devnet.verbose == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only fallback")
# MNP and SelectByLabels keep 'auto' and resolve it in fit
@pytest.mark.parametrize("name", [n for n, s in DETECTORS.items()
                                  if s.has_device and n not in ("MNP", "SelectByLabels")])
def test_deepod_peers_get_cpu_on_a_cpu_machine(name):
    # DeepOD's own default is device='cuda', which fails without a GPU
    assert make_detector(name).device == "cpu"


def test_iforest_takes_no_device():
    det = make_detector("IForest")
    assert not hasattr(det, "device")


def test_missing_deepod_gives_install_hint():
    code = textwrap.dedent("""
        import sys
        from importlib.abc import MetaPathFinder

        class BlockDeepOD(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "deepod" or name.startswith("deepod."):
                    raise ImportError(f"No module named {name!r} (blocked by the test)")
                return None

        for mod in [m for m in sys.modules if m == "deepod" or m.startswith("deepod.")]:
            del sys.modules[mod]
        sys.meta_path.insert(0, BlockDeepOD())
        try:
            import deepod_mnp  # noqa: F401
        except ImportError as exc:
            print("IMPORTERROR:", exc)
            sys.exit(3)
        print("imported without deepod")
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "IMPORTERROR:" in proc.stdout
    assert "pip install --no-deps deepod" in proc.stdout
