#!/usr/bin/env bash
# MPP evidence pretraining (issue 13): the AViT 'small' preset on 64^2 grids with 8x8
# patches (8 x 8 = 64 tokens a frame), pretrained WITHOUT compressible NS on the files of
# scripts/mpp_data.sh (train split: swe, diffreact, ins; 100 trajectories each), with the
# stability recipe (input noise 1% of field RMS, pushforward over 2 steps, per-field
# std-normalised loss). Resumable: rerun the same command and it continues from
# runs/mpp64_pretrain/checkpoint (checkpoints every 200 steps, learning curve in
# runs/mpp64_pretrain/metrics.jsonl).
#
#   nohup nice -n 10 scripts/mpp_pretrain.sh > runs/mpp64_pretrain.log 2>&1 &
#
# The run of record lost its trainer checkpoint with a machine at step 3200; it continues
# from the shipped weights (the card's step, learning curve and wall time carried over;
# Adam's moments restart; data order and random draws go on as if resumed), with the
# stability recipe's pushforward depth now drawn per batch (stable_random: 1 or 2 steps,
# as Brandstetter et al.'s code does; the fixed depth never trained on true windows), on
# an 8,000-step cosine so that it ends inside one working stretch (~1.2 steps a second on
# one core of the shared AMD machine; its LR from step 3200 on is the 8,000-step cosine's):
#
#   WARM_START=assets/mpp/avit_small_64 STEPS=8000 RECIPE=stable_random \
#       nohup nice -n 10 scripts/mpp_pretrain.sh > runs/mpp64_pretrain.log 2>&1 &
#
# The long-span ablation (issue 13 item 2): SWE diverged past rollout step ~20, i.e. past
# t = 1, the end of the PDEBench span every training file covers, while the 50-step test
# runs to t = 2.65. The same continuation as the sr14k control (the step-8,000 model on a
# 14,000-step cosine, stable_random) with 30 more trajectories a system over the long span
# (N_TRAIN_LONG=30 scripts/mpp_data.sh; same frame spacing, own seed) mixed into each
# system's data set:
#
#   WARM_START=assets/mpp/avit_small_64 STEPS=14000 RECIPE=stable_random \
#       LONG=data/mpp64/train_long OUT=runs/mpp64_long \
#       nohup nice -n 10 scripts/mpp_pretrain.sh > runs/mpp64_long.log 2>&1 &
#
# Environment (defaults: the first run above): WARM_START, STEPS (20000), RECIPE (a
# TrainRecipe preset: stable, paper, unrolled), RECIPE_SET (fields changed from the preset,
# e.g. "loss_norm=rms noise=0"), STOP_AT (end this call after that step; the
# LR schedule still spans all STEPS, so the run can be resumed past it), SEED (a replica: the
# initialisation, the batch order and the recipe's noise draws all seeded by it; 0, the
# default, is the run of record), OUT, DATA, LONG (a second folder of training files per
# system, added to DATA's), EXTRA (more NAME=PATH training folders, space-separated, e.g.
# "swe=data/mpp64/train_long_swe/swe"), PY, DEVICE. The no-recipe ablation (issue 13
# item 2: the paper's one-step NMSE, everything else identical, one seed), cut at the step of
# the main run's evaluated checkpoint:
#
#   RECIPE=paper STOP_AT=3200 OUT=runs/mpp64_pretrain_paper \
#       nohup nice -n 10 scripts/mpp_pretrain.sh > runs/mpp64_pretrain_paper.log 2>&1 &
#
# and its replicas for item 1's seeds (evaluated with `mpp_evidence.py onestep --tag paper`):
#
#   RECIPE=paper STOP_AT=3200 SEED=1 OUT=runs/mpp64_pretrain_paper_s1 \
#       nohup nice -n 10 scripts/mpp_pretrain.sh > runs/mpp64_pretrain_paper_s1.log 2>&1 &
#
# Continuing a finished run on a longer schedule (stop 43: rms20k, a continuation of the
# shipped model to step 20,000, carried to 30,000 as rms30k): a warm start needs a
# model card, so package the run first (fp16 weights and card, outside assets/), then warm
# start from it; the LR jumps to the longer cosine's value at the card's step and anneals again:
#
#   python -m scifm.mpp.assets package --ckpt runs/mpp64_rms20k/checkpoint \
#       --metrics runs/mpp64_rms20k/metrics.jsonl --out runs/pkg/rms20k --train-command "..."
#   WARM_START=runs/pkg/rms20k STEPS=30000 RECIPE=stable_random RECIPE_SET="loss_norm=rms" \
#       LONG=data/mpp64/train_long OUT=runs/mpp64_rms30k \
#       nohup scripts/mpp_pretrain.sh > runs/mpp64_rms30k.log 2>&1 &
#
# More long-span SWE (stop 44): every pretrained model's SWE rollout grows past step ~25 (the
# predicted wave amplitude rises while the solver's decays), where only the 30 long-span
# trajectories cover the dynamics. 100 more SWE trajectories over the long span (seed 1501,
# 40 s of one core), then p30k-noise5 (scripts/mpp_noise_chain.sh) carried 4,000 steps with
# them, beside a control without them:
#
#   python -m scifm pde generate --system swe --n 100 --res 64 --frames 54 --t-end 2.65 \
#       --seed 1501 --chunk 8 --device cpu --no-progress --out data/mpp64/train_long_swe/swe
#   WARM_START=runs/pkg/p30k_noise5 STEPS=38000 RECIPE=stable_random \
#       RECIPE_SET="loss_norm=rms noise=0.05" LONG=data/mpp64/train_long \
#       EXTRA="swe=data/mpp64/train_long_swe/swe" OUT=runs/mpp64_p34k_swelong \
#       nohup scripts/mpp_pretrain.sh > runs/mpp64_p34k_swelong.log 2>&1 &
#   (control: the same without EXTRA, OUT=runs/mpp64_p34k_noise5)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
DATA="${DATA:-$ROOT/data/mpp64/train}"
OUT="${OUT:-$ROOT/runs/mpp64_pretrain}"
RECIPE="${RECIPE:-stable}"
SEED="${SEED:-0}"
FILES=("swe=$DATA/swe" "diffreact=$DATA/diffreact" "ins=$DATA/ins")
if [[ -n "${LONG:-}" ]]; then
    FILES+=("swe=$LONG/swe" "diffreact=$LONG/diffreact" "ins=$LONG/ins")
fi
if [[ -n "${EXTRA:-}" ]]; then  # more NAME=PATH training folders, space-separated
    read -r -a more <<<"$EXTRA"
    FILES+=("${more[@]}")
fi
export PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}"  # this tree's library, not an install's
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$PY" -m scifm mpp pretrain --model small --data no_cns \
    --train small --train-set steps=${STEPS:-20000} warmup_steps=500 log_every=50 ckpt_every=200 \
    ${STOP_AT:+stop_at=$STOP_AT} seed=$SEED --data-set res=64 seed=$SEED \
    --recipe "$RECIPE" --recipe-set seed=$SEED ${RECIPE_SET:-} --batch-size 8 \
    --files "${FILES[@]}" \
    --out "$OUT" --device "${DEVICE:-cpu}" ${WARM_START:+--warm-start "$WARM_START"}
