#!/usr/bin/env bash
# The GPU checks of mmdpal, on one CUDA GPU, from a checkout whose Python
# already has the stack (bash tools/install.sh); about 5 minutes on an H100.
#
#   bash tools/gpu_check.sh [--out FILE]   # run every step, write one JSON
#   bash tools/gpu_check.sh --dry-run      # list the steps, run nothing
#
# Steps (docs/benchmark.md, "GPU figures", has what they gave):
#   1 paper mode (configs/dpal/vit-ti_path-b_lup1m.py, bf16 AMP): training
#     step at batch 64, 128, 256: samples/s, peak memory, finite losses
#   2 official mode (..._official.py: fp16 AMP with its GradScaler, and the
#     EMA of student + decoder updated every step), the same three batches
#   3 pytest -m gpu: loss() never waits for the GPU (CUDA sync-debug mode
#     'error', both modes), a 2-iteration tools/dist_train.sh ... 1 (NCCL),
#     mmcv's nms on the GPU (skipped unless mmcv's CUDA ops are built)
# Random teacher weights: the throughput is the same with the real ones.
# On a machine without a CUDA GPU it says so in one line and exits 0.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
OUT="$ROOT/work_dirs/gpu_check/gpu_check.json"
DRY=0
BATCHES=(64 128 256)
MODES=("paper_bf16:configs/dpal/vit-ti_path-b_lup1m.py"
       "official_fp16_ema:configs/dpal/vit-ti_path-b_lup1m_official.py")

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT="${2:?--out needs a file}"; shift ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown option '$1': see 'bash tools/gpu_check.sh --help'" >&2; exit 2 ;;
    esac
    shift
done

STEPS=()
for mode in "${MODES[@]}"; do
    for batch in "${BATCHES[@]}"; do
        STEPS+=("${mode%%:*}_b$batch: python tools/analysis_tools/benchmark_pretrain.py ${mode#*:} --device cuda --skip-data --batch-size $batch --iters 10 --warmup 3")
    done
done
STEPS+=("pytest_gpu: python -m pytest -m gpu tests")

if [ "$DRY" = 1 ]; then
    printf '%s\n' "${STEPS[@]}"
    echo "writes: $OUT"
    exit 0
fi

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible to $PY (torch.cuda.is_available() is False): nothing to check"
    exit 0
fi

cd "$ROOT"
PARTS="$(mktemp -d)"
trap 'rm -rf "$PARTS"' EXIT
START=$SECONDS
for step in "${STEPS[@]}"; do
    name="${step%%:*}"
    read -r -a cmd <<< "${step#*: }"
    cmd[0]="$PY"
    echo "== gpu_check: $name"
    t0=$SECONDS
    if [ "$name" = pytest_gpu ]; then
        cmd+=(-q -p no:cacheprovider "--junitxml=$PARTS/$name.xml")
    else
        cmd+=(--json "$PARTS/$name.json")
    fi
    "${cmd[@]}" > "$PARTS/$name.log" 2>&1
    echo "$? $((SECONDS - t0))" > "$PARTS/$name.status"
    tail -n 3 "$PARTS/$name.log"
done

mkdir -p "$(dirname "$OUT")"
"$PY" tools/analysis_tools/gpu_check_report.py "$PARTS" "$OUT" --seconds "$((SECONDS - START))"
