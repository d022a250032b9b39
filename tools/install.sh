#!/usr/bin/env bash
# One-command set-up of mmdpal and its OpenMMLab stack, into the active Python
# (a venv or conda env of your choice; PYTHON=/path/to/python to pick one).
#
#   bash tools/install.sh                   # downstream: everything, mmcv with compiled ops
#   bash tools/install.sh --pretrain-only   # configs/dpal and the demo: mmcv without ops, no compile
#   bash tools/install.sh --keep-torch      # keep the installed torch (>= 2.1) and torchvision
#   bash tools/install.sh --print-plan      # print what would be done, change nothing
#   bash tools/install.sh --build-wheelhouse DIR [--python-version 3.X]  # connected machine
#   bash tools/install.sh --wheelhouse DIR  # air-gapped machine: only from DIR (pip --no-index)
#
# The same as variables: MMDPAL_MODE=downstream|pretrain, MMDPAL_TORCH=pinned|keep,
# MMDPAL_WHEELHOUSE=DIR; MMDPAL_CUDA_OPS=auto|1|0 (auto: compile mmcv's CUDA ops
# where nvcc, a CUDA torch and a GPU are there; 1 on a GPU-less login node),
# TORCH_CUDA_ARCH_LIST (default: the visible GPUs' archs, else
# DEFAULT_CUDA_ARCHS below), MMDPAL_WHEEL_CACHE, MAX_JOBS.
#
# Without --keep-torch it installs torch 2.14.1 + torchvision 0.29.1; then
# mmengine 0.10.7, mmcv 2.1.0, mmpretrain 1.2.0 and (downstream) mmpose 1.3.2,
# mmdet 3.3.0, mmsegmentation 1.2.2, the tests' and demo's packages, and mmdpal
# in editable mode. The traps it handles (numbers as in docs/install.md):
#   1 torchvision only exists as a CUDA build -> use the CUDA torch (it runs on CPU)
#   2 mmcv 2.1.0 is an sdist that needs pkg_resources, no build isolation and C++20;
#     each wheel is built once per machine and kept in $MMDPAL_WHEEL_CACHE under a
#     key of torch version, torch's CUDA version, the ops compiled and the patches
#   2b mmcv 2.1.0's adjust_hue does np.uint8(negative float), an OverflowError
#     under numpy 2 (ColorJitter with hue > 0 crashes): patched in the sdist
#   3 mmpose declares chumpy (does not build) -> --no-deps + its real deps
#   4 xtcocotools wheels are built against numpy 1 -> build it from source
#   5 mmseg imports ftfy/regex without declaring them
#   7 opencv-python 5.x lacks HOGDescriptor -> pinned to 4.14.0.94 (constraints)
#   8 setuptools >= 81 has no pkg_resources, which mmengine imports to resolve
#     `_base_ = 'mmpose::...'`; torch 2.14 wants >= 77.0.3 -> ">=77.0.3,<81"
# Every refusal happens before anything is installed, in one line.
# A second run only checks and finishes in well under 2 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/requirements"
PY="${PYTHON:-python3}"
MODE="${MMDPAL_MODE:-downstream}"
TORCH_MODE="${MMDPAL_TORCH:-pinned}"
CUDA_OPS="${MMDPAL_CUDA_OPS:-auto}"
WHEELHOUSE="${MMDPAL_WHEELHOUSE:-}"
BUILD_WHEELHOUSE=""
TARGET_PYTHON=""
PRINT_PLAN=0
WHEEL_CACHE="${MMDPAL_WHEEL_CACHE:-$HOME/.cache/mmdpal/wheels}"
MMCV_VERSION=2.1.0
# the patches applied to mmcv's sdist (C++20, numpy-2 hue); part of the cache key
PATCHSET=cxx20-np2hue-v2
PINNED_TORCH=2.14.1
MIN_TORCH=2.1
# CUDA archs when no GPU is visible (a login node): Volta to Hopper, + PTX;
# CUDA 13 dropped Volta and adds Blackwell
DEFAULT_CUDA_ARCHS="7.0;7.5;8.0;8.6;8.9;9.0+PTX"
DEFAULT_CUDA13_ARCHS="7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX"
MIN_FREE_GB=12
SETUPTOOLS="setuptools>=77.0.3,<81"  # trap 8

