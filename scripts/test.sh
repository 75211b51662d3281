#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs npm packages when missing, gets a Docker engine
# answering (starting one only when none does), builds the offline sandbox images when missing, then runs the
# type check, lint, unit tests and the integration/e2e tests against the real engine.
#
# Usage: npm test            (or: bash scripts/test.sh [extra jest args for both projects])
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CP_SCRIPT_NAME="test"
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
ensure_node_packages jest @nestjs/core

bash scripts/ensure-docker.sh >/dev/null
# all: the sandbox, busybox and data-science images, each only when missing (the data-science one, numpy + pandas +
# matplotlib, is the slow one: about 70 s from scratch).
bash scripts/build-sandbox-image.sh all

log "type check and lint"
npx tsc --noEmit -p tsconfig.json
npx eslint "{src,test,bench}/**/*.ts"
# No import circle in src/, type-only imports included (.madgerc).
npx madge --circular src

log "unit tests"
npx jest --selectProjects unit "$@"
log "integration and e2e tests (real engine)"
npx jest --selectProjects integration --runInBand "$@"
