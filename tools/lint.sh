#!/usr/bin/env bash
# The OpenMMLab lint set (flake8, isort, yapf with setup.cfg's settings), as
# .pre-commit-config.yaml runs them. CI runs this; it fails on any finding.
#   bash tools/lint.sh          # check
#   bash tools/lint.sh --fix    # rewrite imports and formatting in place
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
PATHS=(mmdpal mmdpal_scope.py configs tools tests demo setup.py)
EXISTING=()
for p in "${PATHS[@]}"; do [ -e "$p" ] && EXISTING+=("$p"); done
if [ "${1:-}" = "--fix" ]; then
    "$PY" -m isort "${EXISTING[@]}"
    "$PY" -m yapf -i -r "${EXISTING[@]}"
fi
"$PY" -m flake8 "${EXISTING[@]}"
"$PY" -m isort --check-only --diff "${EXISTING[@]}"
"$PY" -m yapf --diff -r "${EXISTING[@]}"
echo "lint: flake8, isort, yapf clean"
