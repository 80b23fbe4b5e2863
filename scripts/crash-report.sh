#!/bin/sh
# After a failed test run (.ci/run): say which test processes died of a signal and where.
#   sh scripts/crash-report.sh CORE_DIR
# Cores are named core.<exe>.<pid>.sig<N> by .ci/run's core_pattern. Prints, for each, the signal and
# the crashing thread's native backtrace (gdb, when installed), then deletes the core (they are large).
# Also prints the kernel's OOM-killer lines, which are how a SIGKILLed worker shows (no core).
dir=${1:-.ci/cores}
node_bin=$(command -v node)
found=0
# gdb only matters once there is a core: install it then (Debian, as root), never before.
if ls "$dir"/core.* >/dev/null 2>&1 && ! command -v gdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdb >/dev/null 2>&1 || echo "(could not install gdb)"
fi
for core in "$dir"/core.*; do
  [ -e "$core" ] || continue
  found=1
  echo "== crash report: $(basename "$core") ($(du -h "$core" | cut -f1))"
  if command -v gdb >/dev/null 2>&1; then
    gdb -q -batch -ex "bt 24" -ex "info threads" "$node_bin" "$core" 2>/dev/null \
      | grep -v -E '^(\[New LWP|warning:)' | head -70
  else
    echo "(gdb is not installed: only the signal in the file name is known)"
  fi
  rm -f "$core"
done
[ "$found" = 1 ] || echo "== crash report: no core files in $dir"
if command -v dmesg >/dev/null 2>&1; then
  dmesg 2>/dev/null | grep -i -E 'out of memory|killed process|segfault' | tail -5
fi
exit 0
