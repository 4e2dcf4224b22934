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
DEV=${DEV:-cuda}; ROUNDS=${ROUNDS:-3}; N1=${N1:-2000}; N2=${N2:-7000}; LEARN=${LEARN:-100000}; SEEDS=${SEEDS:-0-4}
if [ -d .whl ]; then
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
T="--env HalfCheetah-v5 --device $DEV --preset none --learning-starts 1000 --eval-freq 100000000 --eval-episodes 1 --checkpoint-freq 0 --no-progress --overwrite"
wall() {  # wall seconds of one `softac train` process
  local t0 t1; t0=$(date +%s.%N)
  timeout 200 python3 -m softac_entry train "$@" > /tmp/last.log 2>&1 || { echo "FAILED: $*"; tail -3 /tmp/last.log; echo nan; return; }
  t1=$(date +%s.%N); python3 -c "print(round($t1-$t0,3))"
}
echo "== 1. steady state of the softac train command (N1=$N1, N2=$N2 steps, $ROUNDS rounds)"
declare -A rates
for r in $(seq 1 "$ROUNDS"); do
  for case in sac td3 sac16; do
    case $case in
      sac) args="--algo sac"; per=1;; td3) args="--algo td3"; per=1;; sac16) args="--algo sac --seeds 0-15"; per=16;;
    esac
    a=$(wall $args $T --total-steps $N1 --run-dir /tmp/t1 | tail -1); b=$(wall $args $T --total-steps $N2 --run-dir /tmp/t2 | tail -1)
    rate=$(python3 -c "a,b=float('$a'),float('$b'); print(round(($N2-$N1)/(b-a),1) if b>a else 'nan')")
    echo "round $r $case: t($N1)=$a s, t($N2)=$b s -> $rate steps/s per learner (x$per learners)"
    rates[$case]="${rates[$case]:-} $rate"
  done
done
for case in sac td3 sac16; do
  python3 -c "import statistics as s; v=[float(x) for x in '${rates[$case]}'.split() if x!='nan']; print('MEDIAN $case', round(s.median(v),1) if v else 'nan', v)"
done
echo "== 1b. the in-process benchmark figure and SB3 on the same GPU (softac bench's measure, one round)"
timeout 240 python3 benchmarks/gpu.py --quick --timeout 100 --json "$OUT/inprocess.json" \
  --only "SAC softac GPU (CUDA graphs),TD3 softac GPU (CUDA graphs),SAC SB3 GPU,TD3 SB3 GPU" 2>&1 | grep -v settotalmass
echo "== 2. learning: Walker2d-v5, $LEARN steps, seeds $SEEDS, SAC vs CrossQ (concurrent) + compile checks"
date -u
L="--env Walker2d-v5 --device $DEV --seeds $SEEDS --total-steps $LEARN --eval-freq 10000 --eval-episodes 5 --checkpoint-freq 50000 --no-progress"
for algo in sac crossq; do
  timeout ${LEARN_TIMEOUT:-330} python3 -m softac_entry train --algo $algo $L --run-dir "$OUT/runs/walker-$algo" \
    > "/tmp/learn-$algo.log" 2>&1 &
done
for algo in sac td3 ddpg crossq; do
  (timeout 200 python3 -m softac_entry train --algo $algo $T --total-steps 1600 --compile-update --run-dir /tmp/c-$algo \
     > /tmp/compile-$algo.log 2>&1; echo "compile-update $algo: rc=$? $(grep -c 'could not compile' /tmp/compile-$algo.log) fallback line(s)"; grep -m1 "could not compile" /tmp/compile-$algo.log) &
done
wait
date -u
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
