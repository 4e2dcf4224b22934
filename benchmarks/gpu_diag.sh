#!/usr/bin/env bash
# Diagnostic GPU call (issue 23): why the `softac train` path is slower than the benchmark on CUDA,
# and the full traceback of `--compile-update` failing from the CLI. Prints as it goes; ≈3 min.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/softac-diag}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "installing the carried wheels failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
unset MUJOCO_GL
DEV=${DEV:-cuda}
nvidia-smi -L 2>/dev/null; nproc
python3 -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, torch.cuda.is_available())"
common="--algo sac --env HalfCheetah-v5 --device $DEV --preset none --learning-starts 1000 --eval-freq 10000000 --checkpoint-freq 0 --no-progress --overwrite"
for n in ${BUDGETS:-2000 10000}; do
  t0=$(date +%s.%N)
  timeout 120 python3 -m softac_entry train $common --total-steps $n --run-dir /tmp/diag-$n > "$OUT/train-$n.log" 2>&1
  rc=$?; t1=$(date +%s.%N)
  echo "train sac $n steps: rc=$rc wall=$(python3 -c "print(round($t1-$t0,2))") s"; tail -3 "$OUT/train-$n.log"
done
# The CLI path under cProfile: where the host time goes.
timeout 150 python3 - "$DEV" ${PROF_STEPS:-6000} <<'PY' 2>&1 | tee "$OUT/profile.txt"
import cProfile, pstats, sys, io
dev, n = sys.argv[1], sys.argv[2]
from softac.cli import main
args = ["train", "--algo", "sac", "--env", "HalfCheetah-v5", "--device", dev, "--preset", "none",
        "--learning-starts", "1000", "--eval-freq", "10000000", "--checkpoint-freq", "0", "--no-progress",
        "--overwrite", "--total-steps", n, "--run-dir", "/tmp/diag-prof"]
pr = cProfile.Profile(); pr.enable(); rc = main(args); pr.disable()
print("rc", rc)
for key in ("tottime", "cumulative"):
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats(key).print_stats(35); print(s.getvalue()[:9000])
PY
# --compile-update from the CLI: the whole traceback of what the runner catches.
timeout 180 python3 - "$DEV" <<'PY' 2>&1 | tail -60 | tee "$OUT/compile.txt"
import sys, traceback
import softac.accel.runner as r
orig = r.warn
def warn(msg: str) -> None:
    orig(msg); traceback.print_exc()
r.warn = warn
from softac.cli import main
rc = main(["train", "--algo", "sac", "--env", "HalfCheetah-v5", "--device", sys.argv[1], "--preset", "none",
           "--learning-starts", "1000", "--eval-freq", "10000000", "--checkpoint-freq", "0", "--no-progress",
           "--overwrite", "--total-steps", "1300", "--compile-update", "--run-dir", "/tmp/diag-compile"])
print("rc", rc)
PY
