"""What the detectors of deepod-mnp add beyond DeepOD's MNP, in torch, NumPy and scikit-learn only.

MNP's equations (Eq. 1-13) are written once, in :mod:`deepod_mnp.deepod_tabular.mnp`
(the module DeepOD receives); this package holds the rest:

============================  =============================================================
module                        what
============================  =============================================================
:mod:`.fused`                 a fitted MNP ensemble as batched matrix products (scoring)
:mod:`.scaling`               the input scaling learned in ``fit`` (``scaler``)
:mod:`.score_head`            ``recon_norm='log'``: the error on the code's scale
:mod:`.sampling`              ``epoch_steps=-1``: full passes over the unlabeled rows
:mod:`.anoonly`               AnoOnly's Deep SAD body, anomaly-only targets, Deep SAD's centre
============================  =============================================================
"""
