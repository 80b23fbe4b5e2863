#!/bin/bash
# Runs the test suite, the benchmarks and `npm start` on a lent GPU machine (the `device` tool),
# which has no Node.js, no npm registry and no Vulkan loader. Prepare here, once:
#   echo /.devrun/ >> .git/info/exclude; mkdir -p .devrun
#   xz -6 -c "$(command -v node)" > .devrun/node.xz
#   tar -cf - --exclude='*.map' --exclude='*.d.ts' --exclude=node_modules/typescript \
#     --exclude='node_modules/webgpu/dist/[dw]*' --exclude=node_modules/webgpu/dist/linux-arm64 \
#     node_modules | xz -6 > .devrun/nm.tar.xz
#   plus the Vulkan loader and glvnd .debs in .gl/ (the device tool's README gives the apt line).
# Optionally a part of ../shared/fixtures/centermask2 (the whole is over the carry limit) in
# .devfix/centermask2. Then: run(command="bash scripts/dev/device-run.sh", carry=[".devrun", ".gl", ".devfix"]).
# Each step has its own time limit and writes its log to $OUT, so a slow step costs only itself.
# Steps: DEVICE_STEPS="tests bench step start" (default: all four, in that order); DEVICE_BENCH: the
# bench suites (default "peak conv matmul"); BENCH_CONV_* pass through (conv: full, peer all);
# step: the training-step suite (V-19-slim and V-39, tiny and 512² batch 2) with its kernel profile.
# Bench records (bench/results format) are written to $OUT, so they come back.
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
T0=$(date +%s)
log() { echo "[device-run +$(($(date +%s) - T0))s] $*"; }

for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json

# python3's lzma and tarfile: the image may lack xz.
mkdir -p /tmp/nodebin
python3 - <<'EOF' || exit 1
import lzma, shutil, tarfile, os
with lzma.open('.devrun/node.xz') as src, open('/tmp/nodebin/node', 'wb') as dst:
    shutil.copyfileobj(src, dst)
os.chmod('/tmp/nodebin/node', 0o755)
with tarfile.open('.devrun/nm.tar.xz', 'r:xz') as t:
    t.extractall('.')
EOF
export PATH=/tmp/nodebin:$PATH
if [ -d .devfix/centermask2 ]; then mkdir -p ../shared/fixtures && cp -r .devfix/centermask2 ../shared/fixtures/; fi
log "node $(node --version); $(nvidia-smi -L 2>&1 | head -1)"
TSX="node node_modules/tsx/dist/cli.mjs"
export CELLGPU_SKIP_DRIVER_SETUP=1 NO_COLOR=1

if ! timeout 60 $TSX pipeline/cli/main.ts doctor >"$OUT/doctor.txt" 2>&1; then
  cat "$OUT/doctor.txt"
  log "no adapter: what the Vulkan loader could see"
  ls -la /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
  cat "$icd" 2>&1
  ldconfig -p | grep -i -E "vulkan|nvidia" | head -20
  exit 3
fi
cat "$OUT/doctor.txt"

for step in ${DEVICE_STEPS:-tests bench step start}; do
  case $step in
  tests)
    log "tests"
    timeout "${DEVICE_TEST_S:-240}" node node_modules/vitest/vitest.mjs run --maxWorkers "${DEVICE_WORKERS:-12}" \
      --reporter=dot --reporter=json --outputFile.json="$OUT/vitest.json" >"$OUT/tests.txt" 2>&1
    log "tests exit $?"
    tail -40 "$OUT/tests.txt"
    ;;
  bench)
    log "bench"
    BENCH_CONV_FULL=1 BENCH_CONV_PEER=${BENCH_CONV_PEER:-all} timeout "${DEVICE_BENCH_S:-150}" $TSX bench/run.ts ${DEVICE_BENCH:-peak conv matmul} \
      --repeats "${DEVICE_REPEATS:-5}" --json "$OUT/bench.json" --out "$OUT" >"$OUT/bench.txt" 2>&1
    log "bench exit $?"
    grep -E "^#|total|peak|one forward" "$OUT/bench.txt" | head -20
    ;;
  step)
    log "step (training step profile)"
    BENCH_STEP=${BENCH_STEP:-both} timeout "${DEVICE_STEP_S:-180}" $TSX bench/run.ts step --repeats 2 --json "$OUT/step.json" --out "$OUT" >"$OUT/step.txt" 2>&1
    log "step exit $?"
    grep -E "train step|dispatches" "$OUT/step.txt" | head -12
    ;;
  start)
    log "npm start (pipeline on the synthetic default)"
    timeout "${DEVICE_START_S:-60}" $TSX pipeline/cli/main.ts run --out /tmp/pipeline-out >"$OUT/start.txt" 2>&1
    log "start exit $?"
    tail -15 "$OUT/start.txt"
    ;;
  esac
done
log "done"
