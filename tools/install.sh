#!/usr/bin/env bash
# One-command set-up of mmdpal and its pinned OpenMMLab stack.
#
#   bash tools/install.sh            # into the active python (conda env / venv / system)
#   PYTHON=/path/to/python bash tools/install.sh
#
# Installs torch 2.14.1, torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0 (compiled
# ops), mmpretrain 1.2.0, mmpose 1.3.2, mmdet 3.3.0, mmsegmentation 1.2.2, the demo's
# packages, and mmdpal in editable mode. Every trap of this stack on 2026 PyTorch is
# handled here (the numbers refer to docs/install.md):
#   1 torchvision only exists as a CUDA build -> use the CUDA torch (it runs on CPU)
#   2 mmcv 2.1.0 is an sdist that needs pkg_resources, no build isolation and C++20;
#     its wheel is built once per machine and kept in $MMDPAL_WHEEL_CACHE
#   2b mmcv 2.1.0's adjust_hue does np.uint8(negative float), an OverflowError
#     under numpy 2 (ColorJitter with hue > 0 crashes): patched in the sdist
#   3 mmpose declares chumpy (does not build) -> --no-deps + its real deps
#   4 xtcocotools wheels are built against numpy 1 -> build it from source
#   5 mmseg imports ftfy/regex without declaring them
#   7 opencv-python 5.x lacks HOGDescriptor -> pinned to 4.14.0.94 (constraints)
#   8 setuptools >= 81 has no pkg_resources, which mmengine imports to resolve
#     `_base_ = 'mmpose::...'`; torch 2.14 wants >= 77.0.3 -> ">=77.0.3,<81"
# A second run only checks and finishes in well under 2 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WHEEL_CACHE="${MMDPAL_WHEEL_CACHE:-$HOME/.cache/mmdpal/wheels}"
# the wheel of mmcv 2.1.0 with this script's patches (C++20, numpy-2 hue)
MMCV_WHEEL_DIR="$WHEEL_CACHE/mmcv-2.1.0-cxx20-np2hue-v2"
REQ="$ROOT/requirements"
CONSTRAINTS=(-c "$REQ/constraints.txt")
MIN_FREE_GB=12

die() { echo "mmdpal install: ERROR: $*" >&2; exit 1; }
step() { echo "== mmdpal install: $*"; }

# ---------------------------------------------------------------- preflight
# Everything is checked before anything is installed, so a failure leaves the
# environment untouched.
command -v "$PY" >/dev/null 2>&1 || die "no '$PY' on PATH: install Python 3.11 or set PYTHON=/path/to/python3.11"
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$PYVER" = "3.11" ] || die "Python 3.11 is required (the pinned torch 2.14.1 / mmcv 2.1.0 stack is verified on it), but $PY is Python $PYVER: set PYTHON=/path/to/python3.11"
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is missing for $PY: run '$PY -m ensurepip --upgrade'"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
[ -w "$SITE" ] || die "cannot write to $SITE: activate a virtualenv/conda env or run as a user that owns it"

mmcv_ok() { "$PY" - <<'PYEOF' >/dev/null 2>&1
import mmcv
assert mmcv.__version__ == "2.1.0"
from mmcv.ops import nms  # noqa: F401  (compiled ops present)
import numpy as np
for backend in ("cv2", "pillow"):  # patch 2b present in both code paths
    mmcv.adjust_hue(np.zeros((2, 2, 3), np.uint8), -0.1, backend=backend)
PYEOF
}

cached_mmcv_wheel() { ls "$MMCV_WHEEL_DIR"/mmcv-2.1.0-*.whl 2>/dev/null | head -n 1 || true; }

if ! mmcv_ok && [ -z "$(cached_mmcv_wheel)" ]; then
    # mmcv must be compiled: that needs a C++20 compiler and the Python headers.
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 \
        || die "no C++ compiler found (mmcv 2.1.0 ops are compiled here): install one, e.g. 'apt-get install g++'"
    echo 'int main(){return 0;}' | "$(command -v c++ || command -v g++)" -std=c++20 -x c++ - -o /dev/null 2>/dev/null \
        || die "the C++ compiler does not support -std=c++20 (torch 2.14 headers need it): install g++ >= 10"
    "$PY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
        || die "Python.h not found: install the Python development headers (e.g. 'apt-get install python3.11-dev')"
fi

free_gb() { df -Pk "$1" | awk 'NR==2 {print int($4/1024/1024)}'; }
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.14.1") else 1)' >/dev/null 2>&1; then
    [ "$(free_gb "$SITE")" -ge "$MIN_FREE_GB" ] \
        || die "only $(free_gb "$SITE") GB free at $SITE; torch 2.14.1 with its CUDA libraries needs about $MIN_FREE_GB GB: free some space"
fi
mkdir -p "$MMCV_WHEEL_DIR" || die "cannot create the wheel cache $MMCV_WHEEL_DIR: set MMDPAL_WHEEL_CACHE to a writable folder"

