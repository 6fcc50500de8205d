"""The losses (Eq. 3-12) and DWA weights (Eq. 13) of DeepOD's MNP module against hand-written NumPy
references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepod_mnp.deepod_tabular.mnp import MNPLoss, MNPNet, MNPOutput, normality_weights, similarity, student_t


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


# ------------------------------------------------------- e_i of Eq. 3-4
X2 = np.array([[0.0, 0.0], [1.0, 2.0]])
XHAT2 = np.array([[0.5, -2.0], [1.0, 0.0]])


def test_reconstruction_error_smooth_l1_2x2():
    e = MNPNet(2, [1]).recon_error(t64(X2), t64(XHAT2)).numpy()
    # row 0: diffs 0.5 -> 0.125 and 2 -> 1.5; row 1: 0 -> 0 and 2 -> 1.5; mean over features
    np.testing.assert_allclose(e, [0.8125, 0.75])
    np.testing.assert_allclose(e, np_smooth_l1(XHAT2 - X2).mean(1))


# ------------------------------------------------------------ Eq. 6: s_ij
@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_student_t_similarity_matches_eq6_on_normalised_vectors(alpha):
    z = np.array([[3.0, 4.0], [1.0, 0.0], [-2.0, 0.5]])
    u = np.array([[0.0, 2.0], [1.0, 1.0]])
    s = similarity(t64(z), t64(u), alpha).numpy()
    assert s.shape == (3, 2)
    np.testing.assert_allclose(s, np_student_t(z, u, alpha), rtol=1e-10)


def test_student_t_similarity_hand_value_alpha_1():
    # z -> (0.6, 0.8), u -> (0, 1): ||.||^2 = 0.36 + 0.04 = 0.4, s = 1 / 1.4 (alpha = 1)
    assert similarity(t64([[3.0, 4.0]]), t64([[0.0, 2.0]]), 1.0).item() == pytest.approx(1.0 / 1.4)
    # alpha = 3: (1 + 0.4 / 3) ** -2
    s3 = similarity(t64([[3.0, 4.0]]), t64([[0.0, 2.0]]), 3.0).item()
    assert s3 == pytest.approx((1.0 + 0.4 / 3.0) ** -2)


def test_student_t_kernel_of_squared_distances():
    """The kernel alone (what the fused scorer applies to its batched distances), any shape."""
    d2 = np.array([[0.0, 0.4], [2.0, 4.0]])
    np.testing.assert_allclose(student_t(t64(d2), 1.0).numpy(), 1.0 / (1.0 + d2))
    np.testing.assert_allclose(student_t(t64(d2), 3.0).numpy(), (1.0 + d2 / 3.0) ** -2.0)


def test_student_t_similarity_is_scale_invariant_and_one_at_prototype():
    s = similarity(t64([[2.0, 0.0], [0.0, 0.1]]), t64([[5.0, 0.0]])).numpy()[:, 0]
    assert s[0] == pytest.approx(1.0)  # same direction, different norm
    assert s[1] == pytest.approx((1.0 + 2.0) ** -1.0)  # orthogonal unit vectors: distance^2 = 2


# ------------------------------------------------------------ Eq. 7: w_i
S = np.array([[0.2, 0.9, 0.4], [0.5, 0.3, 0.1], [0.25, 0.25, 0.6], [1.0, 0.2, 0.3]])


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_normality_weights_raw(beta):
    w = normality_weights(t64(S), beta).numpy()
    np.testing.assert_allclose(w, np_sigmoid(beta * np.array([0.9, 0.5, 0.6, 1.0])))
    assert w[3] > w[0] > w[2] > w[1]  # more similar to some prototype -> more normal


def test_sample_weights_normalised_to_mean_one_as_the_authors_code():
    raw = np_sigmoid(S.max(1))
    w = MNPLoss(1, "cpu").sample_weights(t64(S)).numpy()
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)


# ------------------------------------------------------------ Eq. 8: L_kl
def test_dec_target_matches_numpy():
    q = S / S.sum(1, keepdims=True)
    f = q.sum(0)
    expected = (q**2 / f) / (q**2 / f).sum(1, keepdims=True)
    p = MNPLoss(1, "cpu").target(t64(q)).numpy()
    np.testing.assert_allclose(p, expected)
    np.testing.assert_allclose(p.sum(1), 1.0)


# ------------------------------------------------- the three losses of a batch
class StubNet:
    """A 'member' whose outputs on the concatenated batch are given: the losses see only them."""

    def __init__(self, out: MNPOutput) -> None:
        self.out = out

    def __call__(self, x: torch.Tensor) -> MNPOutput:
        assert len(x) == len(self.out.score)
        return self.out


def _outputs(n: int, k: int = 3, seed: int = 0) -> MNPOutput:
    g = torch.Generator().manual_seed(seed)
    return MNPOutput(
        z=torch.randn(n, 4, generator=g, dtype=torch.float64),
        recon_error=torch.rand(n, generator=g, dtype=torch.float64) * 0.2,
        similarity=0.2 + 0.8 * torch.rand(n, k, generator=g, dtype=torch.float64),
        score=torch.rand(n, generator=g, dtype=torch.float64),
    )


def _losses(loss: MNPLoss, out: MNPOutput, n_u: int) -> torch.Tensor:
    """``loss.losses`` on a batch whose first ``n_u`` rows are unlabeled and the rest labeled anomalies."""
    n = len(out.score)
    return loss.losses(StubNet(out), torch.zeros(n_u, 1), torch.zeros(n - n_u, 1))


def _expected(out: MNPOutput, n_u: int, w: np.ndarray, margin=0.02) -> np.ndarray:
    e, s, sc = (t.numpy() for t in (out.recon_error, out.similarity, out.score))
    e_u, s_u, sc_u, e_a, s_a, sc_a = e[:n_u], s[:n_u], sc[:n_u], e[n_u:], s[n_u:], sc[n_u:]
    l_score = np_smooth_l1
    loss_u = (w * e_u).mean()  # Eq. 3
    if len(e_a) == 0:
        rec = loss_u
        con = -math.log(np_sigmoid((w * s_u.max(1)).mean()))
        sco = (w * l_score(sc_u)).mean()
    else:
        rec = loss_u + np.maximum(0.0, margin - (e_a - loss_u)).mean()  # Eq. 4-5
        con = -math.log(np_sigmoid((w * s_u.max(1)).mean() - s_a.max(1).mean()))  # Eq. 9
        sco = (w * l_score(sc_u)).mean() + l_score(sc_a - 1).mean()  # Eq. 12
    return np.array([rec, con + np_kl(s_u), sco])  # Eq. 10


def _weights(out: MNPOutput, n_u: int) -> np.ndarray:
    raw = np_sigmoid(out.similarity.numpy()[:n_u].max(1))
    return raw / raw.mean()


def test_losses_match_equations_with_normalised_weights():
    out = _outputs(8)
    parts = _losses(MNPLoss(1, "cpu"), out, 6).numpy()
    assert parts.shape == (3,)
    np.testing.assert_allclose(parts, _expected(out, 6, _weights(out, 6)), rtol=1e-10)


def test_recon_hinge_hand_computed():
    """Eq. 3-5 by hand: w (1.5, 0.5) normalised from the similarities, e_u (0.1, 0.3), e_a (0.16, 0.5)."""
    s = np.array([[1.0], [-np.log(3.0)], [0.5], [0.5]])  # sigmoid: 0.731, 0.25 -> weights 1.49, 0.51
    raw = np_sigmoid(s[:2, 0])
    w = raw / raw.mean()
    out = MNPOutput(torch.zeros(4, 2, dtype=torch.float64), t64([0.1, 0.3, 0.16, 0.5]), t64(s),
                    t64([0.0, 0.0, 1.0, 1.0]))
    loss_u = (w * [0.1, 0.3]).mean()
    expected = loss_u + (max(0.0, 0.02 - (0.16 - loss_u)) + max(0.0, 0.02 - (0.5 - loss_u))) / 2
    assert _losses(MNPLoss(1, "cpu"), out, 2)[0].item() == pytest.approx(expected)
    # a margin beyond both anomalies' errors: the hinge is active for both
    assert _losses(MNPLoss(1, "cpu", margin=1.0), out, 2)[0].item() == pytest.approx(
        loss_u + 1.0 - ((0.16 + 0.5) / 2 - loss_u))


def test_losses_without_anomalies():
    out = _outputs(6)
    expected = _expected(out, 6, _weights(out, 6))
    np.testing.assert_allclose(_losses(MNPLoss(1, "cpu"), out, 6).numpy(), expected, rtol=1e-10)


def test_use_weights_false_equals_unit_weights():
    out = _outputs(8)
    parts = _losses(MNPLoss(1, "cpu", use_weights=False), out, 6).numpy()
    np.testing.assert_allclose(parts, _expected(out, 6, np.ones(6)), rtol=1e-10)
    assert not np.allclose(parts, _losses(MNPLoss(1, "cpu"), out, 6).numpy())


@pytest.mark.parametrize("switch, index", [("use_recon_loss", 0), ("use_prototype_loss", 1)])
def test_ablation_switches_give_exact_zero(switch, index):
    out = _outputs(8)
    full = _losses(MNPLoss(1, "cpu"), out, 6)
    parts = _losses(MNPLoss(1, "cpu", **{switch: False}), out, 6)
    assert parts[index].item() == 0.0 and full[index].item() > 0.0
    keep = [i for i in range(3) if i != index]
    torch.testing.assert_close(parts[keep], full[keep])


def test_margin_option():
    out = _outputs(8)
    parts = _losses(MNPLoss(1, "cpu", margin=0.5), out, 6).numpy()
    np.testing.assert_allclose(parts, _expected(out, 6, _weights(out, 6), margin=0.5), rtol=1e-10)
    assert parts[0] != _losses(MNPLoss(1, "cpu"), out, 6).numpy()[0]


def _kl_gradient(loss: MNPLoss, s_np: np.ndarray) -> np.ndarray:
    s = t64(s_np).requires_grad_()
    zeros = torch.zeros(len(s_np), dtype=torch.float64)
    out = MNPOutput(torch.zeros(len(s_np), 2, dtype=torch.float64), zeros, s, zeros)
    loss.losses(StubNet(out), torch.zeros(len(s_np), 1), torch.zeros(0, 1))[1].backward()
    return s.grad.numpy()


def _reference_kl_gradient(s_np: np.ndarray, detach: bool) -> np.ndarray:
    """The gradient of L_np without anomalies, -log sigmoid(mean(w s_max)) + KL, p detached or not."""
    s = t64(s_np).requires_grad_()
    q = s / s.sum(1, keepdim=True)
    if detach:  # P is a constant computed outside autograd
        q_np = s_np / s_np.sum(1, keepdims=True)
        p = t64((q_np**2 / q_np.sum(0)) / (q_np**2 / q_np.sum(0)).sum(1, keepdims=True))
    else:
        f = q.pow(2) / q.sum(0, keepdim=True)
        p = f / f.sum(1, keepdim=True)
    raw = torch.sigmoid(s.max(1).values)
    w = raw / raw.mean()
    con = -torch.nn.functional.logsigmoid((w * s.max(1).values).mean())
    (con + (p * (p.log() - q.log())).sum()).backward()
    return s.grad.numpy()


def test_dec_target_gradient_flows_through_the_target():
    """As the authors' code does (DEC itself holds the target fixed: another gradient)."""
    s_np = np.random.default_rng(1).uniform(0.2, 1.0, size=(6, 3))
    joint = _kl_gradient(MNPLoss(1, "cpu"), s_np)
    np.testing.assert_allclose(joint, _reference_kl_gradient(s_np, detach=False), rtol=1e-10, atol=1e-12)
    assert not np.allclose(joint, _reference_kl_gradient(s_np, detach=True))  # so the check has teeth