die() { echo "mmdpal install: ERROR: $*" >&2; exit 1; }
step() { echo "== mmdpal install: $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --pretrain-only) MODE=pretrain ;;
        --downstream) MODE=downstream ;;
        --keep-torch) TORCH_MODE=keep ;;
        --print-plan) PRINT_PLAN=1 ;;
        --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a folder}"; shift ;;
        --build-wheelhouse) BUILD_WHEELHOUSE="${2:?--build-wheelhouse needs a folder}"; shift ;;
        --python-version) TARGET_PYTHON="${2:?--python-version needs X.Y}"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) die "unknown option '$1': see 'bash tools/install.sh --help'" ;;
    esac
    shift
done
case "$MODE" in downstream|pretrain) ;; *) die "MMDPAL_MODE=$MODE: use 'downstream' or 'pretrain'" ;; esac
case "$TORCH_MODE" in pinned|keep) ;; *) die "MMDPAL_TORCH=$TORCH_MODE: use 'pinned' or 'keep'" ;; esac
case "$CUDA_OPS" in auto|0|1) ;; *) die "MMDPAL_CUDA_OPS=$CUDA_OPS: use auto, 1 or 0" ;; esac
[ -z "$WHEELHOUSE" ] || [ -z "$BUILD_WHEELHOUSE" ] || die "--wheelhouse installs from a folder, --build-wheelhouse fills one: give one of them"

# ---------------------------------------------------------------- facts
# Everything is checked before anything is installed, so a refusal leaves the
# environment untouched. One probe of the interpreter gives all its facts.
command -v "$PY" >/dev/null 2>&1 || die "no '$PY' on PATH: install Python 3.10-3.12 or set PYTHON=/path/to/python3"
declare -A FACT=()
while IFS='=' read -r key value; do
    [ -n "$key" ] && FACT[$key]="$value"
done < <("$PY" - <<'PYEOF' 2>/dev/null || true
# mmdpal-probe: the facts tools/install.sh decides on
import importlib.util, os, sys, sysconfig
print("python=%d.%d" % sys.version_info[:2])
print("purelib=" + sysconfig.get_paths()["purelib"])
print("pyheaders=%d" % os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
print("pip=%d" % (importlib.util.find_spec("pip") is not None))
try:
    import torch
    print("torch=" + torch.__version__.split("+")[0])
    print("torch_cuda=" + (torch.version.cuda or "none"))
except Exception:
    print("torch=none")
try:
    import torchvision
    print("torchvision=" + torchvision.__version__.split("+")[0])
except Exception:
    print("torchvision=none")
try:
    import mmcv
    print("mmcv=" + mmcv.__version__)
    import numpy as np
    for backend in ("cv2", "pillow"):  # patch 2b in both code paths
        mmcv.adjust_hue(np.zeros((2, 2, 3), np.uint8), -0.1, backend=backend)
    print("mmcv_hue=1")
    from mmcv.ops import get_compiling_cuda_version, nms  # noqa: F401
    cuda = get_compiling_cuda_version()
    print("mmcv_ops=" + ("cpu" if cuda == "not available" else "cuda"))
except Exception:
    pass
try:
    import xtcocotools.coco  # noqa: F401
    print("xtcocotools=1")
except Exception:
    print("xtcocotools=0")
PYEOF
)
PYVER="${FACT[python]:-}"
[ -n "$PYVER" ] || die "'$PY' does not run Python code: set PYTHON=/path/to/python3"
case "$PYVER" in
    3.10|3.11|3.12) ;;
    *) die "Python 3.10-3.12 is required (the torch 2.14.1 / mmcv 2.1.0 stack runs on them; verified on 3.11), but $PY is Python $PYVER: set PYTHON=/path/to/python3.11" ;;
esac
[ "${FACT[pip]:-0}" = 1 ] || die "pip is missing for $PY: run '$PY -m ensurepip --upgrade'"
SITE="${FACT[purelib]}"
TARGET_PYTHON="${TARGET_PYTHON:-$PYVER}"
case "$TARGET_PYTHON" in 3.10|3.11|3.12) ;; *) die "--python-version $TARGET_PYTHON: use 3.10, 3.11 or 3.12" ;; esac

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

