#!/usr/bin/env bash
# The >= 40k-galaxy simulated survey of issue 14 (fibre spectra, photon noise, z 0.002-0.6).
# Resumable: run the same command again on an interrupted file and it continues with the chunks
# still pending (every galaxy depends only on (seed, object id), so the result is identical).
# Only the generator version that began a file resumes it: a file begun by version 2 (before the
# speed-up of version 3) is refused with an error in the log; move it aside (e.g. to
# data/survey_40k_v2.h5) and start again. Version 3 needs ~20 CPU ms per galaxy (~15 min of one
# free core for 40k; `nice -n 10` on a busy machine stretches that many times).
#   scripts/astroclip_data.sh                  # writes data/survey_40k.h5, log data/survey_40k.log
#   SURVEY_OUT=/elsewhere/s.h5 scripts/astroclip_data.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
OUT="${SURVEY_OUT:-$ROOT/data/survey_40k.h5}"
LOG="${OUT%.h5}.log"
mkdir -p "$(dirname "$OUT")"
export OMP_NUM_THREADS=1 PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}"
nohup nice -n 10 "$PY" -m scifm survey generate --n 40000 --out "$OUT" --seed 2 --workers 1 \
    >>"$LOG" 2>&1 &
echo "survey generation started: PID $! log $LOG (rerun this script to resume)"
# The retrieval catalog (issue 14 item 6) follows the survey as it grows; resumable the same way:
#   OMP_NUM_THREADS=1 PYTHONPATH=lib nohup nice -n 10 .venv/bin/python benchmarks/retrieval.py \
#       embed --survey data/survey_40k.h5 --out data/retrieval --target 1000000 \
#       >> data/retrieval/embed.log 2>&1 &
#   .venv/bin/python benchmarks/retrieval.py bench --work data/retrieval --nlist 1024
