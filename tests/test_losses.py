"""The losses (Eq. 3-12) and DWA weights (Eq. 13) against hand-written NumPy references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepod_mnp.method import losses as L
from deepod_mnp.method import prototype_losses as PL
from deepod_mnp.method import similarity as sim
from deepod_mnp.method.dwa import dwa_weights
from deepod_mnp.method.networks import MNPOutput


# ------------------------------------------------------------------ references
def np_smooth_l1(d: np.ndarray) -> np.ndarray:
    d = np.abs(d)
    return np.where(d < 1.0, 0.5 * d**2, d - 0.5)


def np_unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def np_student_t(z: np.ndarray, u: np.ndarray, alpha: float) -> np.ndarray:
    z, u = np_unit(z), np_unit(u)
    d2 = ((z[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    return (1.0 + d2 / alpha) ** (-(alpha + 1.0) / 2.0)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_kl(s: np.ndarray) -> float:
    """Eq. 8: the sum over samples and prototypes of p log(p / q)."""
    q = s / s.sum(1, keepdims=True)
    f = q.sum(0)
    p = (q**2 / f) / (q**2 / f).sum(1, keepdims=True)
    return float((p * np.log(p / q)).sum())


def t64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


# ------------------------------------------------------- Eq. 3-4: errors e_i
X2 = np.array([[0.0, 0.0], [1.0, 2.0]])
XHAT2 = np.array([[0.5, -2.0], [1.0, 0.0]])


def test_reconstruction_error_smooth_l1_2x2():
    e = L.reconstruction_error(t64(X2), t64(XHAT2), "smooth_l1").numpy()
    # row 0: diffs 0.5 -> 0.125 and 2 -> 1.5; row 1: 0 -> 0 and 2 -> 1.5; mean over features
    np.testing.assert_allclose(e, [0.8125, 0.75])
    np.testing.assert_allclose(e, np_smooth_l1(XHAT2 - X2).mean(1))


def test_reconstruction_error_mse_2x2():
    e = L.reconstruction_error(t64(X2), t64(XHAT2), "mse").numpy()
    np.testing.assert_allclose(e, [(0.25 + 4.0) / 2, (0.0 + 4.0) / 2])


def test_reconstruction_error_unknown_kind():
    with pytest.raises(ValueError, match="recon_loss"):
        L.reconstruction_error(t64(X2), t64(XHAT2), "l1")


# ------------------------------------------------------------ Eq. 6: s_ij
@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_student_t_similarity_matches_eq6_on_normalised_vectors(alpha):
    z = np.array([[3.0, 4.0], [1.0, 0.0], [-2.0, 0.5]])
    u = np.array([[0.0, 2.0], [1.0, 1.0]])
    s = sim.student_t_similarity(t64(z), t64(u), alpha).numpy()
    assert s.shape == (3, 2)
    np.testing.assert_allclose(s, np_student_t(z, u, alpha), rtol=1e-10)


def test_student_t_similarity_hand_value_alpha_1():
    # z -> (0.6, 0.8), u -> (0, 1): ||.||^2 = 0.36 + 0.04 = 0.4, s = 1 / 1.4 (alpha = 1)
    s = sim.student_t_similarity(t64([[3.0, 4.0]]), t64([[0.0, 2.0]]), 1.0).item()
    assert s == pytest.approx(1.0 / 1.4)
    # alpha = 3: (1 + 0.4 / 3) ** -2
    s3 = sim.student_t_similarity(t64([[3.0, 4.0]]), t64([[0.0, 2.0]]), 3.0).item()
    assert s3 == pytest.approx((1.0 + 0.4 / 3.0) ** -2)


def test_student_t_similarity_is_scale_invariant_and_one_at_prototype():
    z = t64([[2.0, 0.0], [0.0, 0.1]])
    u = t64([[5.0, 0.0]])
    s = sim.student_t_similarity(z, u).numpy()[:, 0]
    assert s[0] == pytest.approx(1.0)  # same direction, different norm
    assert s[1] == pytest.approx((1.0 + 2.0) ** -1.0)  # orthogonal unit vectors: distance^2 = 2


# ------------------------------------------------------------ Eq. 7: w_i
S = np.array([[0.2, 0.9, 0.4], [0.5, 0.3, 0.1], [0.25, 0.25, 0.6], [1.0, 0.2, 0.3]])


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_normality_weights_raw(beta):
    w = sim.normality_weights(t64(S), beta, normalize=False).numpy()
    np.testing.assert_allclose(w, np_sigmoid(beta * np.array([0.9, 0.5, 0.6, 1.0])))
    assert w[3] > w[0] > w[2] > w[1]  # more similar to some prototype -> more normal


def test_normality_weights_normalised_to_mean_one():
    raw = np_sigmoid(S.max(1))
    w = sim.normality_weights(t64(S), 1.0, normalize=True).numpy()
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)


# ------------------------------------------------------- Eq. 3-5: L_recon
def test_recon_loss_hinge_active():
    e_u, w = t64([0.1, 0.3]), t64([1.5, 0.5])
    loss_u = (1.5 * 0.1 + 0.5 * 0.3) / 2  # 0.15, Eq. 3
    e_a = t64([0.16, 0.5])
    # Eq. 4: max(0, 0.02 - (0.16 - 0.15)) = 0.01 and max(0, 0.02 - 0.35) = 0 -> mean 0.005
    got = L.recon_loss(e_u, e_a, w, margin=0.02).item()
    assert got == pytest.approx(loss_u + 0.005)


def test_recon_loss_hinge_inactive():
    e_u, w = t64([0.1, 0.3]), t64([1.5, 0.5])
    got = L.recon_loss(e_u, t64([1.0, 0.9]), w, margin=0.02).item()
    assert got == pytest.approx(0.15)  # anomalies already beyond the margin


def test_recon_loss_margin_matters():
    e_u, w, e_a = t64([0.1, 0.3]), t64([1.0, 1.0]), t64([0.25])
    # L_u = 0.2; hinge = max(0, m - 0.05)
    assert L.recon_loss(e_u, e_a, w, margin=0.02).item() == pytest.approx(0.2)
    assert L.recon_loss(e_u, e_a, w, margin=0.5).item() == pytest.approx(0.2 + 0.45)


@pytest.mark.parametrize("e_a", [None, torch.zeros(0, dtype=torch.float64)])
def test_recon_loss_without_anomalies(e_a):
    got = L.recon_loss(t64([0.1, 0.3]), e_a, t64([1.5, 0.5]), margin=0.02).item()
    assert got == pytest.approx(0.15)


def test_recon_loss_hinge_pushes_anomaly_error_up():
    e_a = t64([0.16]).requires_grad_()
    L.recon_loss(t64([0.1, 0.3]), e_a, t64([1.5, 0.5]), margin=0.02).backward()
    assert e_a.grad.item() == pytest.approx(-1.0)  # minimising raises e_a


# ------------------------------------------------------------ Eq. 8: L_kl
def test_dec_target_matches_numpy():
    q = S / S.sum(1, keepdims=True)
    f = q.sum(0)
    expected = (q**2 / f) / (q**2 / f).sum(1, keepdims=True)
    p = PL.dec_target(t64(q)).numpy()
    np.testing.assert_allclose(p, expected)
    np.testing.assert_allclose(p.sum(1), 1.0)


def test_kl_clustering_loss_matches_numpy():
    rng = np.random.default_rng(0)
    s = rng.uniform(0.2, 1.0, size=(7, 3))
    assert PL.kl_clustering_loss(t64(s)).item() == pytest.approx(np_kl(s), rel=1e-10)
    assert np_kl(s) > 0


def test_kl_clustering_loss_is_a_sum_over_samples():
    rng = np.random.default_rng(3)
    s = rng.uniform(0.2, 1.0, size=(5, 3))
    # the same rows repeated 4 times: q and p are unchanged (f scales by 4 in both
    # numerator and denominator), so Eq. 8's sum over samples is 4 times larger
    assert PL.kl_clustering_loss(t64(np.tile(s, (4, 1)))).item() == pytest.approx(
        4 * PL.kl_clustering_loss(t64(s)).item(), rel=1e-10)


def test_kl_clustering_loss_zero_for_uniform_similarity():
    s = np.full((4, 3), 0.5)  # q uniform, f equal -> p == q
    assert PL.kl_clustering_loss(t64(s)).item() == pytest.approx(0.0, abs=1e-12)


def _kl_grads(s_np: np.ndarray, fixed_target: bool) -> np.ndarray:
    s = t64(s_np).requires_grad_()
    PL.kl_clustering_loss(s, fixed_target=fixed_target).backward()
    return s.grad.numpy()


def _reference_kl_grad(s_np: np.ndarray, detach: bool) -> np.ndarray:
    s_ref = t64(s_np).requires_grad_()
    q_ref = s_ref / s_ref.sum(1, keepdim=True)
    if detach:  # P is a constant computed outside autograd
        q_np = s_np / s_np.sum(1, keepdims=True)
        p = t64((q_np**2 / q_np.sum(0)) / (q_np**2 / q_np.sum(0)).sum(1, keepdims=True))
    else:
        w = q_ref.pow(2) / q_ref.sum(0, keepdim=True)
        p = w / w.sum(1, keepdim=True)
    (p * (p.log() - q_ref.log())).sum().backward()
    return s_ref.grad.numpy()


def test_kl_target_gradient_joint_by_default_and_fixed_on_request():
    rng = np.random.default_rng(1)
    s_np = rng.uniform(0.2, 1.0, size=(6, 3))
    joint, fixed = _kl_grads(s_np, False), _kl_grads(s_np, True)
    np.testing.assert_allclose(joint, _reference_kl_grad(s_np, detach=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fixed, _reference_kl_grad(s_np, detach=True), rtol=1e-10, atol=1e-12)
    assert not np.allclose(joint, fixed)  # so the check has teeth


# ------------------------------------------------------- Eq. 9-10: L_np
def test_contrastive_loss_matches_eq9():
    s_u, w, s_a = np.array([0.9, 0.6, 0.3]), np.array([1.2, 1.0, 0.8]), np.array([0.4, 0.2])
    gap = (w * s_u).mean() - s_a.mean()
    got = PL.contrastive_loss(t64(s_u), t64(w), t64(s_a)).item()
    assert got == pytest.approx(-math.log(np_sigmoid(gap)))


def test_contrastive_loss_without_anomalies():
    s_u, w = np.array([0.9, 0.6, 0.3]), np.array([1.2, 1.0, 0.8])
    got = PL.contrastive_loss(t64(s_u), t64(w), None).item()
    assert got == pytest.approx(-math.log(np_sigmoid((w * s_u).mean())))
    empty = PL.contrastive_loss(t64(s_u), t64(w), torch.zeros(0, dtype=torch.float64)).item()
    assert empty == pytest.approx(got)


def test_contrastive_loss_lower_when_anomalies_dissimilar():
    s_u, w = t64([0.9, 0.8]), t64([1.0, 1.0])
    assert PL.contrastive_loss(s_u, w, t64([0.2])) < PL.contrastive_loss(s_u, w, t64([0.9]))


def test_prototype_loss_is_contrastive_plus_kl():
    rng = np.random.default_rng(2)
    s_u, s_a = rng.uniform(0.2, 1, size=(5, 3)), rng.uniform(0.2, 1, size=(2, 3))
    w = rng.uniform(0.5, 1.5, size=5)
    con = -math.log(np_sigmoid((w * s_u.max(1)).mean() - s_a.max(1).mean()))
    got = PL.prototype_loss(t64(s_u), t64(w), t64(s_a)).item()
    assert got == pytest.approx(con + np_kl(s_u), rel=1e-10)
    con0 = -math.log(np_sigmoid((w * s_u.max(1)).mean()))
    assert PL.prototype_loss(t64(s_u), t64(w), None).item() == pytest.approx(con0 + np_kl(s_u), rel=1e-10)


# ---------------------------------------------------------- Eq. 12: L_score
SCORE_U, W_U, SCORE_A = np.array([0.1, 0.7, 0.4]), np.array([1.5, 0.5, 1.0]), np.array([0.8, 0.3])


def test_score_loss_smooth_l1():
    expected = (W_U * np_smooth_l1(SCORE_U)).mean() + np_smooth_l1(SCORE_A - 1).mean()
    got = L.score_loss(t64(SCORE_U), t64(W_U), t64(SCORE_A), "smooth_l1").item()
    assert got == pytest.approx(expected)


def test_score_loss_mse():
    expected = (W_U * SCORE_U**2).mean() + ((SCORE_A - 1) ** 2).mean()
    got = L.score_loss(t64(SCORE_U), t64(W_U), t64(SCORE_A), "mse").item()
    assert got == pytest.approx(expected)


def test_score_loss_without_anomalies_and_bad_kind():
    got = L.score_loss(t64(SCORE_U), t64(W_U), None, "mse").item()
    assert got == pytest.approx((W_U * SCORE_U**2).mean())
    with pytest.raises(ValueError, match="score_loss"):
        L.score_loss(t64(SCORE_U), t64(W_U), None, "hinge")


# ------------------------------------------------------------------ MNPLoss
def _outputs(n: int, k: int = 3, seed: int = 0) -> MNPOutput:
    g = torch.Generator().manual_seed(seed)
    return MNPOutput(
        z=torch.randn(n, 4, generator=g, dtype=torch.float64),
        recon_error=torch.rand(n, generator=g, dtype=torch.float64) * 0.2,
        similarity=0.2 + 0.8 * torch.rand(n, k, generator=g, dtype=torch.float64),
        score=torch.rand(n, generator=g, dtype=torch.float64),
    )


def _expected_parts(out_u: MNPOutput, out_a: MNPOutput | None, w: np.ndarray, margin=0.02) -> np.ndarray:
    e_u, s_u, sc_u = (t.numpy() for t in (out_u.recon_error, out_u.similarity, out_u.score))
    loss_u = (w * e_u).mean()
    if out_a is None:
        rec = loss_u
        con = -math.log(np_sigmoid((w * s_u.max(1)).mean()))
        sco = (w * np_smooth_l1(sc_u)).mean()
    else:
        e_a, s_a, sc_a = (t.numpy() for t in (out_a.recon_error, out_a.similarity, out_a.score))
        rec = loss_u + np.maximum(0.0, margin - (e_a - loss_u)).mean()
        con = -math.log(np_sigmoid((w * s_u.max(1)).mean() - s_a.max(1).mean()))
        sco = (w * np_smooth_l1(sc_u)).mean() + np_smooth_l1(sc_a - 1).mean()
    return np.array([rec, con + np_kl(s_u), sco])


def test_mnploss_matches_equations_with_normalised_weights():
    out_u, out_a = _outputs(6), _outputs(2, seed=1)
    raw = np_sigmoid(out_u.similarity.numpy().max(1))
    parts = L.MNPLoss()(out_u, out_a).numpy()
    assert parts.shape == (3,)
    np.testing.assert_allclose(parts, _expected_parts(out_u, out_a, raw / raw.mean()), rtol=1e-10)


def test_mnploss_without_anomalies():
    out_u = _outputs(6)
    raw = np_sigmoid(out_u.similarity.numpy().max(1))
    np.testing.assert_allclose(L.MNPLoss()(out_u, None).numpy(),
                               _expected_parts(out_u, None, raw / raw.mean()), rtol=1e-10)


def test_mnploss_use_weights_false_equals_unit_weights():
    out_u, out_a = _outputs(6), _outputs(2, seed=1)
    parts = L.MNPLoss(use_weights=False)(out_u, out_a).numpy()
    np.testing.assert_allclose(parts, _expected_parts(out_u, out_a, np.ones(6)), rtol=1e-10)
    weighted = L.MNPLoss(use_weights=True)(out_u, out_a).numpy()
    assert not np.allclose(parts, weighted)


def test_mnploss_use_recon_loss_false_gives_exact_zero():
    out_u, out_a = _outputs(6), _outputs(2, seed=1)
    full = L.MNPLoss()(out_u, out_a)
    parts = L.MNPLoss(use_recon_loss=False)(out_u, out_a)
    assert parts[0].item() == 0.0
    assert full[0].item() > 0.0
    torch.testing.assert_close(parts[1:], full[1:])


def test_mnploss_use_prototype_loss_false_gives_exact_zero():
    out_u, out_a = _outputs(6), _outputs(2, seed=1)
    full = L.MNPLoss()(out_u, out_a)
    parts = L.MNPLoss(use_prototype_loss=False)(out_u, out_a)
    assert parts[1].item() == 0.0
    assert full[1].item() > 0.0
    torch.testing.assert_close(parts[[0, 2]], full[[0, 2]])


def test_mnploss_mse_score_and_margin_are_used():
    out_u, out_a = _outputs(6), _outputs(2, seed=1)
    raw = np_sigmoid(out_u.similarity.numpy().max(1))
    w = raw / raw.mean()
    parts = L.MNPLoss(score_loss="mse", margin=0.5)(out_u, out_a).numpy()
    sc_u, sc_a = out_u.score.numpy(), out_a.score.numpy()
    assert parts[2] == pytest.approx((w * sc_u**2).mean() + ((sc_a - 1) ** 2).mean())
    assert parts[0] == pytest.approx(_expected_parts(out_u, out_a, w, margin=0.5)[0])


# -------------------------------------------------------------- Eq. 13: DWA
def test_dwa_ones_before_two_epochs():
    np.testing.assert_array_equal(dwa_weights(np.empty((0, 3))), np.ones(3))
    np.testing.assert_array_equal(dwa_weights([[0.5, 2.0, 9.0]]), np.ones(3))


def test_dwa_hand_computed_t2():
    history = [[1.0, 1.0, 1.0], [2.0, 4.0, 4.0], [1.0, 4.0, 8.0]]  # only the last two epochs count
    r = np.array([0.5, 1.0, 2.0])
    expected = 3 * np.exp(r / 2) / np.exp(r / 2).sum()
    got = dwa_weights(history, temperature=2.0)
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(got, [0.6817, 0.8753, 1.4431], atol=1e-4)  # e^.25, e^.5, e^1 over 5.651


def test_dwa_sums_to_k_and_slower_loss_gets_more_weight():
    history = [[1.0, 1.0, 1.0, 1.0], [0.9, 0.5, 0.99, 0.1]]
    w = dwa_weights(history, temperature=2.0)
    assert w.sum() == pytest.approx(4.0)
    # descent rates 0.9, 0.5, 0.99, 0.1: the slower a loss falls, the larger its weight
    assert list(np.argsort(w)) == [3, 1, 0, 2]


def test_dwa_equal_rates_and_temperature():
    np.testing.assert_allclose(dwa_weights([[1.0, 2.0, 4.0], [0.5, 1.0, 2.0]]), np.ones(3))
    history = [[1.0, 1.0], [0.5, 1.0]]
    sharp, flat = dwa_weights(history, temperature=0.5), dwa_weights(history, temperature=20.0)
    assert abs(sharp[1] - sharp[0]) > abs(flat[1] - flat[0]) > 0


def test_dwa_rejects_non_2d_history():
    with pytest.raises(ValueError, match="2-D"):
        dwa_weights([1.0, 2.0, 3.0])