# ---------------------------------------------------------------- torch
TORCH="${FACT[torch]:-none}"
TORCH_CUDA="${FACT[torch_cuda]:-none}"
if [ "$TORCH_MODE" = keep ]; then
    [ "$TORCH" != none ] || die "--keep-torch, but $PY has no torch: install torch >= $MIN_TORCH with its torchvision first, or drop --keep-torch to get torch $PINNED_TORCH"
    version_ge "$TORCH" "$MIN_TORCH" || die "torch $TORCH is not supported (mmengine 0.10 / mmcv 2.1 need torch >= $MIN_TORCH): upgrade it, or drop --keep-torch to get torch $PINNED_TORCH"
    [ "${FACT[torchvision]:-none}" != none ] || die "torch $TORCH is kept, but torchvision does not import with it: install the torchvision built for torch $TORCH"
    TORCH_PLAN="keep torch $TORCH (CUDA $TORCH_CUDA) and torchvision ${FACT[torchvision]}"
else
    if [ "$TORCH" != "$PINNED_TORCH" ]; then
        TORCH_CUDA=pending  # known once the pinned torch is installed
    fi
    TORCH="$PINNED_TORCH"
    TORCH_PLAN="torch $PINNED_TORCH + torchvision 0.29.1 (requirements/torch.txt)"
fi

# ---------------------------------------------------------------- mmcv
# what mmcv must provide: no ops (pretraining), CPU ops, or CPU + CUDA ops
NVCC=""
if command -v nvcc >/dev/null 2>&1; then
    NVCC="$(command -v nvcc)"
elif [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
    NVCC="$CUDA_HOME/bin/nvcc"
fi
GPUS=0  # visible GPUs
if command -v nvidia-smi >/dev/null 2>&1; then
    GPUS="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
fi
if [ "$MODE" = pretrain ]; then
    OPS=none
elif [ "$CUDA_OPS" = 0 ]; then
    OPS=cpu
elif [ "$CUDA_OPS" = 1 ]; then
    [ -n "$NVCC" ] || die "MMDPAL_CUDA_OPS=1, but no CUDA toolkit: nvcc is neither on PATH nor in \$CUDA_HOME/bin; install the toolkit matching torch's CUDA ${TORCH_CUDA/pending/} or set MMDPAL_CUDA_OPS=0"
    [ "$TORCH_CUDA" != none ] || die "MMDPAL_CUDA_OPS=1, but torch $TORCH is a CPU build: install a CUDA torch or set MMDPAL_CUDA_OPS=0"
    OPS=cuda
elif [ -n "$NVCC" ] && [ "$TORCH_CUDA" != none ] && [ "$GPUS" -gt 0 ]; then
    OPS=cuda
elif [ "$GPUS" -gt 0 ] && [ -z "$NVCC" ]; then
    # CPU-only ops here would install fine and fail at run time (CrowdDet's
    # NMS / RoIAlign on the GPU)
    die "$GPUS GPU(s) visible but no CUDA toolkit to compile mmcv's CUDA ops (nvcc is neither on PATH nor in \$CUDA_HOME/bin): load it (e.g. 'module load cuda') or set CUDA_HOME, or set MMDPAL_CUDA_OPS=0 for CPU-only ops, or use --pretrain-only"
else
    OPS=cpu
fi
ARCHS=""
if [ "$OPS" = cuda ]; then
    if [ -n "${TORCH_CUDA_ARCH_LIST:-}" ]; then
        ARCHS="$TORCH_CUDA_ARCH_LIST"
    elif command -v nvidia-smi >/dev/null 2>&1 \
        && ARCHS="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
            | tr -d ' ' | grep -E '^[0-9]+\.[0-9]+$' | sort -u -V | paste -sd ';' -)" \
        && [ -n "$ARCHS" ]; then
        :
    elif [ "${TORCH_CUDA%%.*}" -ge 13 ] 2>/dev/null; then
        ARCHS="$DEFAULT_CUDA13_ARCHS"  # CUDA 13 compiles no sm < 75
    else
        ARCHS="$DEFAULT_CUDA_ARCHS"
    fi
fi

# the cache key: a wheel is reused only where it was built for the same
# torch, CUDA, ops and patches (a CPU-ops wheel never serves a CUDA request)
mmcv_key() {  # $1: torch's CUDA version
    case "$OPS" in
        none) echo "mmcv-$MMCV_VERSION-$PATCHSET-noops" ;;  # pure Python: any torch
        cpu) echo "mmcv-$MMCV_VERSION-$PATCHSET-torch$TORCH-cu${1//./}-cpuops" ;;
        cuda) local sm="${ARCHS//./}"; sm="${sm//[; ]/-}"
              echo "mmcv-$MMCV_VERSION-$PATCHSET-torch$TORCH-cu${1//./}-cudaops-sm$sm" ;;
    esac
}

