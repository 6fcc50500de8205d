"""The method as the paper writes it, in torch, NumPy and scikit-learn only (no DeepOD, no detector).

============================  =============================================================
module                        paper
============================  =============================================================
:mod:`.networks`              autoencoder (Eq. 1-2), scoring MLP (Eq. 11), ensemble mean
:mod:`.similarity`            Student-t similarity (Eq. 6), normality weights (Eq. 7)
:mod:`.losses`                L_recon (Eq. 3-5), L_score (Eq. 12), the three losses of a batch
:mod:`.prototype_losses`      DEC's L_kl (Eq. 8), L_con (Eq. 9), L_np (Eq. 10)
:mod:`.dwa`                   dynamic weight averaging of the three losses (Eq. 13)
:mod:`.prototypes`            layer-wise pretraining, k-means prototypes, silhouette choice of k
:mod:`.sampling`              mixed batches of unlabeled samples and labeled anomalies
:mod:`.anoonly`               AnoOnly's Deep SAD body, anomaly-only targets, Deep SAD's centre
============================  =============================================================
"""
