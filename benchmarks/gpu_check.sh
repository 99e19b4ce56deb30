#!/usr/bin/env bash
# One prepared GPU session, about 8 minutes on an H100/H200: the CUDA tests (no database needed), then the
# batched benchmark (throughput, one core layer four ways, lab scale with every acceleration incl. the fused
# ensemble, and a kernel profile of the fastest options). Needs only python3 with torch, pytest, tqdm and
# matplotlib; this package runs from the checkout. Usage: [PYTHON=python3] [AUTOTUNE=1] bash benchmarks/gpu_check.sh [output folder]
# (default folder: gpu_check_output; AUTOTUNE=1 adds torch.compile max-autotune, several minutes more).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu_check_output}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MPLBACKEND=Agg
"$py" - <<'PY' 2>&1 | tee "$out/gpu.txt"
import torch
print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU")
PY
"$py" -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py tests/batched/test_cuda.py tests/video/test_gpu.py \
    tests/meitorch/test_gpu.py 2>&1 | tee "$out/gpu_tests.log"
tests=${PIPESTATUS[0]}
# the options not measured yet first, torch.compile (a minute of compilation) last: a run cut short keeps the news
"$py" benchmarks/batched.py --device cuda --profile fast_fuse \
    --options fast_dense,fast_fuse,fuse,fast,autocast,channels_last,compile 2>&1 | tee "$out/batched_cuda.log"
bench=${PIPESTATUS[0]}
if [ "${AUTOTUNE:-0}" = 1 ]; then  # Inductor's max-autotune: minutes of compilation, so only when asked
    "$py" benchmarks/batched.py --device cuda --ks 64 --sequential 2 --fusion-k 0 --lab-ks 1024 \
        --options fast_autotune --no-write 2>&1 | tee "$out/batched_autotune.log"
fi
cp docs/benchmarks.md "$out/benchmarks.md"
echo "tests exit $tests, benchmark exit $bench"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