def test_kl_is_a_sum_over_samples_and_zero_for_uniform_similarity():
    s = np.random.default_rng(3).uniform(0.2, 1.0, size=(5, 3))
    assert np_kl(np.tile(s, (4, 1))) == pytest.approx(4 * np_kl(s), rel=1e-10)  # the reference itself
    uniform = MNPOutput(torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.float64),
                        t64(np.full((4, 3), 0.5)), torch.zeros(4, dtype=torch.float64))
    np_part = _losses(MNPLoss(1, "cpu"), uniform, 4)[1].item()
    assert np_part == pytest.approx(-math.log(np_sigmoid(0.5)), abs=1e-12)  # L_con only: KL is 0


# -------------------------------------------------------------- Eq. 13: DWA
def _dwa(history, temperature=2.0) -> np.ndarray:
    """The weights after the epochs of ``history`` (one row of mean losses an epoch), one member."""
    history = np.asarray(history, dtype=np.float64)
    loss = MNPLoss(1, "cpu", temperature=temperature)
    loss.weights = torch.ones(1, history.shape[1])
    loss._sum = torch.zeros(1, history.shape[1])
    for means in history:
        loss.balance(torch.as_tensor(means[None], dtype=torch.float32))
        loss.update_weights()
    return loss.weights.double().numpy()[0]


