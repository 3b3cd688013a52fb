#!/usr/bin/env bash
# The p30k-noise5 model of issue 13 (stop 43), for one seed: the paper-loss run of record at
# step 20,000 (benchmarks/checkpoints/mpp_paper20k, or its replicas _s1, _s2) carried on with
# the long-span data and `stable_random` with the rms loss in three legs, each warm-started
# from the packaged (fp16, carded) end of the one before:
#
#   leg 1  steps 20,001-26,000 of a 26,000-step cosine, 1 % input noise      (p20k-rms26k)
#   leg 2  steps 26,001-30,000 of a 30,000-step cosine, 5 % input noise      (p26k-noise5)
#   leg 3  steps 30,001-34,000 of a 34,000-step cosine, 5 % input noise      (p30k-noise5)
#
# each evaluated with `mpp_evidence.py onestep|rollout --tag <name>` (seed in the cells).
# Resumable: a leg whose run folder has a checkpoint resumes it, a finished leg is skipped
# (its package exists). About 75 minutes a seed on one core of the shared 2-core machine.
#
#   SEED=1 nohup scripts/mpp_noise_chain.sh > runs/mpp_noise_chain_s1.log 2>&1 &
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
SEED="${SEED:-0}"
SUFFIX=$([[ "$SEED" == 0 ]] && echo "" || echo "_s$SEED")
START="benchmarks/checkpoints/mpp_paper20k$SUFFIX"
PKG="runs/pkg$SUFFIX"
LONG="${LONG:-data/mpp64/train_long}"
export PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[[ -d "$START/checkpoint" ]] || { echo "$START/checkpoint: no such run" >&2; exit 1; }
[[ -d "$LONG/swe" ]] || { echo "$LONG: no long-span data (N_TRAIN_LONG=30 scripts/mpp_data.sh)" >&2; exit 1; }

package() {  # run folder -> $PKG/name (fp16 weights and card), once
    local run="$1" name="$2"
    [[ -f "$PKG/$name/model.safetensors" ]] && return 0
    "$PY" -m scifm.mpp.assets package --ckpt "$run/checkpoint" --metrics "$run/metrics.jsonl" \
        --out "$PKG/$name" --train-command "SEED=$SEED scripts/mpp_noise_chain.sh ($name)"
}

leg() {  # warm start, total steps, recipe changes, run name, evaluation tag
    local from="$1" steps="$2" set="$3" name="$4" tag="$5"
    if [[ ! -f "$PKG/$name/model.safetensors" ]]; then
        WARM_START="$from" STEPS="$steps" RECIPE=stable_random RECIPE_SET="$set" SEED="$SEED" \
            LONG="$LONG" OUT="runs/mpp64_$name$SUFFIX" scripts/mpp_pretrain.sh
        package "runs/mpp64_$name$SUFFIX" "$name"
    fi
    "$PY" benchmarks/mpp_evidence.py onestep --ckpt "runs/mpp64_$name$SUFFIX/checkpoint" --tag "$tag"
    "$PY" benchmarks/mpp_evidence.py rollout --ckpt "runs/mpp64_$name$SUFFIX/checkpoint" --tag "$tag"
}

package "$START" paper20k
leg "$PKG/paper20k" 26000 "loss_norm=rms" p20k_rms26k p20k-rms26k
leg "$PKG/p20k_rms26k" 30000 "loss_norm=rms noise=0.05" p26k_noise5 p26k-noise5
leg "$PKG/p26k_noise5" 34000 "loss_norm=rms noise=0.05" p30k_noise5 p30k-noise5
