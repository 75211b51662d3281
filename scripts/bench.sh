#!/usr/bin/env bash
# The benchmark: `npm run bench` (about 6 minutes), `npm run bench -- --quick` (a smoke run, seconds).
#
# Makes sure a Docker engine answers (scripts/ensure-docker.sh) and the sandbox image exists
# (scripts/build-sandbox-image.sh, a no-op when it is there), then runs bench/run.ts with ts-node.
# Results: bench/results/{results.json,results.md,latency.svg} (--quick: bench/results/tmp/quick/, ignored by git).
# Arguments are passed on: --quick, --out <dir>, --image <ref>.
#
# Env: POOL_IMAGE (an existing image to benchmark instead of container-pool-sandbox:bookworm; not built),
#      TESTCONTAINERS_RYUK_DISABLED (forced to true: the reaper's image would come from a registry).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-docker.sh >&2
if [ -z "${POOL_IMAGE:-}" ]; then
  bash scripts/build-sandbox-image.sh sandbox >&2
fi
[ -d node_modules/testcontainers ] || {
  echo "[bench] node_modules is incomplete: run 'npm ci' first" >&2
  exit 1
}
export TESTCONTAINERS_RYUK_DISABLED=true
exec node --require ts-node/register/transpile-only bench/run.ts "$@"
