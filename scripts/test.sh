#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs npm packages when missing, gets a Docker engine
# answering (starting one only when none does), builds the offline sandbox images when missing, then runs the
# type check, lint, unit tests and the integration/e2e tests against the real engine.
#
# Usage: npm test            (or: bash scripts/test.sh [extra jest args for both projects])
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[test] %s\n' "$*" >&2; }

if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null; then
  echo "Node.js 20.19 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
if [ ! -d node_modules ] || ! node -e "require.resolve('jest'); require.resolve('@nestjs/core')" 2>/dev/null; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

bash scripts/ensure-docker.sh >/dev/null
bash scripts/build-sandbox-image.sh all

log "type check and lint"
npx tsc --noEmit -p tsconfig.json
npx eslint "{src,test,bench}/**/*.ts"

log "unit tests"
npx jest --selectProjects unit "$@"
log "integration and e2e tests (real engine)"
npx jest --selectProjects integration --runInBand "$@"
