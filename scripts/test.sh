#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests talk to (redis-server, nginx,
# caddy, chromium, tmux; openssl makes the TLS test certificates; systemd-analyze checks the
# systemd unit) when missing, builds,
# type-checks, lints, then runs every suite.
# In CI (CI=true) a missing dependency is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

missing=()
for bin in redis-server nginx caddy chromium tmux openssl systemd-analyze; do
  have "$bin" || missing+=("$bin")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=()
  for bin in "${missing[@]}"; do
    case "$bin" in
      redis-server) pkgs+=(redis-server) ;;
      systemd-analyze) pkgs+=(systemd) ;;
      *) pkgs+=("$bin") ;;
    esac
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing test dependencies: ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  elif [ "${CI:-}" = "true" ]; then
    echo "missing test dependencies and cannot install them: ${pkgs[*]}" >&2
    exit 1
  else
    echo "warning: missing ${pkgs[*]}; the suites that need them will be skipped (install them to run everything)" >&2
  fi
fi

[ -d node_modules ] || npm install --no-audit --no-fund
npm run build
npx tsc --noEmit -p .
npx biome check .
npx vitest run "$@"