installed_mmcv_fits() {  # the installed mmcv provides what $OPS asks for
    [ "${FACT[mmcv]:-}" = "$MMCV_VERSION" ] && [ "${FACT[mmcv_hue]:-0}" = 1 ] || return 1
    case "$OPS" in
        none) return 0 ;;
        cpu) [ -n "${FACT[mmcv_ops]:-}" ] ;;
        cuda) [ "${FACT[mmcv_ops]:-}" = cuda ] ;;
    esac
}

# ---------------------------------------------------------------- wheelhouse
PIP_SOURCE=()
if [ -n "$WHEELHOUSE" ]; then
    [ -d "$WHEELHOUSE" ] || die "the wheelhouse $WHEELHOUSE does not exist: build it on a connected machine with 'bash tools/install.sh --build-wheelhouse DIR --python-version $PYVER' and copy it here"
    WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
    PIP_SOURCE=(--no-index --find-links "$WHEELHOUSE")
fi
if [ -n "$BUILD_WHEELHOUSE" ]; then
    if [ "$TARGET_PYTHON" != "$PYVER" ] && [ "$MODE" = downstream ]; then
        die "mmcv's ops and xtcocotools are compiled for the target Python: run with PYTHON=/path/to/python$TARGET_PYTHON, or build a --pretrain-only wheelhouse"
    fi
fi

if [ "$PRINT_PLAN" = 1 ]; then
    echo "python=$PYVER ($PY)"
    echo "mode=$MODE"
    echo "torch=$TORCH_PLAN"
    echo "mmcv_ops=$OPS (nvcc: ${NVCC:-none}, torch CUDA: $TORCH_CUDA, GPUs: $GPUS)"
    if [ "$OPS" = cuda ]; then
        echo "FORCE_CUDA=1"
        echo "TORCH_CUDA_ARCH_LIST=$ARCHS"
    fi
    if [ "$TORCH_CUDA" = pending ] && [ "$OPS" != none ]; then
        echo "mmcv_key=$(mmcv_key X.Y) (X.Y: the CUDA version of torch $PINNED_TORCH, once installed)"
    else
        echo "mmcv_key=$(mmcv_key "$TORCH_CUDA")"
    fi
    echo "installed_mmcv_fits=$(installed_mmcv_fits && echo yes || echo no)"
    echo "wheel_cache=$WHEEL_CACHE"
    [ -z "$WHEELHOUSE" ] || echo "wheelhouse=$WHEELHOUSE (pip --no-index)"
    [ -z "$BUILD_WHEELHOUSE" ] || echo "build_wheelhouse=$BUILD_WHEELHOUSE for Python $TARGET_PYTHON"
    exit 0
fi

# ---------------------------------------------------------------- preflight
if [ -z "$BUILD_WHEELHOUSE" ]; then
    [ -w "$SITE" ] || die "cannot write to $SITE: activate a virtualenv/conda env or run as a user that owns it"
fi
needs_compiler() {  # a wheel of mmcv with ops, or xtcocotools, is built here
    [ "$MODE" = downstream ] && [ -z "$WHEELHOUSE" ] || return 1
    [ -n "$BUILD_WHEELHOUSE" ] && return 0
    [ "${FACT[xtcocotools]:-0}" = 1 ] || return 0
    installed_mmcv_fits && return 1
    # a wheel cached for this torch and these ops (any CUDA version while the
    # pinned torch is still to be installed)
    local cuda="$TORCH_CUDA"
    [ "$cuda" != pending ] || cuda="*"
    ! ls $WHEEL_CACHE/$(mmcv_key "$cuda")/mmcv-*.whl \
        $( [ "$OPS" = cpu ] && [ "$TORCH" = "$PINNED_TORCH" ] && echo "$WHEEL_CACHE/mmcv-$MMCV_VERSION-$PATCHSET/mmcv-*.whl") \
        >/dev/null 2>&1
}
if needs_compiler; then
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
        || die "no C++ compiler found (mmcv 2.1.0 ops and xtcocotools are compiled here): install one, e.g. 'apt-get install g++', or use --pretrain-only"
    echo 'int main(){return 0;}' | "$(command -v c++ || command -v g++)" -std=c++20 -x c++ - -o /dev/null 2>/dev/null \
        || die "the C++ compiler does not support -std=c++20 (torch 2.14 headers need it): install g++ >= 10"
    [ "${FACT[pyheaders]:-0}" = 1 ] \
        || die "Python.h not found: install the Python development headers (e.g. 'apt-get install python$PYVER-dev')"
