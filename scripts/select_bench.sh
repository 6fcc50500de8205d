#!/usr/bin/env bash
# SelectByLabels under the protocol (1 % labeled, one thread per job), into the published tables' records:
#   scripts/select_bench.sh main      # the nine main sets, seeds 42-46   -> results/main
#   scripts/select_bench.sh pool      # the 24 pool sets, seeds 42-44     -> results/pool
#   scripts/select_bench.sh fit_time  # seed 42 on all 33 sets, the selector and its three candidates
#                                     # (MNP with recon_norm='log', CatBoost, IForest) in one run
#                                     -> results/select_fit_time
# Each phase is resumable (finished jobs are skipped). Data root: ../shared/data or $DEEPOD_MNP_DATA.
set -euo pipefail
PY=${PY:-python}
NJOBS=${NJOBS:-2}
MAIN="pendigits thyroid cardio pima annthyroid vehicle_insurance gamma bank backdoor"
POOL=""
for s in 15_Hepatitis 45_wine 21_Lymphography 46_WPBC 14_glass 42_WBC 39_vertebral 37_Stamps 18_Ionosphere \
         43_WDBC 4_breastw 40_vowels 20_letter 17_InternetAds 25_musk 41_Waveform 24_mnist 1_ALOI 34_smtp \
         8_celeba 33_skin 10_cover 16_http 11_donors; do POOL="$POOL adbench_pool/$s.npz"; done
bench() {  # bench DATA MODELS RUNS OUT [EXTRA ARGS...]
  local data=$1 models=$2 runs=$3 out=$4
  shift 4
  $PY -m deepod_mnp.cli bench --data $data --models "$models" --runs "$runs" --labeled-ratio 0.01 \
    --n-jobs "$NJOBS" --threads 1 --out "$out" --no-progress "$@"
}
for phase in "$@"; do
  case $phase in
    main) bench "$MAIN" SelectByLabels 5 results/main ;;
    pool) bench "$POOL" SelectByLabels 3 results/pool ;;
    fit_time) bench "$MAIN $POOL" SelectByLabels,CatBoost,MNP,IForest 1 results/select_fit_time \
                --params '{"MNP": {"recon_norm": "log"}}' ;;
    *) echo "unknown phase $phase" >&2; exit 2 ;;
  esac
done
