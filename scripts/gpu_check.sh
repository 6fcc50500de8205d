#!/usr/bin/env bash
# CUDA check of deepod-mnp on a machine with a GPU: the test suite with CUDA
# visible, the speed script on the GPU, and MNP on three data sets (3 seeds).
# Usage: bash scripts/gpu_check.sh [OUT_DIR]   (default runs/gpu; about 6 minutes on one H200)
# Needs deepod-mnp, deepod (--no-deps), pytest and pytest-xdist importable by `python`.
set -u
out=${1:-runs/gpu}
py=${PYTHON:-python}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/env.txt"
"$py" -c "import torch, pyod, sklearn, numpy, os; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
'pyod', pyod.__version__, 'sklearn', sklearn.__version__, 'numpy', numpy.__version__, 'cpus', os.cpu_count())" \
    | tee -a "$out/env.txt"

echo "== 1. test suite with CUDA visible (MNP's device='auto' picks the GPU)"
DEEPOD_MNP_QUICK=1 "$py" -m pytest -q tests -n 6 -p no:cacheprovider > "$out/tests.txt" 2>&1
tail -3 "$out/tests.txt"

echo "== 2. speed on the GPU: fit vs DevNet, scoring rows/s, fit time vs N"
"$py" scripts/speed.py --device cuda --threads 4 --data pendigits bank --sizes 100000 1000000 \
    --repeats 3 --out "$out/speed_cuda.json"

echo "== 3. MNP on the GPU, 3 seeds (compare with the CPU rows of BENCHMARKS.md)"
"$py" -m deepod_mnp.cli bench --data pendigits cardio bank --models MNP --runs 3 --device cuda \
    --threads 4 --out "$out/bench" --no-progress