def test_dwa_ones_before_two_epochs():
    np.testing.assert_array_equal(_dwa(np.empty((0, 3))), np.ones(3))
    np.testing.assert_array_equal(_dwa([[0.5, 2.0, 9.0]]), np.ones(3))


def test_dwa_hand_computed_t2():
    history = [[1.0, 1.0, 1.0], [2.0, 4.0, 4.0], [1.0, 4.0, 8.0]]  # only the last two epochs count
    r = np.array([0.5, 1.0, 2.0])
    expected = 3 * np.exp(r / 2) / np.exp(r / 2).sum()
    got = _dwa(history, temperature=2.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got, [0.6817, 0.8753, 1.4431], atol=1e-4)  # e^.25, e^.5, e^1 over 5.651


def test_dwa_sums_to_three_and_slower_loss_gets_more_weight():
    w = _dwa([[1.0, 1.0, 1.0], [0.9, 0.5, 0.1]])
    assert w.sum() == pytest.approx(3.0)
    assert list(np.argsort(w)) == [2, 1, 0]  # descent rates 0.9, 0.5, 0.1: slower falls weigh more


def test_dwa_equal_rates_and_temperature():
    np.testing.assert_allclose(_dwa([[1.0, 2.0, 4.0], [0.5, 1.0, 2.0]]), np.ones(3), rtol=1e-6)
    history = [[1.0, 1.0, 1.0], [0.5, 1.0, 1.0]]
    sharp, flat = _dwa(history, temperature=0.5), _dwa(history, temperature=20.0)
    assert abs(sharp[1] - sharp[0]) > abs(flat[1] - flat[0]) > 0


def test_dwa_weighs_each_member_by_its_own_losses():
    """Eq. 13 summed over members: each member's weights come from its own epoch means."""
    loss = MNPLoss(2, "cpu")
    for means in ([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[0.5, 1.0, 1.0], [1.0, 1.0, 0.5]]):
        loss.balance(torch.tensor(means))
        epoch_means, used = loss.update_weights()
        np.testing.assert_allclose(epoch_means, means)
    w = loss.weights.numpy()
    assert w[0, 0] < w[0, 1] == pytest.approx(w[0, 2]) and w[1, 2] < w[1, 0] == pytest.approx(w[1, 1])
    losses = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert loss.balance(losses).item() == pytest.approx(float((loss.weights * losses).sum()))


def test_dwa_means_are_the_epochs_batch_means():
    loss = MNPLoss(1, "cpu")
    for batch in ([1.0, 2.0, 3.0], [3.0, 4.0, 5.0]):
        loss.balance(torch.tensor([batch]))
    means, used = loss.update_weights()
    np.testing.assert_allclose(means, [[2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(used, np.ones((1, 3)))
