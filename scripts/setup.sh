#!/usr/bin/env bash
# Everything `npm start` and `npm test` need, installed once: npm packages, then the system
# packages (Vulkan loader, software Vulkan device, Fashion-MNIST; with --for-tests, as
# `npm test` passes, also Chromium). Quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=node_modules/.shadergan-lock-hash
wanted_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted_hash" ]; then
  echo "setup: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$wanted_hash" > "$stamp"
fi

bash scripts/setup-system.sh "$@"