fi
free_gb() { df -Pk "$1" | awk 'NR==2 {print int($4/1024/1024)}'; }
DISK_AT="${BUILD_WHEELHOUSE:-$SITE}"
mkdir -p "$DISK_AT" 2>/dev/null || die "cannot create $DISK_AT: choose a writable folder"
if [ "$TORCH_MODE" = pinned ] && [ "${FACT[torch]:-none}" != "$PINNED_TORCH" ]; then
    [ "$(free_gb "$DISK_AT")" -ge "$MIN_FREE_GB" ] \
        || die "only $(free_gb "$DISK_AT") GB free at $DISK_AT; torch $PINNED_TORCH with its CUDA libraries needs about $MIN_FREE_GB GB: free some space"
fi
mkdir -p "$WHEEL_CACHE" || die "cannot create the wheel cache $WHEEL_CACHE: set MMDPAL_WHEEL_CACHE to a writable folder"

export PIP_ROOT_USER_ACTION=ignore
CONSTRAINTS=(-c "$REQ/constraints.txt")
[ "$TORCH_MODE" = keep ] || CONSTRAINTS+=(-c "$REQ/torch.txt")
# pip, minus the one warning per package that a local find-links/extra-index
# configuration can print; pip's exit status is kept (pipefail).
pip_quiet() {
    "$PY" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}
PIP=(pip_quiet install --disable-pip-version-check --progress-bar off "${PIP_SOURCE[@]}" "${CONSTRAINTS[@]}")

# requirement files of the mode (mmcv, mmpose and mmdpal are handled apart)
REQS=(-r "$REQ/runtime.txt" -r "$REQ/tests.txt" -r "$REQ/demo.txt")
PACKAGES=(mmengine mmpretrain)
if [ "$MODE" = downstream ]; then
    REQS+=(-r "$REQ/downstream.txt")
    PACKAGES+=(mmdet mmsegmentation)
fi

# A wheelhouse must hold every package the environment lacks, and the mmcv
# wheel of this key: pip's resolver, without installing, names the first one
# missing (mmpose apart: it declares chumpy, trap 3).
EXTRA=()
[ "$TORCH_MODE" = keep ] || EXTRA+=(-r "$REQ/torch.txt")
check_wheelhouse() {
    local out missing
    out="$("$PY" -m pip install --disable-pip-version-check --dry-run \
        "${PIP_SOURCE[@]}" "${CONSTRAINTS[@]}" "$@" 2>&1)" && return 0
    missing="$(printf '%s\n' "$out" | sed -n 's/.*No matching distribution found for \([^ ]*\).*/\1/p' | head -n 1)"
    [ -z "$missing" ] || die "the wheelhouse $WHEELHOUSE has no wheel of $missing for Python $PYVER: rebuild it with 'bash tools/install.sh --build-wheelhouse DIR --python-version $PYVER' and the same mode and torch flags"
    die "pip cannot resolve the packages from $WHEELHOUSE: $(printf '%s\n' "$out" | grep -m1 ERROR)"
}
if [ -n "$WHEELHOUSE" ]; then
    # a torch still to be installed from the wheelhouse: its one mmcv key
    cuda="$TORCH_CUDA"
    [ "$cuda" != pending ] || cuda="*"
    MMCV_WHEEL="$(ls $WHEELHOUSE/mmcv/$(mmcv_key "$cuda")/mmcv*-$MMCV_VERSION-*.whl 2>/dev/null | head -n 1 || true)"
    [ -n "$MMCV_WHEEL" ] || die "the wheelhouse $WHEELHOUSE has no mmcv wheel in mmcv/$(mmcv_key "${cuda/\*/X.Y}")/: rebuild it with 'bash tools/install.sh --build-wheelhouse DIR' and the same flags, on a machine with torch $TORCH"
    check_wheelhouse "$MMCV_WHEEL" "$SETUPTOOLS" wheel "${REQS[@]}" "${PACKAGES[@]}" "${EXTRA[@]}"
    [ "$MODE" = pretrain ] || check_wheelhouse --no-deps mmpose xtcocotools
fi

