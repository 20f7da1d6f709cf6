#!/usr/bin/env bash
# Builds the web console (console/ → console/dist), which the gatehouse binary embeds at
# compile time (crates/gatehouse/build.rs). Idempotent: installs the npm packages the lock file
# names if they are missing, and rebuilds only when a source is newer than the last build.
# Without a build, `cargo build` still works and the console's page says how to build it.
set -euo pipefail
cd "$(dirname "$0")/../console"
if ! command -v npm >/dev/null; then
  echo "console: installing Node.js and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "console: installing its npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -f dist/index.html ] || [ -n "$(find src index.html package-lock.json vite.config.ts tsconfig.json -newer dist/index.html -print -quit)" ]; then
  echo "console: building"
  npm run build --silent >/dev/null
fi
