#!/usr/bin/env bash
# The cpu-full reference run of the FCN study (reports/reference/), seed by seed, two 1-thread
# jobs at a time: every (depth, N, seed) trains its runs (all weight decays) and is resumable;
# when all are done, Snakemake writes each configuration's summary (reusing every run), sweeps
# and builds the report. Stop it any time: rerunning continues where it stopped.
#   make reference   (this script, then snakemake --config scale=cpu-full, then publish)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=results/cpu-full/lorita_fcn
mkdir -p logs/cpu-full/reference
jobs=()
# The convergence check the cpu-full `converged_by` statement cites: FCN-6 N=1 at twice the
# schedule (12 epochs), beside the reference's 6-epoch seed-0 run.
if [ ! -s benchmarks/results/fcn_convergence.csv ]; then
  jobs+=("$PY benchmarks/fcn_convergence.py --threads 1 --depths 6 --factors 1 --weight-decays 1e-4 --settings onecycle:256:1e-3:12 --out benchmarks/results/fcn_convergence.csv")
fi
SEEDS=$($PY -c 'from lowrank.config import load_params, scale_block
print(*scale_block(load_params("params.yaml", {"scale": "cpu-full"}))["lorita_fcn"]["seeds"])')
for seed in $SEEDS; do  # seeds outermost: a partial run has whole seeds of every model
  for cell in "10 3" "10 2" "8 3" "8 2" "6 3" "10 1" "6 2" "8 1" "6 1"; do  # longest first
    set -- $cell
    jobs+=("$PY -m lowrank.cli train --scale cpu-full --depth $1 --factors $2 --seed $seed --out $OUT/fcn$1_N$2")
  done
done
printf '%s\n' "${jobs[@]}" | xargs -P 2 -I{} bash -c '{} >> logs/cpu-full/reference/train.log 2>&1'
echo "all runs trained: now snakemake --cores 2 --config scale=cpu-full; python benchmarks/publish_reference.py"
