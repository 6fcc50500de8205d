#!/usr/bin/env bash
# The development pool under the protocol (paper split, 1 % labeled, seeds 42-44, one thread).
# Usage: scripts/pool_bench.sh PHASE...   (phases below; each is resumable: finished jobs are skipped)
# Runs from the repository root with the data root ../shared/data (or $DEEPOD_MNP_DATA).
set -euo pipefail
PY=${PY:-python}
NJOBS=${NJOBS:-1}
OUT=${OUT:-results/pool}
# the 24 pool sets, fewest rows first; the five last have 200k+ rows
SMALL="15_Hepatitis 45_wine 21_Lymphography 46_WPBC 14_glass 42_WBC 39_vertebral 37_Stamps 18_Ionosphere
43_WDBC 4_breastw 40_vowels 20_letter 17_InternetAds 25_musk 41_Waveform 24_mnist 1_ALOI 34_smtp"
LARGE="8_celeba 33_skin 10_cover 16_http 11_donors"
# XGBOD fits 11 one-class SVMs and LOF/KNN at 8 settings each: quadratic in N, run where n_train <= 12k
XGBOD_SETS="15_Hepatitis 45_wine 21_Lymphography 46_WPBC 14_glass 42_WBC 39_vertebral 37_Stamps 18_Ionosphere
43_WDBC 4_breastw 40_vowels 20_letter 17_InternetAds 25_musk 41_Waveform 24_mnist"
paths() { for s in $1; do printf 'adbench_pool/%s.npz ' "$s"; done; }
bench() {  # bench SETS MODELS [OUT [EXTRA ARGS...]]
  local sets=$1 models=$2 out=${3:-$OUT}
  shift $(( $# < 3 ? $# : 3 ))
  ${BENCH:-$PY -m deepod_mnp.cli} bench --data $(paths "$sets") --models "$models" --runs "${RUNS:-3}" --labeled-ratio 0.01 \
    --n-jobs "$NJOBS" --threads 1 --out "$out" --no-progress "$@"
}
for phase in "$@"; do
  case $phase in
    small)  bench "$SMALL" CatBoost,LightGBM,XGBoost,IForest ;;
    mnp)    bench "$SMALL $LARGE" MNP ;;  # (MNP's records were made by this phase before the scaler existed;
                                          # the default scaler='minmax' reproduces them bit for bit)
    large)  bench "$LARGE" CatBoost,LightGBM,XGBoost,IForest ;;
    devnet_large) bench "$LARGE" DevNet ;;
    deepsad_large) RUNS=${RUNS:-1} bench "$LARGE" DeepSAD ;;  # one seed each: a fit takes minutes
    # DevNet's default (100 epochs of full passes) on the 200k+ row sets: one epoch, one seed, to time it
    devnet_epoch) RUNS=1 bench "$LARGE" DevNet results/pool_devnet_1epoch --params '{"DevNet": {"epochs": 1}}' ;;
    feawad) bench "$SMALL" FeaWAD ;;
    feawad_large) bench "$LARGE" FeaWAD ;;
    rosas)  bench "$SMALL" RoSAS ;;
    xgbod)  bench "$XGBOD_SETS" XGBOD ;;
    devnet) bench "$SMALL" DevNet ;;
    deep)   bench "$SMALL" FeaWAD,DeepSAD,RoSAS ;;
    deepsad) bench "$SMALL" DeepSAD ;;
    prenet) bench "$SMALL" PReNet ;;
    # the score head's options (BENCHMARKS.md, "The score head"): head_features='auto' differs from the
    # defaults only where at least 5 anomalies are labeled (these seven pool sets); recon_norm everywhere.
    # head_features left the package: scripts/removed_options.py runs bench with it, in one process
    mnp_head_auto) NJOBS=1 BENCH="$PY scripts/removed_options.py" \
                     bench "24_mnist 33_skin 16_http 1_ALOI 10_cover 8_celeba 11_donors" MNP \
                     results/mnp_head_auto/pool --params '{"MNP": {"head_features": "auto"}}' ;;
    mnp_log_auto) NJOBS=1 BENCH="$PY scripts/removed_options.py" bench "$SMALL $LARGE" MNP \
                    results/mnp_log_auto/pool --params '{"MNP": {"recon_norm": "log", "head_features": "auto"}}' ;;
    *) echo "unknown phase $phase" >&2; exit 2 ;;
  esac
done