export PIP_ROOT_USER_ACTION=ignore
PIP=(pip_quiet install --disable-pip-version-check --progress-bar off "${CONSTRAINTS[@]}")
# pip, minus the one warning per package that a local find-links/extra-index
# configuration can print; pip's exit status is kept (pipefail).
pip_quiet() {
    "$PY" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }
}

# ---------------------------------------------------------------- torch (trap 1)
step "torch 2.14.1 + torchvision 0.29.1"
"${PIP[@]}" -q torch==2.14.1 torchvision==0.29.1
SETUPTOOLS="setuptools>=77.0.3,<81"  # trap 8

# ---------------------------------------------------------------- mmcv (trap 2)
if mmcv_ok; then
    step "mmcv 2.1.0 with ops already installed"
else
    WHEEL="$(cached_mmcv_wheel)"
    if [ -z "$WHEEL" ]; then
        step "building mmcv 2.1.0 with ops (once per machine, ~11 min on 2 cores)"
        BUILD="$(mktemp -d)"
        trap 'rm -rf "$BUILD"' EXIT
        # its setup.py imports pkg_resources (setuptools<70) and needs the installed torch
        "${PIP[@]}" -q "setuptools<70" wheel
        pip_quiet download --disable-pip-version-check -q --no-deps --no-binary :all: \
            --no-build-isolation mmcv==2.1.0 -d "$BUILD"
        tar -xzf "$BUILD"/mmcv-2.1.0.tar.gz -C "$BUILD"
        SRC="$BUILD/mmcv-2.1.0"
        sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
        # both the cv2 and the pillow code path of adjust_hue
        sed -i 's/+= np.uint8(hue_factor \* 255)/+= np.uint8(int(hue_factor * 255) % 256)/g' \
            "$SRC/mmcv/image/photometric.py"
        [ "$(grep -c 'int(hue_factor \* 255) % 256' "$SRC/mmcv/image/photometric.py")" = 2 ] \
            || die "could not patch mmcv/image/photometric.py (adjust_hue under numpy 2)"
        (cd "$BUILD/mmcv-2.1.0" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            pip_quiet wheel --disable-pip-version-check -q --no-deps --no-build-isolation -w "$BUILD/dist" .)
        # move it in only when complete, so an interrupted build never leaves a bad wheel
        mv "$BUILD"/dist/mmcv-2.1.0-*.whl "$MMCV_WHEEL_DIR"/
        WHEEL="$(cached_mmcv_wheel)"
    fi
    step "installing $WHEEL"
    "${PIP[@]}" -q --force-reinstall --no-deps "$WHEEL"
    "${PIP[@]}" -q "$WHEEL"  # its dependencies
fi

# ---------------------------------------------------------------- the rest of the stack
step "runtime requirements, mmengine, mmpretrain, mmdet, mmsegmentation"
"${PIP[@]}" -q "$SETUPTOOLS" -r "$REQ/runtime.txt" -r "$REQ/tests.txt" -r "$REQ/demo.txt" \
    mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2

# trap 4: xtcocotools against numpy 2
if ! "$PY" -c 'import xtcocotools.coco' >/dev/null 2>&1; then
    step "xtcocotools from source (numpy 2 ABI)"
    "${PIP[@]}" -q --force-reinstall --no-deps --no-binary xtcocotools --no-build-isolation --no-cache-dir "xtcocotools==1.14.3"
fi

# trap 3: mmpose without chumpy
step "mmpose 1.3.2 (--no-deps; its real deps are in requirements/runtime.txt)"
"${PIP[@]}" -q --no-deps mmpose==1.3.2

step "mmdpal (editable)"
"${PIP[@]}" -q --no-deps --no-build-isolation -e "$ROOT"

# ---------------------------------------------------------------- check
step "checking the installed stack"
"$PY" - <<'PYEOF'
import importlib
import torch, torchvision, cv2, numpy
import mmengine, mmcv, mmpretrain, mmpose, mmdet, mmseg, mmdpal
from mmcv.ops import nms, RoIAlign  # compiled ops
for backend in ("cv2", "pillow"):  # patch 2b (numpy 2 hue)
    mmcv.adjust_hue(numpy.zeros((2, 2, 3), numpy.uint8), -0.1, backend=backend)
import xtcocotools.coco  # noqa: F401
import pkg_resources  # noqa: F401  (mmengine resolves 'mmpose::' bases with it)
from mmengine.config import Config  # a cross-repo base config must resolve
import tempfile, os
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "check.py")
    with open(path, "w") as f:
        f.write("_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/"
                "td-hm_ViTPose-small_8xb64-210e_coco-256x192.py'\n")
    assert Config.fromfile(path).model.backbone.type == "mmpretrain.VisionTransformer"
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)[1]
assert keep.tolist() == [0], keep
assert hasattr(cv2, "HOGDescriptor"), "cv2 without HOGDescriptor: opencv 5.x slipped in"
for m in (torch, torchvision, numpy, cv2, mmengine, mmcv, mmpretrain, mmpose, mmdet, mmseg, mmdpal):
    print(f"{m.__name__:12s} {m.__version__}")
print("mmcv ops (nms, RoIAlign) OK; mmpose, mmdet, mmseg import OK")
PYEOF
step "done"