# ---------------------------------------------------------------- the build of mmcv
# mmcv's setup.py imports pkg_resources (gone from setuptools >= 81, which
# torch pulls in and a fresh venv may bundle) and, with ops, needs the
# installed torch (no build isolation) and setuptools < 70. Those build
# tools go to a folder of their own, put first on PYTHONPATH for mmcv's
# setup.py alone: the environment keeps the setuptools its packages accept,
# and pip never prints a dependency conflict.
BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT
with_build_tools() {  # run "$@" with setuptools < 70 and wheel importable
    # (wheel >= 0.46 leaves bdist_wheel to setuptools >= 70.1 and needs
    # packaging; 0.45 carries both)
    if [ ! -d "$BUILD/tools" ]; then
        pip_quiet install --disable-pip-version-check -q --no-deps "${PIP_SOURCE[@]}" \
            --target "$BUILD/tools" "setuptools<70" "wheel<0.46"
    fi
    PYTHONPATH="$BUILD/tools${PYTHONPATH:+:$PYTHONPATH}" "$@"
}

SDIST_DIR="$WHEEL_CACHE/sdist"
fetch_mmcv_sdist() {  # kept, so that other keys and wheelhouses build offline
    [ -f "$SDIST_DIR/mmcv-$MMCV_VERSION.tar.gz" ] && return 0
    [ -z "$WHEELHOUSE" ] || die "the wheelhouse $WHEELHOUSE has no mmcv wheel for $(mmcv_key "$TORCH_CUDA"): rebuild it on a connected machine with the same flags"
    mkdir -p "$SDIST_DIR"
    # pip runs setup.py to read the metadata, even to download
    with_build_tools pip_quiet download --disable-pip-version-check -q --no-deps \
        --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$SDIST_DIR"
}

build_mmcv() {  # $1: the folder the wheel goes to
    fetch_mmcv_sdist
    tar -xzf "$SDIST_DIR/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    # both the cv2 and the pillow code path of adjust_hue
    sed -i 's/+= np.uint8(hue_factor \* 255)/+= np.uint8(int(hue_factor * 255) % 256)/g' \
        "$SRC/mmcv/image/photometric.py"
    [ "$(grep -c 'int(hue_factor \* 255) % 256' "$SRC/mmcv/image/photometric.py")" = 2 ] \
        || die "could not patch mmcv/image/photometric.py (adjust_hue under numpy 2)"
    local env=(MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}")
    case "$OPS" in
        none) env=(MMCV_WITH_OPS=0) ;;
        cuda) env+=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$ARCHS") ;;
        cpu) env+=(FORCE_CUDA=0) ;;
    esac
    (cd "$SRC" && with_build_tools env "${env[@]}" "$PY" -m pip wheel --disable-pip-version-check \
        -q --no-deps --no-build-isolation "${PIP_SOURCE[@]}" -w "$BUILD/dist" . 2>&1 \
        | { grep -v "^WARNING: Location '.*' is ignored" || true; })
    # move it in only when complete, so an interrupted build never leaves a bad wheel
    mkdir -p "$1"
    mv "$BUILD"/dist/mmcv*-"$MMCV_VERSION"-*.whl "$1"/
}

cached_wheel() { ls "$1"/mmcv*-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true; }

