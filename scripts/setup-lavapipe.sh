#!/bin/sh
# Install Mesa >= 24 lavapipe (Vulkan on the CPU) so that Dawn (npm `webgpu`) finds an adapter on a
# Linux host without a GPU. Debian 12 takes Mesa from bookworm-backports (Mesa 22 is rejected by
# Dawn); Debian 13+/Ubuntu 24.04+ ship Mesa >= 24 in their own archive.
# Idempotent: when a working Mesa >= 24 Vulkan driver is present it exits at once and changes nothing.
set -eu
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup-lavapipe: $*"; }
fail() { echo "setup-lavapipe: $*" >&2; exit 1; }

if [ "$(uname -s)" != Linux ]; then
  say "not Linux ($(uname -s)); nothing to install here (WebGPU uses the system's native driver)"
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  fail "this host is not Debian/Ubuntu. Install a Vulkan loader and Mesa >= 24 lavapipe with your package manager (e.g. 'dnf install vulkan-loader mesa-vulkan-drivers')."
fi

have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' mesa-vulkan-drivers 2>/dev/null || true)
case "$have" in
  installed\ *)
    v=${have#installed }
    if dpkg --compare-versions "$v" ge 24~ \
       && dpkg-query -W -f='${db:Status-Status}' libvulkan1 2>/dev/null | grep -qx installed; then
      say "mesa-vulkan-drivers $v and libvulkan1 already installed; nothing to do"
      exit 0
    fi ;;
esac

. /etc/os-release
if [ "$(id -u)" != 0 ]; then
  case "${VERSION_CODENAME:-}" in
    bookworm) cmd="sudo sh $0" ;;
    *) cmd="sudo apt-get install -y libvulkan1 mesa-vulkan-drivers" ;;
  esac
  fail "Mesa >= 24 lavapipe is missing and installing it needs root. Run: $cmd"
fi

if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  src=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -qsE '^[^#]*bookworm-backports' /etc/apt/sources.list \
       /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
    cat > "$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt-get update -o Acquire::Retries=3
  apt-get install -y --no-install-recommends -t bookworm-backports libvulkan1 mesa-vulkan-drivers
else
  apt-get update -o Acquire::Retries=3
  apt-get install -y --no-install-recommends libvulkan1 mesa-vulkan-drivers
fi
v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)
dpkg --compare-versions "$v" ge 24~ || fail "got mesa-vulkan-drivers $v (< 24); Dawn needs Mesa >= 24"
say "mesa-vulkan-drivers $v installed"
