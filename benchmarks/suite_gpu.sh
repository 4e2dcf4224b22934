#!/usr/bin/env bash
# One GPU slot: SAC, CrossQ, SimBa-SAC on Walker2d-v5, 5 seeds as learners per cell, 3 cells at once.
# Resumable: rerun the same command in the next slot. Usage: benchmarks/suite_gpu.sh [OUT] [SECONDS] [BUDGET]
set -u
OUT=${1:-suite-gpu}; LIMIT=${2:-280}; BUDGET=${3:-100000}
timeout --signal=TERM "$LIMIT" softac suite mujoco-100k --out "$OUT" --algos sac,crossq,sac-simba \
  --envs Walker2d-v5 --seeds 0-4 --budget "$BUDGET" --device cuda --jobs 3 --resume
rc=$?
tar czf "$OUT.tgz" "$OUT/results.csv" "$OUT/suite.json" "$OUT/cells" \
  $(find "$OUT/runs" -name progress.csv -o -name config.json 2>/dev/null) 2>/dev/null
echo "suite rc=$rc, archive $OUT.tgz"
exit $rc