# ---------------------------------------------------------------- build a wheelhouse
if [ -n "$BUILD_WHEELHOUSE" ]; then
    mkdir -p "$BUILD_WHEELHOUSE"
    WH="$(cd "$BUILD_WHEELHOUSE" && pwd)"
    TARGET=(--only-binary=:all: --python-version "$TARGET_PYTHON")
    step "downloading wheels for Python $TARGET_PYTHON into $WH"
    pip_quiet download --disable-pip-version-check -q "${CONSTRAINTS[@]}" "${TARGET[@]}" -d "$WH" \
        "$SETUPTOOLS" wheel "${REQS[@]}" "${PACKAGES[@]}" "${EXTRA[@]}"
    if [ "$MODE" = downstream ]; then
        pip_quiet download --disable-pip-version-check -q --no-deps "${CONSTRAINTS[@]}" "${TARGET[@]}" -d "$WH" mmpose
        step "xtcocotools from source for Python $TARGET_PYTHON (numpy 2 ABI)"
        "${PIP[@]}" -q cython numpy  # its setup.py cythonizes _mask.pyx
        pip_quiet wheel --disable-pip-version-check -q --no-deps --no-binary xtcocotools \
            --no-build-isolation --no-cache-dir "${CONSTRAINTS[@]}" -w "$WH" xtcocotools
    fi
    [ "$TORCH_CUDA" != pending ] || TORCH_CUDA=cpu  # only the no-ops wheel is built without torch
    KEY="$(mmcv_key "$TORCH_CUDA")"
    if [ -n "$(cached_wheel "$WHEEL_CACHE/$KEY")" ]; then
        step "mmcv $KEY from the wheel cache"
    else
        [ "$OPS" = none ] || [ "${FACT[torch]:-none}" = "$TORCH" ] \
            || die "building mmcv's ops needs torch $TORCH installed in $PY: run 'bash tools/install.sh' there first"
        step "building mmcv $KEY"
        build_mmcv "$WHEEL_CACHE/$KEY"
    fi
    mkdir -p "$WH/mmcv/$KEY"
    cp "$(cached_wheel "$WHEEL_CACHE/$KEY")" "$WH/mmcv/$KEY/"
    step "done: copy $WH to the air-gapped machine and run 'bash tools/install.sh --wheelhouse $WH'$([ "$MODE" = pretrain ] && echo ' --pretrain-only')$([ "$TORCH_MODE" = keep ] && echo ' --keep-torch')"
    exit 0
fi

# ---------------------------------------------------------------- torch (trap 1)
if [ "$TORCH_MODE" = keep ]; then
    step "$TORCH_PLAN"
else
    step "$TORCH_PLAN"
    "${PIP[@]}" -q -r "$REQ/torch.txt"
    TORCH_CUDA="$("$PY" -c 'import torch; print(torch.version.cuda or "none")')"
fi

# ---------------------------------------------------------------- mmcv (trap 2)
KEY="$(mmcv_key "$TORCH_CUDA")"
if installed_mmcv_fits; then
    step "mmcv $MMCV_VERSION ($OPS ops) already installed"
else
    DIR="$WHEEL_CACHE/$KEY"
    [ -z "$WHEELHOUSE" ] || DIR="$WHEELHOUSE/mmcv/$KEY"
    # the wheel of the previous layout of the cache: the same build as this key
    LEGACY="$WHEEL_CACHE/mmcv-$MMCV_VERSION-$PATCHSET"
    if [ -z "$(cached_wheel "$DIR")" ] && [ -z "$WHEELHOUSE" ] && [ "$OPS" = cpu ] \
        && [ "$TORCH" = "$PINNED_TORCH" ] && [ -n "$(cached_wheel "$LEGACY")" ]; then
        mkdir -p "$DIR" && cp "$(cached_wheel "$LEGACY")" "$DIR/"
    fi
    WHEEL="$(cached_wheel "$DIR")"
    if [ -z "$WHEEL" ]; then
        [ -z "$WHEELHOUSE" ] || die "the wheelhouse $WHEELHOUSE has no mmcv wheel for $KEY (mmcv/$KEY/): rebuild it with the same flags on a machine with torch $TORCH"
        case "$OPS" in
            none) step "building mmcv $MMCV_VERSION without ops (pure Python, once per machine)" ;;
            cpu) step "building mmcv $MMCV_VERSION with CPU ops (once per machine, ~11 min on 2 cores)" ;;
            cuda) step "building mmcv $MMCV_VERSION with CUDA ops for $ARCHS (FORCE_CUDA=1; once per machine)" ;;
        esac
        build_mmcv "$DIR"
        WHEEL="$(cached_wheel "$DIR")"
    fi
    step "installing $WHEEL"
    # mmcv and mmcv-lite (no ops) are one package under two names
    "$PY" -m pip uninstall -y -q mmcv mmcv-lite >/dev/null 2>&1 || true
    "${PIP[@]}" -q --no-deps "$WHEEL"
    "${PIP[@]}" -q "$WHEEL"  # its dependencies
fi
[ -n "$WHEELHOUSE" ] || fetch_mmcv_sdist

# ---------------------------------------------------------------- the rest of the stack
step "runtime requirements, ${PACKAGES[*]}"
"${PIP[@]}" -q "$SETUPTOOLS" "${REQS[@]}" "${PACKAGES[@]}"

