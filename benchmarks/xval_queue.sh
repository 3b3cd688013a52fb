#!/usr/bin/env bash
# The issue-15 xVal study as a queue; any number of workers share it (a cell is locked by
# the process on it, finished cells are skipped, unfinished ones resume from their checkpoint):
#   nohup nice -n 10 benchmarks/xval_queue.sh ROOT K > ROOT/worker_K.log 2>&1 &
# K only orders the stages: worker 1 measures memory first, worker 2 starts with the causal mode.
# Runs from the code snapshot in $CODE (default ROOT/code; a git archive of the launching commit).
# The [NUM]-bias ablation ran apart: benchmarks/xval.py deadzone --steps 600.
set -euo pipefail
root=$1; k=$2
py=${PY:-python}
code=${CODE:-$root/code}  # the code snapshot
export OMP_NUM_THREADS=1 PYTHONPATH="$code/lib:$code"
b="$code/benchmarks/xval.py"
run() { "$py" "$b" run --root "$root" "$@"; }
if [ "$k" = 1 ] && [ ! -e "$code/benchmarks/results/xval_memory.json" ]; then
  (cd "$code" && "$py" benchmarks/xval_memory.py)         # measured memory (~10 min)
fi
if [ "$k" = 2 ]; then
  run --tasks ood multiplication --modes ar --seeds 0         # causal mode first
fi
run --tasks ood multiplication --seeds 0                      # 1 seed x 5 encodings, masked
run --tasks diabetes --seeds 0                                # real data
run --tasks ood multiplication --modes ar --seeds 0           # causal mode
run --tasks ood multiplication --seeds 1 2                    # headline seeds
run --tasks diabetes --seeds 1 2
run --tasks compound --seeds 0 1 2
run --tasks orbits --seeds 0 1 2
