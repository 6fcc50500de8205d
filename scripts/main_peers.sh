#!/usr/bin/env bash
# The boosted peers and XGBOD on the nine main sets (5 seeds), into the main table's records.
set -euo pipefail
PY=${PY:-python}
OUT=${OUT:-results/main}
$PY -m deepod_mnp.cli bench --data pendigits thyroid cardio pima annthyroid vehicle_insurance gamma bank backdoor \
  --models CatBoost,LightGBM,XGBoost --runs 5 --labeled-ratio 0.01 --n-jobs 1 --threads 1 --out "$OUT" --no-progress
# XGBOD's detector bank (11 one-class SVMs, LOF and KNN at 8 settings) is quadratic in N: the sets with n_train <= 12k
$PY -m deepod_mnp.cli bench --data pendigits thyroid cardio pima annthyroid vehicle_insurance gamma \
  --models XGBOD --runs 5 --labeled-ratio 0.01 --n-jobs 1 --threads 1 --out "$OUT" --no-progress
