#!/usr/bin/env bash
# The one prepared GPU call of 2026-12-04 (issues 20, 21, 23), time-bounded part by part, printing as
# it goes; everything also lands in $OUT (≤ 5 files: log, results tar).
#   1. quiet timings of the `softac train` command itself: steady state = (N2 − N1) / (t(N2) − t(N1)),
#      SAC, TD3, SAC with 16 seeds, 3 alternating rounds, medians; SB3 SAC/TD3 on the same GPU.
#   2. concurrently (timings over): the learning comparison on Walker2d-v5 at 100k steps, softac SAC vs
#      CrossQ, 5 seeds each as learners in one process, presets as `softac train` applies them;
#      `--compile-update` from the CLI for every continuous algorithm (does it compile, or fall back?).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/softac-final}; mkdir -p "$OUT"; LOG="$OUT/final.log"
exec > >(tee -a "$LOG") 2>&1
DEV=${DEV:-cuda}; LEARN=${LEARN:-100000}; SEEDS=${SEEDS:-0-4}
if [ -z "${NO_WHEELS:-}" ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore; unset MUJOCO_GL
date -u; nvidia-smi -L 2>/dev/null; nproc
python3 -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
python3 -m compileall -q src /tmp/site >/dev/null 2>&1  # byte-compile once: imports are in every timed process
echo "== 1. timed, nothing else running: softac train CLI path vs in-process, SB3, 16 seeds (benchmarks/gpu.py)"
timeout -k 5 "${TIMED_TIMEOUT:-250}" python3 benchmarks/gpu.py --part timed --device "$DEV" ${QUICK:+--quick} \
  --deadline "$(( ${TIMED_TIMEOUT:-250} - 25 ))" --json "$OUT/timed.json" 2>&1 | grep --line-buffered -v settotalmass
echo "== 2. learning: Walker2d-v5, $LEARN steps, seeds $SEEDS, SAC vs CrossQ (concurrent) + compile checks"
date -u
L="--env Walker2d-v5 --device $DEV --seeds $SEEDS --total-steps $LEARN --eval-freq 10000 --eval-episodes 5 --checkpoint-freq 50000 --no-progress"
for algo in sac crossq; do
  timeout ${LEARN_TIMEOUT:-330} python3 -m softac_entry train --algo $algo $L --run-dir "$OUT/runs/walker-$algo" \
    > "/tmp/learn-$algo.log" 2>&1 &
  pids="${pids:-} $!"
done
timeout -k 5 "${COMPILE_TIMEOUT:-150}" python3 benchmarks/gpu.py --part compile --device "$DEV" ${QUICK:+--quick} \
  --timeout "$(( ${COMPILE_TIMEOUT:-150} - 10 ))" --algos "sac td3 ddpg crossq" --log-dir /tmp/softac-compile-logs \
  --json "$OUT/compile.json" > /tmp/compile-part.log 2>&1 &
pids="$pids $!"
wait $pids  # these jobs only: a bare wait would also wait for the log's tee
date -u
grep -v settotalmass /tmp/compile-part.log | tail -25
for algo in sac crossq; do echo "-- $algo"; grep -v settotalmass /tmp/learn-$algo.log | grep -v '^$' | tail -4; done
python3 - "$OUT/runs" <<'PY'
import csv, sys, pathlib, statistics as st
root = pathlib.Path(sys.argv[1])
for run in sorted(root.glob("walker-*")):
    finals = []
    for seed_dir in sorted(run.glob("seed_*")):
        rows = list(csv.DictReader(open(seed_dir / "progress.csv")))
        rows = [r for r in rows if r.get("eval_return_mean")]
        if rows:
            finals.append((seed_dir.name, int(rows[-1]["step"]), round(float(rows[-1]["eval_return_mean"]), 1)))
    vals = [f[2] for f in finals]
    print(run.name, finals, "mean", round(st.mean(vals), 1) if vals else None)
PY
(cd "$OUT" && find runs -name '*.csv' -o -name 'config.json' -o -name '*.png' -o -name 'runs.json' | tar czf runs.tgz -T - && rm -rf runs)
ls -la "$OUT"
