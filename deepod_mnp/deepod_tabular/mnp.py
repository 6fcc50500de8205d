"""
Multi-normal prototypes learning for weakly supervised anomaly detection.
PyTorch's implementation; equation numbers refer to the paper (arXiv:2408.14498).
"""
from collections import namedtuple

import numpy as np
import torch
from deepod.core.base_model import BaseDeepAD
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from torch.nn import functional as F
from torch.utils.data import DataLoader

KMEANS_MAX_SAMPLES = 5000  # the latent codes k-means clusters: at most this many unlabeled samples


class MNP(BaseDeepAD):
    """
    Multi-Normal Prototypes Learning for Weakly Supervised Anomaly Detection (arXiv'24)
    :cite:`dong2024multi`

    An autoencoder learns latent codes of the unlabeled data; ``k`` normal
    prototypes, initialised by k-means on the codes of the pretrained encoder,
    are refined by deep embedding clustering and a contrastive loss against the
    labeled anomalies; each unlabeled sample is weighted by its likelihood of
    being normal; an MLP scores a sample from its reconstruction error, latent
    code and largest prototype similarity; dynamic weight averaging balances the
    three losses. ``n_members`` such networks, each with its own seed,
    pretraining, prototypes and mini-batches, are trained side by side in one
    network and their scores averaged. ``y`` is 1 for labeled anomalies and 0
    for unlabeled samples; features are expected min-max scaled to [0, 1].

    Args:
        epochs (int, optional):
            number of training epochs after pretraining (default=5)
        batch_size (int, optional):
            unlabeled samples in a mini-batch, b_u (default=128)
        lr (float, optional):
            learning rate (default=5e-3)
        rep_dim (int, optional):
            dimension of the latent code, H (default=8)
        hidden_dims (list, str, int or None, optional):
            the encoder's hidden layers (the decoder mirrors them), as list, comma-separated str
            or int; None is the paper's one layer of D - (D - H) // 2 units (default=None)
        act (str, optional):
            activation layer name, choice = ['ReLU', 'LeakyReLU', 'Sigmoid', 'Tanh']; the decoder's
            output layer keeps LeakyReLU (default='LeakyReLU')
        bias (bool, optional):
            additive bias in linear layers (default=True)
        anomaly_batch_size (int, optional):
            labeled anomalies in a mini-batch, b_a, drawn with replacement (default=32)
        weight_decay (float, optional):
            L2 penalty on all weights, as Adam's weight decay (default=5e-4)
        n_prototypes (int or 'auto', optional):
            number of normal prototypes k; 'auto' picks k in 2..10 by the silhouette score
            of k-means on the latent codes; 1 is the paper's "w/o MNP" ablation (default='auto')
        alpha (float, optional):
            degrees of freedom of the Student's t similarity, Eq. 6 (default=1.)
        beta (float, optional):
            similarity scale in the weights of unlabeled samples, Eq. 7 (default=1.)
        margin (float, optional):
            reconstruction margin m1 of the labeled anomalies, Eq. 4 (default=0.02)
        dwa_temperature (float, optional):
            temperature of the dynamic weight averaging of the losses (default=2.)
        pretrain_epochs (int, optional):
            epochs of each stage of the layer-wise denoising pretraining; 0 skips it (default=2)
        pretrain_noise (float, optional):
            standard deviation of the input noise in pretraining (default=0.05)
        n_members (int, optional):
            networks trained side by side, scores averaged; 1 is the paper's single network (default=3)
        use_recon_loss, use_prototype_loss, use_weights, recon_in_score (bool, optional):
            False gives the paper's ablations w/o L_recon, w/o L_np, w/o w_i, w/o Decoder (default=True)
        epoch_steps (int, optional):
            mini-batches in an epoch (of training and of each pretraining stage); if -1,
            ceil(n_unlabeled / batch_size) clipped to 8..16 (default=-1)
        prt_steps (int, optional):
            number of epoch intervals per printing (default=10)
        device (str, optional):
            torch device (default='cuda')
        verbose (int, optional):
            verbosity mode (default=2)
        random_state (int, optional):
            the seed of the weights, batches, noise and k-means (default=42)
    """
    def __init__(self, epochs=5, batch_size=128, lr=5e-3,
                 rep_dim=8, hidden_dims=None, act='LeakyReLU', bias=True,
                 anomaly_batch_size=32, weight_decay=5e-4, n_prototypes='auto',
                 alpha=1., beta=1., margin=0.02, dwa_temperature=2.,
                 pretrain_epochs=2, pretrain_noise=0.05, n_members=3,
                 use_recon_loss=True, use_prototype_loss=True, use_weights=True, recon_in_score=True,
                 epoch_steps=-1, prt_steps=10, device='cuda',
                 verbose=2, random_state=42):
        super().__init__(
            data_type='tabular', model_name='MNP', epochs=epochs, batch_size=batch_size, lr=lr,
            network='MLP', epoch_steps=epoch_steps, prt_steps=prt_steps, device=device,
            verbose=verbose, random_state=random_state
        )
        self.rep_dim = rep_dim
        self.hidden_dims = hidden_dims
        self.act = act
        self.bias = bias
        self.anomaly_batch_size = anomaly_batch_size
        self.weight_decay = weight_decay
        self.n_prototypes = n_prototypes
        self.alpha = alpha
        self.beta = beta
        self.margin = margin
        self.dwa_temperature = dwa_temperature
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_noise = pretrain_noise
        self.n_members = n_members
        self.use_recon_loss = use_recon_loss
        self.use_prototype_loss = use_prototype_loss
        self.use_weights = use_weights
        self.recon_in_score = recon_in_score

    def training_prepare(self, X, y):
        """Pretrain each member's autoencoder, initialise its prototypes; the loader, net and criterion."""
        X = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)
        y = np.zeros(len(X), dtype=int) if y is None else np.asarray(y)
        return self._prepare(X, y, np.random.default_rng(self.random_state))

    def _prepare(self, X, y, rng, batches=None):
        """``training_prepare`` of ``X`` on the device. Each member draws from its own generator, seeded
        from ``rng``, so it gets what it would alone (k is chosen on the first); ``batches`` draws the
        unlabeled rows of an epoch (:func:`random_batches`)."""
        batches = random_batches if batches is None else batches
        unlabeled = X[torch.as_tensor(y == 0, device=X.device)]
        steps = self._epoch_steps(len(unlabeled))
        rngs = [np.random.default_rng(seed) for seed in rng.integers(2 ** 31 - 1, size=self.n_members)]
        first, silhouettes = self._prepare_member(unlabeled, self.n_prototypes, steps, rngs[0], batches)
        k = len(first.prototypes)  # chosen on the first member, the same for all
        members = [first] + [self._prepare_member(unlabeled, k, steps, r, batches)[0] for r in rngs[1:]]
        loader = MixedBatchLoader(X, y, self.batch_size, self.anomaly_batch_size, steps, rngs, batches)
        return loader, MNPEnsemble(members, silhouettes), self._build_criterion(X.device)

    def _prepare_member(self, unlabeled, n_prototypes, steps, rng, batches):
        with torch.random.fork_rng(devices=[]):  # the initial weights, without touching the global seed
            torch.manual_seed(int(rng.integers(2 ** 31 - 1)))
            net = self._build_member(unlabeled.shape[1]).to(unlabeled.device)
        noise = torch.Generator().manual_seed(int(rng.integers(2 ** 31 - 1)))
        pretrain(net.ae, unlabeled, epochs=self.pretrain_epochs, steps=steps, batch_size=self.batch_size,
                 lr=self.lr, weight_decay=self.weight_decay, noise=self.pretrain_noise, rng=rng,
                 generator=noise, batches=batches)
        sub = rng.choice(len(unlabeled), min(len(unlabeled), KMEANS_MAX_SAMPLES), replace=False)
        with torch.no_grad():
            codes = net.ae.encoder(unlabeled[torch.as_tensor(sub, device=unlabeled.device)]).cpu().numpy()
        if not np.isfinite(codes).all():
            raise RuntimeError('MNP autoencoder pretraining diverged: non-finite latent codes. '
                               f'Try a smaller lr (lr={self.lr!r}) or check the input scaling.')
        centers, scores = init_prototypes(codes, n_prototypes, random_state=int(rng.integers(2 ** 31 - 1)))
        net.prototypes = torch.nn.Parameter(torch.as_tensor(centers, device=unlabeled.device))
        return net, scores

    def _member_dims(self, n_features):
        """Widths of the encoder's layers, the latent code last."""
        hidden = self.hidden_dims
        if hidden is None:
            hidden = [n_features - (n_features - self.rep_dim) // 2]
        elif isinstance(hidden, str):
            hidden = [int(a) for a in hidden.split(',') if a.strip()]
        elif isinstance(hidden, (int, np.integer)):
            hidden = [hidden]
        return [int(a) for a in hidden] + [self.rep_dim]

    def _build_member(self, n_features):
        return MNPNet(n_features, self._member_dims(n_features), act=self.act, bias=self.bias,
                      alpha=self.alpha, recon_in_score=self.recon_in_score)

    def _build_criterion(self, device):
        return MNPLoss(self.n_members, device, margin=self.margin, beta=self.beta,
                       temperature=self.dwa_temperature, use_weights=self.use_weights,
                       use_recon_loss=self.use_recon_loss, use_prototype_loss=self.use_prototype_loss)

    def _epoch_steps(self, n_unlabeled):
        return auto_epoch_steps(n_unlabeled, self.batch_size) if self.epoch_steps == -1 else self.epoch_steps

    def training_forward(self, batch_x, net, criterion):
        losses = torch.stack([criterion.losses(member, x_u, x_a)
                              for member, (x_u, x_a) in zip(net.members, batch_x)])
        # the weight decay is an L2 term: the gradient of Adam's (coupled) weight decay
        l2 = sum(p.pow(2).sum() for p in net.parameters())
        return criterion.balance(losses) + 0.5 * self.weight_decay * l2

    def epoch_update(self):
        """Dynamic weight averaging: the loss weights of the next epoch."""
        self.criterion.update_weights()

    def inference_prepare(self, X):
        return DataLoader(X, batch_size=self.batch_size, drop_last=False, shuffle=False)

    def inference_forward(self, batch_x, net, criterion):
        out = net(batch_x.float().to(self.device))
        return out.z, out.score


def auto_epoch_steps(n_unlabeled, batch_size):
    """Mini-batches of an epoch with ``epoch_steps=-1``: ceil(n_unlabeled / batch_size) clipped to 8..16."""
    return int(np.clip(-(-n_unlabeled // batch_size), 8, 16))


def random_batches(n_rows, size, steps, rng):
    """The row indices of an epoch's mini-batches: ``steps`` batches of ``size`` rows, each drawn afresh."""
    for _ in range(steps):
        yield rng.choice(n_rows, size, replace=False)


class MixedBatchLoader:
    """``steps`` mini-batches an epoch, each a list of one (x_unlabeled, x_anomalies) pair per member:
    ``batch_size`` unlabeled rows without replacement and ``anomaly_batch_size`` labeled anomalies with
    replacement (one is enough), drawn from the member's generator."""
    def __init__(self, X, y, batch_size, anomaly_batch_size, steps, rngs, batches=None):
        self.x_u = X[torch.as_tensor(y == 0, device=X.device)]
        self.x_a = X[torch.as_tensor(y == 1, device=X.device)]
        self.batch_size = min(batch_size, len(self.x_u))
        self.anomaly_batch_size = anomaly_batch_size if len(self.x_a) else 0
        self.steps = steps
        self.rngs = rngs
        self.batches = random_batches if batches is None else batches

    def __len__(self):
        return self.steps

    def __iter__(self):
        epochs = [iter(self.batches(len(self.x_u), self.batch_size, self.steps, rng)) for rng in self.rngs]
        for _ in range(self.steps):
            batch = []
            for rng, unlabeled in zip(self.rngs, epochs):
                u = torch.as_tensor(next(unlabeled), device=self.x_u.device)
                a = rng.choice(len(self.x_a), self.anomaly_batch_size) if self.anomaly_batch_size else []
                batch.append((self.x_u[u], self.x_a[torch.as_tensor(a, dtype=torch.long, device=u.device)]))
            yield batch


def pretrain(ae, X, epochs, steps, batch_size, lr, weight_decay, noise, rng, generator,
             batches=random_batches):
    """Layer-wise denoising pretraining on the unlabeled rows ``X`` (Xie et al. 2016): each encoder layer and
    its mirror decoder layer reconstruct the codes below them from a noisy copy, then the whole
    autoencoder is fine-tuned without noise; ``epochs`` epochs of ``steps`` mini-batches a stage."""
    if epochs <= 0:
        return
    ae.train()
    n = len(ae.encoder)
    stages = [(ae.encoder[i], ae.decoder[n - 1 - i], noise) for i in range(n)]
    stages.append((ae.encoder, ae.decoder, 0.))
    codes = X
    for i, (encode, decode, std) in enumerate(stages):
        inputs = codes if i < n else X
        optimizer = torch.optim.Adam([*encode.parameters(), *decode.parameters()], lr=lr,
                                     weight_decay=weight_decay)
        for _ in range(epochs):
            for idx in batches(len(inputs), min(batch_size, len(inputs)), steps, rng):
                clean = inputs[torch.as_tensor(idx, device=X.device)]
                noisy = clean + std * torch.randn(clean.shape, generator=generator).to(X.device) \
                    if std else clean
                loss = F.mse_loss(decode(encode(noisy)), clean)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        if i < n:
            with torch.no_grad():
                codes = encode(codes)


def init_prototypes(codes, n_prototypes='auto', random_state=None, k_range=(2, 10), silhouette_samples=2000):
    """Unit-norm k-means centres of the L2-normalised codes (Guo et al. 2017); with 'auto', k in ``k_range``
    of the best silhouette score (on at most ``silhouette_samples`` codes). Also the score of each k."""
    Z = _unit_rows(codes)
    fits, scores = {}, {}
    if n_prototypes == 'auto':
        for k in range(k_range[0], min(k_range[1], len(Z) - 1) + 1):
            fits[k] = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(Z)
            if len(np.unique(fits[k].labels_)) > 1:
                scores[k] = float(silhouette_score(Z, fits[k].labels_, random_state=random_state,
                                                   sample_size=min(silhouette_samples, len(Z))))
        n_prototypes = max(scores, key=scores.get) if scores else 1
    k = int(n_prototypes)
    model = fits[k] if k in fits else KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(Z)
    return _unit_rows(model.cluster_centers_).astype(np.float32), scores


def _unit_rows(a):
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


MNPOutput = namedtuple('MNPOutput', ['z', 'recon_error', 'similarity', 'score'])


def _block(n_in, n_out, act, bias):
    return torch.nn.Sequential(torch.nn.Linear(n_in, n_out, bias=bias), getattr(torch.nn, act)())


class AutoEncoder(torch.nn.Module):
    """Symmetric MLP; ``encoder[i]`` and ``decoder[-1 - i]`` form the i-th denoising autoencoder of the
    pretraining. The output layer keeps LeakyReLU whatever ``act`` is: a reconstruction takes any sign."""
    def __init__(self, n_features, dims, act='LeakyReLU', bias=True):
        super().__init__()
        w = [n_features] + list(dims)
        self.encoder = torch.nn.Sequential(*[_block(a, b, act, bias) for a, b in zip(w[:-1], w[1:])])
        acts = [act] * (len(w) - 2) + ['LeakyReLU']
        r = w[::-1]
        self.decoder = torch.nn.Sequential(*[_block(a, b, f, bias) for a, b, f in zip(r[:-1], r[1:], acts)])

    def forward(self, x):
        z = self.encoder(x)  # Eq. 1
        return z, self.decoder(z)  # Eq. 2


def similarity(z, prototypes, alpha=1.):
    """Student's t similarity s_ij of each code to each prototype, both L2-normalised, shape (n, k)."""
    return student_t(torch.cdist(F.normalize(z, dim=1), F.normalize(prototypes, dim=1)).pow(2), alpha)


def student_t(d2, alpha=1.):
    """The similarity of a squared distance ``d2`` between unit vectors (any shape)."""
    return (1. + d2 / alpha).pow(-(alpha + 1.) / 2.)  # Eq. 6


def normality_weights(s, beta=1.):
    """w_i, the likelihood of an unlabeled sample being normal, from its largest similarity."""
    return torch.sigmoid(beta * s.max(dim=1).values)  # Eq. 7


class MNPNet(torch.nn.Module):
    """One member: the autoencoder, ``k`` normal prototypes in its latent space and the scoring MLP."""
    def __init__(self, n_features, dims, act='LeakyReLU', bias=True, alpha=1., recon_in_score=True,
                 n_prototypes=1, score_hidden=16):
        super().__init__()
        self.ae = AutoEncoder(n_features, dims, act=act, bias=bias)
        self.prototypes = torch.nn.Parameter(torch.zeros(n_prototypes, dims[-1]))
        self.alpha = alpha
        self.recon_in_score = recon_in_score
        self.scorer = torch.nn.Sequential(
            torch.nn.Linear(dims[-1] + 2, score_hidden, bias=bias), getattr(torch.nn, act)(),
            torch.nn.Linear(score_hidden, 1, bias=bias), torch.nn.Sigmoid()
        )

    def forward(self, x):
        z, x_hat = self.ae(x)
        e = self.recon_error(x, x_hat)
        s = similarity(z, self.prototypes, self.alpha)
        score = self.scorer(self.score_input(x, e, z, s)).squeeze(1)  # Eq. 11
        return MNPOutput(z, e, s, score)

    def recon_error(self, x, x_hat):
        """e_i = l(x_i, x_hat_i), the smooth L1 error averaged over features."""
        return F.smooth_l1_loss(x_hat, x, reduction='none').mean(dim=1)

    def score_input(self, x, e, z, s):
        """cat(e_i, z_i, s_i); z_i L2-normalised as in Eq. 6, e_i zero without ``recon_in_score``."""
        e = e if self.recon_in_score else torch.zeros_like(e)
        return torch.cat([e[:, None], F.normalize(z, dim=1), s.max(dim=1).values[:, None]], dim=1)


class MNPEnsemble(torch.nn.Module):
    """Members side by side: their scores and errors averaged, their codes and similarities concatenated;
    ``silhouette_scores``: the score of each k tried when k was chosen (on the first member)."""
    def __init__(self, members, silhouette_scores=None):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.silhouette_scores = dict(silhouette_scores or {})

    def forward(self, x):
        outs = [member(x) for member in self.members]
        if len(outs) == 1:
            return outs[0]
        return MNPOutput(torch.cat([o.z for o in outs], dim=1),
                         torch.stack([o.recon_error for o in outs]).mean(dim=0),
                         torch.cat([o.similarity for o in outs], dim=1),
                         torch.stack([o.score for o in outs]).mean(dim=0))


class MNPLoss:
    """The losses L_recon, L_np and L_score of each member's mixed mini-batch, and their weights, set
    each epoch by dynamic weight averaging (Liu et al. 2019) from the descent of the member's losses."""
    names = ('recon', 'prototype', 'score')

    def __init__(self, n_members, device, margin=0.02, beta=1., temperature=2., use_weights=True,
                 use_recon_loss=True, use_prototype_loss=True):
        self.margin = margin
        self.beta = beta
        self.temperature = temperature
        self.use_weights = use_weights
        self.use_recon_loss = use_recon_loss
        self.use_prototype_loss = use_prototype_loss
        self.weights = torch.ones(n_members, 3, device=device)
        self.history = []
        self._sum = torch.zeros(n_members, 3, device=device)
        self._steps = 0

    def losses(self, net, x_u, x_a):
        """(L_recon, L_np, L_score) of one member on unlabeled rows ``x_u`` and labeled anomalies ``x_a``."""
        out = net(torch.cat([x_u, x_a]))
        n, has_a = len(x_u), len(x_a) > 0
        e_u, e_a, s_u, s_a = out.recon_error[:n], out.recon_error[n:], out.similarity[:n], out.similarity[n:]
        w = self.sample_weights(s_u) if self.use_weights else torch.ones_like(e_u)
        zero = e_u.new_zeros(())
        l_u = (w * e_u).mean()  # Eq. 3
        l_a = F.relu(self.margin - (e_a - l_u)).mean() if has_a else zero  # Eq. 4
        l_recon = l_u + l_a if self.use_recon_loss else zero  # Eq. 5
        q = s_u / s_u.sum(dim=1, keepdim=True)
        p = self.target(q)
        l_kl = (p * (p.log() - q.log())).sum()  # Eq. 8
        gap = (w * s_u.max(dim=1).values).mean() - (s_a.max(dim=1).values.mean() if has_a else 0.)
        l_con = -F.logsigmoid(gap)  # Eq. 9
        l_np = l_con + l_kl if self.use_prototype_loss else zero  # Eq. 10
        l_score = (w * self.score_error(out.score[:n], 0.)).mean() + (
            self.score_error(out.score[n:], 1.).mean() if has_a else zero)  # Eq. 12
        return torch.stack([l_recon, l_np, l_score])

    def sample_weights(self, s_u):
        """w_i of the batch rescaled to mean 1, as in the authors' code."""
        w = normality_weights(s_u, self.beta)
        return w / w.mean()

    def target(self, q):
        """DEC's target p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'), with f_j = sum_i q_ij (Xie et al.
        2016); the gradient flows through it, as in the authors' code."""
        p = q.pow(2) / q.sum(dim=0, keepdim=True)
        return p / p.sum(dim=1, keepdim=True)

    def score_error(self, score, target):
        """l(score_i, target) of Eq. 12, the smooth L1 loss."""
        return F.smooth_l1_loss(score, torch.full_like(score, target), reduction='none')

    def balance(self, losses):
        """The total loss of all members; ``losses`` has one row (L_recon, L_np, L_score) per member."""
        self._sum += losses.detach()
        self._steps += 1
        return (self.weights * losses).sum()  # Eq. 13

    def update_weights(self):
        """w_k = K exp(r_k / T) / sum_j exp(r_j / T), r_k = L_k(t-1) / L_k(t-2), per member; returns the
        epoch's mean losses and the weights they were trained with."""
        means = (self._sum / max(self._steps, 1)).cpu().double().numpy()
        used = self.weights.cpu().double().numpy()
        self.history.append(means)
        if len(self.history) > 1:
            prev = self.history[-2]
            rate = np.divide(means, prev * self.temperature, out=np.full_like(means, 1. / self.temperature),
                             where=np.abs(prev) > 1e-12)
            expo = np.exp(rate - rate.max(axis=1, keepdims=True))
            self.weights = torch.as_tensor(3 * expo / expo.sum(axis=1, keepdims=True), dtype=torch.float32,
                                           device=self.weights.device)
        self._sum.zero_()
        self._steps = 0
        return means, used
