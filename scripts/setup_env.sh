#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install what is missing.
# A second run only checks (a few seconds): the install step is skipped while
# the stamp file is newer than pyproject.toml and constraints.txt (the lock).
#
# torch: an interpreter that already has torch (a user's CUDA build, a conda
# env) lends it to the venv through --system-site-packages and it is kept; on a
# machine without torch the CPU build named by TORCH_SPEC is installed first, so
# that no dependency can pull a multi-GB CUDA build.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-all}
STAMP="$VENV/.scifm-installed-$EXTRAS"
# constraints.txt: the versions the suite last passed with (CONSTRAINTS= to ignore it)
CONSTRAINTS=${CONSTRAINTS-constraints.txt}

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    echo "setup: $PYTHON already has torch; the venv will reuse it"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing $TORCH_SPEC"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q "$TORCH_SPEC"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] ||
   { [ -n "$CONSTRAINTS" ] && [ "$CONSTRAINTS" -nt "$STAMP" ]; }; then
  echo "setup: installing scifm[$EXTRAS] (editable${CONSTRAINTS:+, pinned by $CONSTRAINTS})"
  "$PY" -m pip install -q ${CONSTRAINTS:+-c "$CONSTRAINTS"} -e ".[$EXTRAS]"
  touch "$STAMP"
fi
