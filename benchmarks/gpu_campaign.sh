#!/usr/bin/env bash
# One GPU call for the 100k table (issues 20 and 21): `softac suite mujoco-100k` with SAC and CrossQ on
# Walker2d-v5 and Humanoid-v5, 5 seeds per cell as learners in one process, the 4 cells at once
# (--jobs 4: 4 threads each of the 16 cores), presets as `softac train` applies them, TF32 matmuls
# for every cell alike (--tf32; JAX's default GPU precision, which the published CrossQ/SimBa runs used).
# The call is bounded: at $DEADLINE s every process of the suite gets SIGTERM, each `softac train`
# checkpoints and stops, and the curves so far come back (cells then report the step they reached).
# Printed as it runs; $OUT gets the log and one tar of every cell's progress.csv/config.json/runs.json.
# CPU check of the logic: NO_WHEELS=1 DEV=cpu BUDGET=1500 SEEDS=0-1 DEADLINE=60 ALGOS=sac ENVS=Walker2d-v5 \
#   EXTRA="--learning-starts 1000 --eval-freq 500" bash benchmarks/gpu_campaign.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/softac-campaign}; mkdir -p "$OUT"; LOG="$OUT/campaign.log"
exec > >(tee -a "$LOG") 2>&1
DEV=${DEV:-cuda}; BUDGET=${BUDGET:-100000}; SEEDS=${SEEDS:-0-4}; DEADLINE=${DEADLINE:-540}
ALGOS=${ALGOS:-sac,crossq}; ENVS=${ENVS:-Walker2d-v5,Humanoid-v5}; JOBS=${JOBS:-4}
EXTRA=${EXTRA:-"--eval-freq 10000 --eval-episodes 5 --checkpoint-freq 25000"}
if [ -z "${NO_WHEELS:-}" ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD/src
  PYBIN=python3
else
  export PYTHONPATH=$PWD/src
  PYBIN=${PYBIN:-python3}
fi
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore; unset MUJOCO_GL
date -u; nvidia-smi -L 2>/dev/null; nproc
$PYBIN -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
$PYBIN -m compileall -q src >/dev/null 2>&1
SUITE="$OUT/suite"
TF32=""; [ "$DEV" = cuda ] && TF32="--tf32"
echo "== suite mujoco-100k: algos $ALGOS, envs $ENVS, seeds $SEEDS, budget $BUDGET, deadline ${DEADLINE}s"
setsid $PYBIN -m softac.cli suite mujoco-100k --out "$SUITE" --algos "$ALGOS" --envs "$ENVS" --seeds "$SEEDS" \
  --budget "$BUDGET" --device "$DEV" --jobs "$JOBS" -- $TF32 $EXTRA &
SPID=$!
T0=$(date +%s)
# Progress while it runs: each cell's newest evaluation row, every 30 s.
while kill -0 $SPID 2>/dev/null; do
  sleep 10
  NOW=$(( $(date +%s) - T0 ))
  if [ $NOW -ge "$DEADLINE" ]; then
    echo "== deadline: SIGTERM to the suite's process group at ${NOW}s"; kill -TERM -- -$SPID 2>/dev/null
    for _ in $(seq 60); do kill -0 $SPID 2>/dev/null || break; sleep 1; done
    kill -KILL -- -$SPID 2>/dev/null; break
  fi
  if [ $(( NOW % 30 )) -lt 10 ]; then
    for p in "$SUITE"/runs/*/seed_*/progress.csv "$SUITE"/runs/*/progress.csv; do
      [ -f "$p" ] && echo "t=${NOW}s $p: $(tail -1 "$p" | cut -d, -f1-4)"
    done 2>/dev/null | grep seed_0 || true
  fi
done
wait $SPID 2>/dev/null; echo "suite exit: $?"; date -u
for f in "$SUITE"/logs/*.log; do [ -f "$f" ] && { echo "-- $f"; grep -v settotalmass "$f" | grep -v '^$' | tail -3; }; done
# Every cell's rows so far (finished or stopped at the deadline), as the suite's results.csv would hold them.
$PYBIN - "$SUITE" "$SEEDS" <<'PY'
import sys, pathlib, statistics as st
from softac.suite.results import cell_rows, FIELDS
from softac.suite.spec import Cell
from softac.cli.args import seeds_arg
from softac.analysis.stats import write_csv_atomic
out = pathlib.Path(sys.argv[1]); seeds = list(seeds_arg(sys.argv[2]))
rows = []
for run in sorted((out / "runs").glob("*__*")):
    variant, env = run.name.split("__", 1)
    r = cell_rows(out, Cell(variant, env), seeds); rows += r
    last = {}
    for x in r: last[x["seed"]] = x
    vals = [x["return"] for x in last.values()]
    print(run.name, "steps", sorted({x["step"] for x in last.values()}), "final mean",
          round(st.mean(vals), 1) if vals else None, [round(v, 1) for v in vals])
write_csv_atomic(out / "results-all.csv", FIELDS, rows)
PY
(cd "$SUITE" && find . -name '*.csv' -o -name 'config.json' -o -name 'runs.json' -o -name '*.log' -o -name 'suite.json' \
  -o -path './cells/*' | tar czf "$OUT/suite.tgz" -T -)
ls -la "$OUT"
