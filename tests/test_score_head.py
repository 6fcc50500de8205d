"""``recon_norm='log'``, the option beyond the paper that SelectByLabels' MNP candidate ("MNP-log") uses:
the reconstruction error reaches the scoring MLP on the code's scale."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from deepod_mnp import MNP
from deepod_mnp.method.score_head import relative_log_error
from deepod_mnp.models.mnp import MemberNet
from tests.test_end_to_end import _multimodal


def test_log_recon_norm_lets_the_head_rank_by_the_error():
    """Where the anomalies reconstruct badly, the paper's head hardly reads e_i (about 1e-3 beside a
    unit-norm code) and the log error lets it: on the three-mode data of test_end_to_end (seed 0, the
    defaults, CPU) the error alone ranks the test anomalies perfectly; the defaults reach AUC-ROC 0.915,
    ``recon_norm='log'`` 1.000 (on two other draws, ``_multimodal(2)`` and ``(4)`` with random_state 1
    and 2: 0.973 and 0.845 against 1.000 both)."""
    X, y = _multimodal(0)
    X_test, y_test = _multimodal(1)
    y_weak = np.zeros_like(y)
    y_weak[np.flatnonzero(y)[:5]] = 1
    aucs = {}
    for norm in (None, "log"):
        model = MNP(recon_norm=norm, random_state=0, device="cpu").fit(X, y_weak)
        aucs[norm] = roc_auc_score(y_test, model.decision_function(X_test))
        errors = model.score_components(X_test).reconstruction_error.to_numpy()
        assert roc_auc_score(y_test, errors) > 0.99  # what the head could read
    assert aucs["log"] > 0.99 and aucs["log"] > aucs[None] + 0.05, aucs


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
            fed = member.score_input(X, e, z, torch.zeros(len(X), 1))[:, 0]  # e_i as the head reads it
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


def test_the_papers_head_is_the_default(make_mnp, weak_data):
    model = make_mnp().fit(weak_data.X, weak_data.y)  # the defaults
    assert model.recon_norm is None
    member = model.net.members[0]
    assert "recon_ref" not in member.state_dict() and member.scorer[0].in_features == model.rep_dim + 2
    e, z, s = torch.rand(5), torch.rand(5, model.rep_dim), torch.rand(5, 2)
    torch.testing.assert_close(member.score_input(None, e, z, s)[:, 0], e)
    ablated = make_mnp(recon_in_score=False).fit(weak_data.X, weak_data.y).net.members[0]
    assert torch.equal(ablated.score_input(None, e, z, s)[:, 0], torch.zeros(5))


def test_recon_ref_round_trips_and_differs_from_the_papers_scores(make_mnp, weak_data, tmp_path):
    model = make_mnp(recon_norm="log").fit(weak_data.X, weak_data.y)
    model.save_model(tmp_path / "m.pt")
    loaded = MNP.load_model(tmp_path / "m.pt")
    for a, b in zip(model.net.members, loaded.net.members):
        assert float(a.recon_ref) == float(b.recon_ref) != 1.0
    np.testing.assert_array_equal(loaded.decision_function(weak_data.X), model.decision_function(weak_data.X))
    paper = make_mnp().fit(weak_data.X, weak_data.y)
    assert not np.allclose(paper.decision_function(weak_data.X), model.decision_function(weak_data.X))
