#!/usr/bin/env bash
# Issue 14, items 3 and 5: the zero-shot k-NN against the size of its reference set
# (benchmarks/astroclip_reference.py, results in benchmarks/results/astroclip_reference.*).
# Embeds the model's survey, then for each seed of SEEDS generates 40,000 more galaxies with the
# same survey configuration, embeds them with the shipped model and deletes the survey file
# (13.6 GB each; only the ~45 MB embedding file is kept), then writes the report.
# Resumable: an embedding file already written is skipped, an unfinished survey file resumes.
# About 4 minutes of generation (2 workers) and 11 of embedding (one thread) per seed.
#   nohup scripts/astroclip_reference.sh > data/reference/run.log 2>&1 &
#   SEEDS="21 22" WORK=/elsewhere scripts/astroclip_reference.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
W="${WORK:-$ROOT/data/reference}"
SURVEY="${SURVEY:-$ROOT/data/survey_40k.h5}"
export OMP_NUM_THREADS=1 PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
mkdir -p "$W"
"$PY" benchmarks/astroclip_reference.py embed --survey "$SURVEY" --out "$W/emb_base.npz"
extra=()
for s in ${SEEDS:-21 22 23 24}; do
  out="$W/emb_s$s.npz"
  if [ ! -f "$out" ]; then
    "$PY" -m scifm survey generate --n 40000 --seed "$s" --out "$W/survey_s$s.h5" --workers 2
    "$PY" benchmarks/astroclip_reference.py embed --survey "$W/survey_s$s.h5" --out "$out"
    rm -f "$W/survey_s$s.h5"
  fi
  extra+=("$out")
done
"$PY" benchmarks/astroclip_reference.py report --survey "$SURVEY" --base "$W/emb_base.npz" \
    --extra "${extra[@]}" --work "$W"
