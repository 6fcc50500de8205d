"""The MNP paper's published figures (seed ``001``, as quoted in ``PROTOCOL.md``), for side-by-side tables.

All values are AUC-PR, 1% labeled anomalies, mean of 5 runs, obtained by the
authors with model selection on labeled validation data (which we never use).
Keys are our data set names and registry model names.
"""
from __future__ import annotations

# Table 2 (main results): data set -> model -> AUC-PR.
TABLE2: dict[str, dict[str, float]] = {
    "bank": {"MNP": 0.286, "RoSAS": 0.245, "PReNet": 0.146, "DevNet": 0.246, "DeepSAD": 0.122,
             "FeaWAD": 0.127, "DeepIsolationForest": 0.233, "DeepSVDD": 0.198, "IForest": 0.283},
    "gamma": {"MNP": 0.780, "RoSAS": 0.726, "PReNet": 0.782, "DevNet": 0.749, "DeepSAD": 0.577,
              "FeaWAD": 0.569, "DeepIsolationForest": 0.698, "DeepSVDD": 0.437, "IForest": 0.644},
    "pendigits": {"MNP": 0.856, "RoSAS": 0.852, "PReNet": 0.065, "DevNet": 0.766, "DeepSAD": 0.686,
                  "FeaWAD": 0.396, "DeepIsolationForest": 0.234, "DeepSVDD": 0.073, "IForest": 0.274},
    "backdoor": {"MNP": 0.870, "RoSAS": 0.543, "PReNet": 0.461, "DevNet": 0.878, "DeepSAD": 0.509,
                 "FeaWAD": 0.221, "DeepIsolationForest": 0.247, "DeepSVDD": 0.143, "IForest": 0.046},
    "vehicle_insurance": {"MNP": 0.106, "RoSAS": 0.079, "PReNet": 0.070, "DevNet": 0.093, "DeepSAD": 0.058,
                          "FeaWAD": 0.082, "DeepIsolationForest": 0.062, "DeepSVDD": 0.063, "IForest": 0.064},
}

# The authors' code without validation labels: best test AUC-PR over epochs 10..200 (PROTOCOL.md).
NO_VALIDATION_BEST: dict[str, float] = {"pendigits": 0.832, "gamma": 0.721, "bank": 0.202, "backdoor": 0.687}

# Table 3 (unseen anomaly types on UNSW-NB15): (seen, unseen) -> model -> AUC-PR.
_TABLE3_MODELS = ("MNP", "RoSAS", "PReNet", "DevNet", "DeepSAD", "FeaWAD", "DeepIsolationForest", "DeepSVDD",
                  "IForest")
_TABLE3_ROWS = {
    ("Reconnaissance", "DoS"): (0.824, 0.515, 0.354, 0.512, 0.311, 0.279, 0.654, 0.311, 0.212),
    ("Analysis", "DoS"): (0.904, 0.710, 0.546, 0.882, 0.415, 0.651, 0.659, 0.370, 0.248),
    ("Backdoor", "DoS"): (0.868, 0.654, 0.538, 0.867, 0.461, 0.658, 0.668, 0.312, 0.256),
    ("DoS", "Reconnaissance"): (0.681, 0.653, 0.389, 0.566, 0.324, 0.274, 0.161, 0.199, 0.097),
    ("Analysis", "Reconnaissance"): (0.534, 0.250, 0.176, 0.469, 0.257, 0.281, 0.210, 0.275, 0.133),
    ("Backdoor", "Reconnaissance"): (0.699, 0.566, 0.478, 0.535, 0.375, 0.297, 0.213, 0.197, 0.124),
    ("DoS", "Analysis"): (0.844, 0.537, 0.493, 0.843, 0.266, 0.477, 0.116, 0.097, 0.034),
    ("Reconnaissance", "Analysis"): (0.586, 0.180, 0.082, 0.198, 0.138, 0.077, 0.253, 0.137, 0.056),
    ("Backdoor", "Analysis"): (0.785, 0.417, 0.365, 0.828, 0.324, 0.244, 0.263, 0.231, 0.069),
    ("DoS", "Backdoor"): (0.865, 0.615, 0.578, 0.851, 0.313, 0.525, 0.105, 0.085, 0.021),
    ("Reconnaissance", "Backdoor"): (0.735, 0.320, 0.169, 0.166, 0.153, 0.095, 0.250, 0.226, 0.045),
    ("Analysis", "Backdoor"): (0.857, 0.415, 0.334, 0.815, 0.289, 0.238, 0.243, 0.153, 0.051),
}
TABLE3: dict[tuple[str, str], dict[str, float]] = {
    pair: dict(zip(_TABLE3_MODELS, row)) for pair, row in _TABLE3_ROWS.items()}

# Table 4 (ablation, average AUC-PR over the paper's 15 data sets), keyed by our ablation setting names.
TABLE4: dict[str, float] = {"full": 0.642, "no_recon_loss": 0.622, "no_prototype_loss": 0.618,
                            "no_weights": 0.602, "no_recon_in_score": 0.611, "single_prototype": 0.566}
