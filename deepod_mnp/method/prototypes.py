"""Autoencoder pretraining and prototype initialisation (k-means, silhouette choice of k)."""
from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from torch import nn

from deepod_mnp.method.networks import AutoEncoder
from deepod_mnp.method.sampling import full_pass_batches

logger = logging.getLogger(__name__)

KMEANS_MAX_SAMPLES = 5000  # k-means (and the codes it clusters) never see more rows than this


def _batches(n_rows: int, batch_size: int, epochs: int, steps: int, rng: np.random.Generator,
             full_pass: bool = False) -> Iterable[np.ndarray]:
    """``epochs * steps`` batches of row indices: drawn afresh each, or ``epochs`` full passes."""
    if full_pass:
        for _ in range(epochs):
            yield from full_pass_batches(np.arange(n_rows), batch_size, rng)
        return
    size = min(batch_size, n_rows)
    for _ in range(epochs * steps):
        yield rng.choice(n_rows, size, replace=False)


def _fit_denoising(encode: nn.Module, decode: nn.Module, X: torch.Tensor, *, epochs: int, steps: int,
                   batch_size: int, lr: float, weight_decay: float, noise: float,
                   rng: np.random.Generator, generator: torch.Generator, full_pass: bool = False) -> None:
    params = list(encode.parameters()) + list(decode.parameters())
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    for idx in _batches(len(X), batch_size, epochs, steps, rng, full_pass):
        clean = X[torch.from_numpy(idx).to(X.device)]
        noisy = clean + noise * torch.randn(clean.shape, generator=generator, device="cpu").to(X.device)
        loss = nn.functional.mse_loss(decode(encode(noisy)), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()


def pretrain_autoencoder(ae: AutoEncoder, X: torch.Tensor, *, epochs: int, steps: int, batch_size: int,
                         lr: float, weight_decay: float, noise: float, rng: np.random.Generator,
                         generator: torch.Generator, full_pass: bool = False) -> None:
    """Pretrain ``ae`` in place on unlabeled rows ``X``, as the authors do.

    Each encoder block and its mirror decoder block is first trained as a
    denoising autoencoder on the codes of the blocks below it (Gaussian noise of
    std ``noise`` on the input), then the whole autoencoder is fine-tuned on
    plain reconstruction. Each stage runs ``epochs * steps`` mini-batches,
    each drawn afresh; with ``full_pass=True`` (``epoch_steps=-1``) each of
    its ``epochs`` is one pass over ``X`` instead
    (:func:`~deepod_mnp.method.sampling.full_pass_batches`, ``steps`` of them).
    """
    if epochs <= 0:
        return
    ae.train()
    codes = X
    n_blocks = len(ae.encoder)
    for i in range(n_blocks):
        enc, dec = ae.encoder[i], ae.decoder[n_blocks - 1 - i]
        _fit_denoising(enc, dec, codes, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr,
                       weight_decay=weight_decay, noise=noise, rng=rng, generator=generator,
                       full_pass=full_pass)
        with torch.no_grad():
            codes = enc(codes)
    _fit_denoising(ae.encoder, ae.decoder, X, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr,
                   weight_decay=weight_decay, noise=0.0, rng=rng, generator=generator, full_pass=full_pass)


def choose_prototypes(Z: np.ndarray, n_prototypes: int | str, *, k_range: tuple[int, int] = (2, 10),
                      max_samples: int = KMEANS_MAX_SAMPLES, silhouette_samples: int = 2000,
                      random_state: int | None = None) -> tuple[np.ndarray, int, dict[int, float]]:
    """Initial prototypes by k-means on L2-normalised latent codes.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, H)
        Latent codes of unlabeled samples from the pretrained encoder.
    n_prototypes : int or 'auto'
        k, or ``'auto'`` to pick k in ``k_range`` by the silhouette score.
    k_range : (int, int)
        Smallest and largest k tried by ``'auto'``.
    max_samples : int
        k-means runs on at most this many random rows.
    silhouette_samples : int
        The silhouette score is computed on at most this many rows, so the
        cost never grows quadratically with N.
    random_state : int or None
        Seed of the subsampling and of k-means.

    Returns
    -------
    centers : ndarray of shape (k, H)
        Unit-norm cluster centres.
    k : int
        The number of prototypes.
    silhouettes : dict
        Silhouette score of each k tried (empty when k is given).
    """
    rng = np.random.default_rng(random_state)
    Z = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    if len(Z) > max_samples:
        Z = Z[rng.choice(len(Z), max_samples, replace=False)]
    seed = int(rng.integers(2**31 - 1))

    def kmeans(k: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=3, random_state=seed).fit(Z)

    silhouettes: dict[int, float] = {}
    if n_prototypes == "auto":
        lo, hi = k_range
        fits = {}
        for k in range(lo, min(hi, len(Z) - 1) + 1):
            fits[k] = kmeans(k)
            if len(np.unique(fits[k].labels_)) < 2:
                continue
            silhouettes[k] = float(silhouette_score(
                Z, fits[k].labels_, sample_size=min(silhouette_samples, len(Z)), random_state=seed))
        k = max(silhouettes, key=silhouettes.get) if silhouettes else 1
        model = fits.get(k) or kmeans(k)
        logger.info("silhouette scores %s -> k=%d", {j: round(v, 3) for j, v in silhouettes.items()}, k)
    else:
        k = int(n_prototypes)
        model = kmeans(k)
    centers = model.cluster_centers_
    centers = centers / np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    return centers.astype(np.float32), k, silhouettes
