#!/usr/bin/env bash
# One `cellseg train` iteration of CenterMask-Lite V-39 (from scratch, BatchNorm) at LIVECell's and
# Sartorius' native 704x520, batch 2, no crop: the stage-2 concat [2, 768, 136, 176] is over the
# 128 MiB storage binding of lavapipe, so the ops' split paths (kernels/README.md, "Large
# tensors") run inside the real training loop, data loading and optimizer included. Takes minutes
# on a 2-core lavapipe machine (not part of the test suite). Prints the train log's last lines;
# exits non-zero if the iteration fails.
#   scripts/dev/train-scale-smoke.sh [work dir (default: a new temporary one)]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${1:-$(mktemp -d -t cellseg-scale-XXXXXX)}
cellseg() { "$ROOT/node_modules/.bin/tsx" "$ROOT/pipeline/cli/main.ts" "$@"; }

cellseg synth --seed 1 --train 2 --test 0 --width 704 --height 520 --out "$DIR/data"
cellseg coco --data "$DIR/data" --out "$DIR/coco.json" --test-out "$DIR/test_images.json"
start=$(date +%s)
cellseg train --no-eval --config-file "$ROOT/configs/sartorius_centermask_lite_V_39_scratch.yaml" \
  --train-json "$DIR/coco.json" --image-root "$DIR/data" \
  SOLVER.MAX_ITER 1 SOLVER.IMS_PER_BATCH 2 \
  INPUT.MIN_SIZE_TRAIN "(520,)" INPUT.MAX_SIZE_TRAIN 1333 INPUT.CROP.ENABLED False \
  OUTPUT_DIR "$DIR/out" 2>&1 | tail -n 20
echo "train-scale-smoke: 1 iteration of lite V-39 at 704x520, batch 2: $(( $(date +%s) - start )) s (work dir $DIR)"