if [ "$MODE" = downstream ]; then
    # trap 4: xtcocotools against numpy 2
    if ! "$PY" -c 'import xtcocotools.coco' >/dev/null 2>&1; then
        step "xtcocotools from source (numpy 2 ABI)"
        if [ -n "$WHEELHOUSE" ]; then
            "${PIP[@]}" -q --force-reinstall --no-deps xtcocotools
        else
            "${PIP[@]}" -q cython  # its setup.py cythonizes _mask.pyx (no build isolation)
            "${PIP[@]}" -q --force-reinstall --no-deps --no-binary xtcocotools --no-build-isolation --no-cache-dir xtcocotools
        fi
    fi
    # trap 3: mmpose without chumpy
    step "mmpose (--no-deps; its real deps are in requirements/downstream.txt)"
    "${PIP[@]}" -q --no-deps mmpose
fi

step "mmdpal (editable)"
"${PIP[@]}" -q --no-deps --no-build-isolation -e "$ROOT"

# ---------------------------------------------------------------- check
step "checking the installed stack"
MMDPAL_MODE="$MODE" MMDPAL_OPS="$OPS" "$PY" - <<'PYEOF'
import os
import tempfile

import cv2
import mmcv
import mmengine
import mmpretrain
import numpy
import torch
import torchvision
from mmengine.config import Config

import mmdpal

mmdpal.utils.silence_stack_deprecations()  # only mmdpal's messages below
mode, ops = os.environ["MMDPAL_MODE"], os.environ["MMDPAL_OPS"]
for backend in ("cv2", "pillow"):  # patch 2b (numpy 2 hue)
    mmcv.adjust_hue(numpy.zeros((2, 2, 3), numpy.uint8), -0.1, backend=backend)
import pkg_resources  # noqa: F401  (mmengine resolves 'mmpose::' bases with it)
assert hasattr(cv2, "HOGDescriptor"), "cv2 without HOGDescriptor: opencv 5.x slipped in"
modules = [torch, torchvision, numpy, cv2, mmengine, mmcv, mmpretrain]


def resolves(base, check):
    """A child config in a folder outside the checkout resolves ``base``."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "child.py")
        with open(path, "w") as f:
            f.write(f"_base_ = '{base}'\n")
        assert check(Config.fromfile(path)), base


resolves("mmdpal::dpal/vit-ti_path-b_lup1m.py",
         lambda c: c.model.type == "DPALDistiller")
if mode == "downstream":
    import mmdet
    import mmpose
    import mmseg
    import xtcocotools.coco  # noqa: F401
    from mmcv.ops import RoIAlign, nms  # noqa: F401  (compiled ops)
    modules += [mmpose, mmdet, mmseg]
    resolves("mmpose::body_2d_keypoint/topdown_heatmap/coco/"
             "td-hm_ViTPose-small_8xb64-210e_coco-256x192.py",
             lambda c: c.model.backbone.type == "mmpretrain.VisionTransformer")
    devices = ["cpu"] + (["cuda"] if ops == "cuda" and torch.cuda.is_available() else [])
    for device in devices:  # on the GPU too when one is visible
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device=device)
        keep = nms(boxes, torch.tensor([0.9, 0.8], device=device), 0.5)[1]
        assert keep.tolist() == [0], (device, keep)
        print(f"mmcv ops (nms) OK on {device}")
for m in modules + [mmdpal]:
    print(f"{m.__name__:12s} {m.__version__}")
print(f"mmdpal {mode} stack OK (mmcv ops: {ops})")
PYEOF
# pip's view of the whole environment: no package of the stack is missing
# a requirement or has one out of range (mmpose's chumpy is left out on
# purpose, trap 3); problems of other packages are only shown
STACK='torch|torchvision|setuptools|numpy|opencv-python(-headless)?|mmengine|mmcv(-lite)?|mmpretrain|mmpose|mmdet|mmsegmentation|mmdpal|xtcocotools|pycocotools'
PROBLEMS="$("$PY" -m pip check 2>&1 \
    | grep -v -E '^(mmpose [^ ]+ requires chumpy, which is not installed\.|No broken requirements found\.)$' || true)"
if [ -n "$PROBLEMS" ]; then
    if printf '%s\n' "$PROBLEMS" | grep -q -i -E "(^| )($STACK)[ ,<>=!~]"; then
        die "pip check finds the stack inconsistent: $(printf '%s' "$PROBLEMS" | tr '\n' ';' | head -c 2000)"
    fi
    echo "mmdpal install: note: pip check reports problems of packages mmdpal does not use:"
    printf '%s\n' "$PROBLEMS"
fi
step "done"
