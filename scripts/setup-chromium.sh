#!/bin/sh
# Install Debian's Chromium (/usr/bin/chromium), the browser the web tests (test/web/) drive
# headless with playwright-core; WebGPU there runs on SwiftShader (Chromium's CPU Vulkan). No
# browser is ever downloaded by npm. Idempotent: when /usr/bin/chromium exists it changes nothing.
set -eu
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup-chromium: $*"; }
fail() { echo "setup-chromium: $*" >&2; exit 1; }

if [ -x /usr/bin/chromium ]; then
  say "$(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed; nothing to do"
  exit 0
fi
if [ "$(uname -s)" != Linux ] || ! command -v dpkg-query >/dev/null 2>&1; then
  say "not a Debian/Ubuntu host: install Chromium at /usr/bin/chromium yourself to run test/web/ (the tests skip without it)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  fail "Chromium is missing and installing it needs root. Run: sudo apt-get install -y chromium"
fi
apt-get update -o Acquire::Retries=3
apt-get install -y --no-install-recommends chromium
[ -x /usr/bin/chromium ] || fail "apt installed chromium but /usr/bin/chromium is missing"
say "$(/usr/bin/chromium --version 2>/dev/null) installed"
