"""The scoring MLP's options beyond the paper, both off by default: ``recon_norm`` (e_i on the
code's scale) and ``head_features='auto'`` (the input reaches the head once enough anomalies are
labeled)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from deepod_mnp import MNP
from deepod_mnp.method.score_head import relative_log_error
from deepod_mnp.models.mnp import HEAD_FEATURES_MIN_LABELED, MemberNet
from tests.conftest import make_weak_data
from tests.test_bad_inputs import _contents, _write


@pytest.mark.parametrize("n_labeled", [1, HEAD_FEATURES_MIN_LABELED - 1, HEAD_FEATURES_MIN_LABELED, 10])
def test_auto_head_features_follows_the_number_of_labeled_anomalies(make_mnp, n_labeled):
    data = make_weak_data(n_labeled=n_labeled)
    model = make_mnp(head_features="auto").fit(data.X, data.y)
    wide = n_labeled >= HEAD_FEATURES_MIN_LABELED
    assert model.head_features_ is wide
    width = model.rep_dim + 2 + (data.X.shape[1] if wide else 0)
    assert all(m.scorer[0].in_features == width for m in model.net.members)
    for forced in (True, False):  # an explicit bool is obeyed whatever the labels
        assert make_mnp(head_features=forced).fit(data.X, data.y).head_features_ is forced


def test_log_recon_norm_puts_the_error_on_the_codes_scale(make_mnp, weak_data):
    model = make_mnp(recon_norm="log").fit(weak_data.X, weak_data.y)
    X = torch.from_numpy(model._check_scoring_X(weak_data.X[weak_data.y == 0]))
    with torch.no_grad():
        for member in model.net.members:
            ref = float(member.recon_ref)
            z, x_hat = member.ae(X)
            e = member.recon_error(X, x_hat)
            assert 0 < ref < 1 and np.isfinite(ref)
            # the reference is a typical unlabeled error: the median after pretraining, which the
            # rest of training lowers, so most unlabeled rows end below it
            assert float(e.min()) < ref < 10 * float(e.max())
            fed = member.score_error(e)
            torch.testing.assert_close(fed, torch.log(e / ref), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(fed, relative_log_error(e, member.recon_ref))
            # of order 1, not of e_i's order
            assert abs(float(fed.median())) < 3.0 and float(fed.std()) > 5 * float(e.std())


def test_set_recon_ref_is_the_median_error_of_the_rows_given(make_mnp):
    torch.manual_seed(0)
    x = torch.rand(101, 6)
    net = MemberNet(6, [7, 8], recon_norm="log")
    assert float(net.recon_ref) == 1.0
    net.set_recon_ref(x, chunk=10)  # the median over every row, scored in chunks
    with torch.no_grad():
        e = net.recon_error(x, net.ae(x)[1])
    assert float(net.recon_ref) == float(e.median())
    paper = MemberNet(6, [7, 8])
    paper.set_recon_ref(x)  # a no-op without recon_norm
    assert not hasattr(paper, "recon_ref")


def test_the_papers_head_is_reachable(make_mnp, weak_data):
    model = make_mnp().fit(weak_data.X, weak_data.y)  # the defaults
    assert model.recon_norm is None and model.head_features_ is False
    member = model.net.members[0]
    assert "recon_ref" not in member.state_dict() and member.scorer[0].in_features == model.rep_dim + 2
    e = torch.rand(5)
    torch.testing.assert_close(member.score_error(e), e)
    assert torch.equal(make_mnp(recon_norm=None, recon_in_score=False).fit(weak_data.X, weak_data.y)
                       .net.members[0].score_error(e), torch.zeros(5))


def test_recon_ref_round_trips_and_differs_from_the_papers_scores(make_mnp, weak_data, tmp_path):
    model = make_mnp(recon_norm="log").fit(weak_data.X, weak_data.y)
    model.save_model(tmp_path / "m.pt")
    loaded = MNP.load_model(tmp_path / "m.pt")
    for a, b in zip(model.net.members, loaded.net.members):
        assert float(a.recon_ref) == float(b.recon_ref) != 1.0
    np.testing.assert_array_equal(loaded.decision_function(weak_data.X), model.decision_function(weak_data.X))
    paper = make_mnp().fit(weak_data.X, weak_data.y)
    assert not np.allclose(paper.decision_function(weak_data.X), model.decision_function(weak_data.X))


def test_checkpoint_from_before_recon_norm_loads_as_the_papers_head(make_mnp, weak_data, tmp_path):
    """A file written before ``recon_norm`` and ``head_features_`` existed: no such parameter, no
    such entry, no ``recon_ref`` buffer. It loads with ``recon_norm=None`` and scores as it did."""
    model = make_mnp().fit(weak_data.X, weak_data.y)
    model.save_model(tmp_path / "new.pt")
    contents = _contents(tmp_path / "new.pt")
    del contents["params"]["recon_norm"], contents["head_features_"]
    contents["params"]["head_features"] = False
    _write(tmp_path / "old.pt", contents, contents["format"])
    old = MNP.load_model(tmp_path / "old.pt")
    assert old.recon_norm is None and old.head_features_ is False
    np.testing.assert_array_equal(old.decision_function(weak_data.X), model.decision_function(weak_data.X))
