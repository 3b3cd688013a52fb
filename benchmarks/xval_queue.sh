#!/usr/bin/env bash
# The issue-15 xVal study as a queue for worker K of 2 (both resumable: rerun the same line).
#   nohup nice -n 10 benchmarks/xval_queue.sh ROOT K > ROOT/worker_K.log 2>&1 &
# Runs from the code snapshot in ROOT/code (git archive of the commit that launched it).
# The [NUM]-bias ablation ran apart: benchmarks/xval.py deadzone --steps 600.
set -euo pipefail
root=$1; k=$2
py=${PY:-python}
export OMP_NUM_THREADS=1 PYTHONPATH="$root/code/lib:$root/code"
b="$root/code/benchmarks/xval.py"
run() { "$py" "$b" run --root "$root" --shard "$k/2" "$@"; }
if [ "$k" = 1 ] && [ ! -e "$root/code/benchmarks/results/xval_memory.json" ]; then
  (cd "$root/code" && "$py" benchmarks/xval_memory.py)         # measured memory (~10 min)
fi
run --tasks ood multiplication --seeds 0                      # 1 seed x 5 encodings, masked
run --tasks diabetes --seeds 0                                # real data
run --tasks ood multiplication --modes ar --seeds 0           # causal mode
run --tasks ood multiplication --seeds 1 2                    # headline seeds
run --tasks diabetes --seeds 1 2
run --tasks compound --seeds 0 1 2
run --tasks orbits --seeds 0 1 2
