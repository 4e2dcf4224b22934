#!/usr/bin/env bash
# The GPU checks of issue 23 in one bounded call (≈ 8 min on an H200), on a CUDA machine with
# PyTorch but no network: install the carried wheels (.whl: gymnasium, farama-notifications,
# mujoco, mujoco-core, glfw, pyopengl, stable-baselines3; see docs/speed.md), then
#   timed    (a) SAC/TD3 through `softac train` (two budgets, the difference) beside the in-process
#            figure, 3 alternating rounds, medians; SB3 SAC/TD3 on the same GPU; (b) 16 seeds of SAC
#            in one process, then the 1/4/64-seed curve while time allows     (≤ TIMED_TIMEOUT, 360 s)
#   envs     16 HalfCheetah-v5 envs stepped in a loop vs a thread pool of 4 and 16  (≤ 2 × ENVS_TIMEOUT, 30 s)
#   compile  (c) `softac train --compile-update` on CUDA for SAC, TD3, DDPG in three forms, all at
#            once, untimed, tracebacks kept                                  (≤ COMPILE_TIMEOUT, 100 s)
#   tests    the test suite on the GPU (not in the default PARTS)            (≤ TEST_TIMEOUT, 300 s)
#   suite    the learning campaign: $SUITE_CMD, run last                      (≤ SUITE_TIMEOUT, 0 = skip)
# Everything printed is also in $OUT/gpu.log; $OUT also gets timed.json, compile.json and
# compile-logs.tar.gz (and tests.log / suite.log when those parts run): at most 5 files.
#
#   bash benchmarks/gpu.sh                       # timed + compile
#   QUICK=1 DEVICE=cpu NO_WHEELS=1 PY=.venv/bin/python COMPILE_ALGOS=sac bash benchmarks/gpu.sh  # logic test on a CPU
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/softac-gpu}
mkdir -p "$OUT"
PARTS=${PARTS:-timed envs compile suite}
DEVICE=${DEVICE:-cuda}
exec > >(tee -a "$OUT/gpu.log") 2>&1
if [[ -z "${NO_WHEELS:-}" ]] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
unset MUJOCO_GL  # `egl` breaks `import mujoco` there
PY=${PY:-python3}
date -u; nproc; cat /proc/loadavg
command -v nvidia-smi >/dev/null && nvidia-smi -L
$PY -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, torch.cuda.is_available())" || exit 1
has() { [[ " $PARTS " == *" $1 "* ]]; }
if has timed; then
  echo "== timed (a, b)"
  timeout -k 5 "${TIMED_TIMEOUT:-360}" $PY benchmarks/gpu.py --part timed --device "$DEVICE" ${QUICK:+--quick} \
    --deadline "$(( ${TIMED_TIMEOUT:-360} - 20 ))" --json "$OUT/timed.json" 2>&1 | grep --line-buffered -v "settotalmass"
fi
if has envs; then  # (b, host side) 16 HalfCheetah envs: a loop vs a thread pool, CPU only
  echo "== envs"
  for w in 4 16; do
    timeout -k 5 "${ENVS_TIMEOUT:-30}" $PY benchmarks/env_threads.py --envs 16 --workers $w ${QUICK:+--steps 50} 2>&1 \
      | grep --line-buffered -v -e "settotalmass" -e "^$"
  done
fi
if has compile; then
  echo "== compile (c)"
  timeout -k 5 "${COMPILE_TIMEOUT:-100}" $PY benchmarks/gpu.py --part compile --device "$DEVICE" ${QUICK:+--quick} \
    --timeout "$(( ${COMPILE_TIMEOUT:-100} - 10 ))" --algos "${COMPILE_ALGOS:-sac td3 ddpg}" --log-dir /tmp/softac-compile-logs --json "$OUT/compile.json"
  tar -czf "$OUT/compile-logs.tar.gz" -C /tmp softac-compile-logs 2>/dev/null
fi
if has tests; then
  echo "== tests"
  timeout "${TEST_TIMEOUT:-300}" $PY -m pytest -q -n 8 --device "$DEVICE" -p no:cacheprovider \
    --durations=15 ${TESTS:-tests} > "$OUT/tests.log" 2>&1; tail -40 "$OUT/tests.log"
fi
if has suite && [[ -n "${SUITE_CMD:-}" && "${SUITE_TIMEOUT:-0}" -gt 0 ]]; then
  echo "== suite: $SUITE_CMD"
  timeout -k 5 "$SUITE_TIMEOUT" bash -c "$SUITE_CMD" > "$OUT/suite.log" 2>&1; echo "suite exit $?"; tail -40 "$OUT/suite.log"
fi
echo "== done $(date -u)"
