#!/usr/bin/env bash
# The GPU checks of issues 12 and 13 in one bounded run, on a CUDA machine with PyTorch but no
# network: install the carried wheels (gymnasium, MuJoCo, SB3; see README "GPU"), run the test
# suite on the GPU, then the side-by-side throughput figures. Each part has its own time limit,
# and everything it prints is also written under $OUT (the device tool brings that folder back).
#
#   bash benchmarks/gpu.sh              # tests (≈3 min) + figures (≈5 min)
#   PARTS=bench bash benchmarks/gpu.sh  # only the figures; PARTS=tests only the tests
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/softac-gpu}
mkdir -p "$OUT"
PARTS=${PARTS:-tests bench}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "installing the carried wheels failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
unset MUJOCO_GL  # `egl` breaks `import mujoco` there
nvidia-smi -L
python3 -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, torch.cuda.get_device_name())"
if [[ " $PARTS " == *" tests "* ]]; then
  timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -q -n 8 --device cuda -p no:cacheprovider \
    --durations=15 ${TESTS:-tests} 2>&1 | tee "$OUT/tests.log" | tail -40
fi
if [[ " $PARTS " == *" bench "* ]]; then
  timeout "${BENCH_TIMEOUT:-420}" python3 benchmarks/gpu.py --json "$OUT/gpu.json" ${QUICK:+--quick} \
    ${ONLY:+--only "$ONLY"} 2>&1 \
    | grep -v "settotalmass" | tee "$OUT/bench.log"
fi
