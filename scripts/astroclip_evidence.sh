#!/usr/bin/env bash
# AstroCLIP evidence runs of issue 14 item 2, trained until their held-out figure plateaus
# (no 1 % gain over the last 20 % of the steps; scifm.core.plateau), each resumable: rerun
# the same command and it continues from OUT/checkpoint (a finished run stops at once). STEPS
# sets the LR schedule (a cosine over STEPS): a resume with another STEPS is refused, since it
# would move the LR mid-run; a longer budget is a fresh OUT.
#   spectrum: SpecFormer binned by 2 (evidence preset: 3890 bins, 193 tokens), batch 64,
#             held-out masked loss + k-NN R^2 every 400 steps (first 1000 held-out galaxies,
#             k-NN fitted on 4000 training ones) into OUT/eval.jsonl; budget 12000 steps.
#   align:    heads on the frozen 64 px image encoder (IMAGE, a pretrain-image run) and the
#             SpecFormer above, batch 128, recall@1/10/100 among the first 2000 held-out pairs
#             every 200 steps; stops on recall@10 (image -> spectrum); budget 6000 steps.
# The plateau can be decided from 15 evaluations on (3 in the last 20 %): step 6000 / 3000.
# CPU (one thread, measured on the shared 2-core machine): spectrum 1.1-1.5 s a step (~20-25
# min per 1000 steps) + ~50 s per evaluation; align 0.84 s a step (~14 min per 1000) + a few
# s per evaluation, after one pass of the frozen SpecFormer over the survey (~8.5 ms a spectrum).
#   nohup nice -n 10 scripts/astroclip_evidence.sh spectrum > runs/astroclip_spec_evidence.log 2>&1 &
#   IMAGE=runs/astroclip_img64_vicreg nohup nice -n 10 scripts/astroclip_evidence.sh align \
#       > runs/astroclip_clip_evidence.log 2>&1 &
# FINETUNE=N trains the image encoder's top N residual blocks with the heads (evidence preset:
# 3 blocks; 0.6 s a step with all 3 against 0.35 s frozen, one thread, batch 128):
#   IMAGE=runs/astroclip_img64_moco STEPS=3000 FINETUNE=3 OUT=runs/astroclip_clip_ft3 \
#       nohup nice -n 10 scripts/astroclip_evidence.sh align > runs/astroclip_clip_ft3.log 2>&1 &
# HEAD=seg32 reads the SpecFormer's tokens in 32 wavelength segments (--spectrum-head);
# EMBED_DIM=1024 is the MNRAS paper's embedding size (the presets: 128, the workshop's);
# BATCH=512 STEPS=750 is the same budget (steps x batch) as 3,000 x 128 with 4x the negatives;
# BATCH=512 STEPS=3000 FINETUNE=3 (4x the budget and the negatives) took ~1.8 s a step on two
# threads (OMP_NUM_THREADS=2), ~4 s on one beside other work.
# Environment: SURVEY (default data/survey_40k.h5; while it is still being generated also set
# N=<rows done> and HDF5_USE_FILE_LOCKING=FALSE), OUT, IMAGE, SPECTRUM, STEPS, BATCH, FINETUNE,
# HEAD, EMBED_DIM, PY, DEVICE.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
SURVEY="${SURVEY:-$ROOT/data/survey_40k.h5}"
SPECTRUM="${SPECTRUM:-$ROOT/runs/astroclip_spec_evidence}"
export PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}"  # this tree's library
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
common=(--survey "$SURVEY" --preset evidence --until-plateau --quiet ${N:+--n "$N"}
        ${DEVICE:+--device "$DEVICE"})
case "${1:-}" in
  spectrum)
    exec "$PY" -m scifm astroclip pretrain-spectrum "${common[@]}" --out "${OUT:-$SPECTRUM}" \
        --steps "${STEPS:-12000}" --batch-size 64 --eval-every 400 --eval-rows 1000 \
        --ckpt-every 400 ;;
  align)
    exec "$PY" -m scifm astroclip align "${common[@]}" \
        --out "${OUT:-$ROOT/runs/astroclip_clip_evidence}" \
        --image "${IMAGE:-$ROOT/runs/astroclip_img64_moco}" --spectrum "$SPECTRUM" \
        --steps "${STEPS:-6000}" --batch-size "${BATCH:-128}" --eval-every 200 --eval-rows 2000 \
        --ckpt-every 200 ${FINETUNE:+--image-finetune-blocks "$FINETUNE"} \
        ${HEAD:+--spectrum-head "$HEAD"} ${EMBED_DIM:+--embed-dim "$EMBED_DIM"} ;;
  *) echo "usage: $0 spectrum|align (see the header)" >&2; exit 2 ;;
esac
