#!/usr/bin/env bash
# One GPU session (issue #9): the device tests, throughput, then the koch network trained
# with the episode loss (LOSS=pairs: Koch's recipe), resuming from the previous session's checkpoint when one is given.
#
#   OMNIGLOT_DIR=../shared/omniglot OUT=/tmp/out RUN=runs/koch-gpu bash scripts/gpu_run.sh
#
# Everything it makes goes under $OUT (the checkpoint folder $RUN is copied there at the
# end, so the next session can put it back and continue with --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OMNIGLOT_DIR:?set OMNIGLOT_DIR to the Omniglot folder}"
OUT="${OUT:?set OUT to the folder whose files come back}"
RUN="${RUN:-runs/koch-gpu}"
MINUTES="${MINUTES:-6}"   # training time budget of this session
LOSS="${LOSS:-episode}"   # pairs (Koch's), all-pairs or episode (README: "Training recipes")
mkdir -p "$OUT"

echo "== device tests on the GPU" | tee "$OUT/log.txt"
timeout 300 cargo test --release --features wgpu --lib -- --test-threads 1 2>&1 | tail -5 | tee -a "$OUT/log.txt" || true

echo "== throughput (embed at 1, 20, 128; train step at 128)" | tee -a "$OUT/log.txt"
timeout 240 cargo run --release --features wgpu --example throughput -- --devices wgpu \
  --presets koch,compact --mode embed,train --batches 1,20,128 --iters 3 2>&1 | tee -a "$OUT/log.txt" || true

echo "== koch training, ${MINUTES} min, resuming if $RUN has a checkpoint" | tee -a "$OUT/log.txt"
resume=()
[ -f "$RUN/training/checkpoint.zip" ] && resume=(--resume)
timeout "$((MINUTES * 60))" cargo run --release --features wgpu --example omniglot_20way -- \
  --train "${resume[@]}" --preset koch --loss "$LOSS" --device wgpu --out "$RUN" 2>&1 | tee -a "$OUT/log.txt" || true
cp -r "$RUN" "$OUT/" 2>/dev/null || true
