#!/usr/bin/env bash
# Installs what shadergan needs from the operating system: the Vulkan loader, a software
# Vulkan device when no hardware one is present, and the Fashion-MNIST data set. With
# --for-tests also Chromium, which the tests use to load a run's report.html.
# Usage: setup-system.sh [--for-tests]
# Safe to run again: every step checks first and does nothing when already done.
set -euo pipefail

DATA_DIR=/usr/share/datasets/fashion-mnist
BACKPORTS_LIST=/etc/apt/sources.list.d/shadergan-bookworm-backports.list

have_vulkan_loader() { ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; }
have_lavapipe() { ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; }
lavapipe_version() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true
}
have_data() { [ -f "$DATA_DIR/train-images-idx3-ubyte.gz" ]; }
have_chromium() { [ -x /usr/bin/chromium ]; }
lavapipe_is_new_enough() {
  local version
  version=$(lavapipe_version)
  [ -n "$version" ] && dpkg --compare-versions "$version" ge 24
}
hardware_vulkan_present() {
  # A vendor driver (NVIDIA's ships its own ICD file) means the software device is not needed.
  ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null | grep -q nvidia
}

wanted=()
have_vulkan_loader || wanted+=(libvulkan1)
if ! hardware_vulkan_present && ! { have_lavapipe && lavapipe_is_new_enough; }; then
  wanted+=(mesa-vulkan-drivers)
fi
have_data || wanted+=(dataset-fashion-mnist)
if [ "${1:-}" = --for-tests ]; then
  have_chromium || wanted+=(chromium)
fi

if [ ${#wanted[@]} -eq 0 ]; then
  echo "setup: system packages already present (Vulkan loader, software device, data set)"
  exit 0
fi

explain() {
  echo "setup: cannot install system packages here: $1" >&2
  echo "Install these yourself, then run 'npm start' again:" >&2
  for pkg in "${wanted[@]}"; do
    case "$pkg" in
      libvulkan1) echo "  - libvulkan1: the Vulkan loader" >&2 ;;
      mesa-vulkan-drivers)
        echo "  - mesa-vulkan-drivers, version 24 or newer: Mesa's lavapipe software Vulkan" >&2
        echo "    device, needed without a GPU driver (Debian 12: apt-get install -t" >&2
        echo "    bookworm-backports mesa-vulkan-drivers)" >&2 ;;
      dataset-fashion-mnist)
        echo "  - dataset-fashion-mnist: the data set; or put Fashion-MNIST's IDX files in a" >&2
        echo "    folder and pass --data DIR to 'shadergan train'" >&2 ;;
      chromium)
        echo "  - chromium: a headless browser at /usr/bin/chromium, used only by the test" >&2
        echo "    that loads a run's report.html" >&2 ;;
    esac
  done
  exit 1
}

command -v apt-get >/dev/null 2>&1 || explain "apt-get not found (not Debian?)"
[ "$(id -u)" -eq 0 ] || explain "not running as root (try: sudo npm run setup)"
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")

if [[ " ${wanted[*]} " == *" mesa-vulkan-drivers "* ]] && [ "$codename" = bookworm ]; then
  if [ ! -f "$BACKPORTS_LIST" ] && ! grep -rqs bookworm-backports /etc/apt/sources.list \
      /etc/apt/sources.list.d/; then
    echo "setup: adding bookworm-backports for Mesa's newer software Vulkan device"
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$BACKPORTS_LIST"
  fi
fi

echo "setup: installing ${wanted[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || explain "apt-get update failed"
plain=()
for pkg in "${wanted[@]}"; do
  [ "$pkg" = mesa-vulkan-drivers ] || plain+=("$pkg")
done
if [ ${#plain[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends "${plain[@]}" >/dev/null \
    || explain "apt-get install ${plain[*]} failed"
fi
if [[ " ${wanted[*]} " == *" mesa-vulkan-drivers "* ]]; then
  if [ "$codename" = bookworm ]; then
    apt-get install -y -qq --no-install-recommends -t bookworm-backports \
      mesa-vulkan-drivers >/dev/null || explain "installing Mesa from bookworm-backports failed"
  else
    apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers >/dev/null \
      || explain "apt-get install mesa-vulkan-drivers failed"
  fi
fi
echo "setup: done"
