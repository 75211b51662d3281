#!/usr/bin/env bash
# The benchmark: `npm run bench` (about 15 minutes), `npm run bench -- --quick` (a smoke run, about 2 minutes).
# The pool is measured on both transports: C on `exec` (one docker exec per execution, 120 settled runs per
# snippet) and R on `runner` (runner.py as PID 1, 300 settled runs per snippet), both against D (raw exec);
# throughput, fill and memory on both too. `--transports exec` leaves the runner out (an image without Python).
#
# On a fresh machine too: installs npm packages when missing, gets a Docker engine answering
# (scripts/ensure-docker.sh; an engine that already answers is never touched), builds the sandbox image when
# missing (scripts/build-sandbox-image.sh), then runs bench/run.ts with ts-node. Every comparison (cold
# containers, testcontainers-node, the pool, a raw exec) runs on that engine and that image, in one run.
# Results: bench/results/{results.json,results.md,latency.svg} (--quick: bench/results/tmp/quick/, ignored by
# git). `--soak` runs the soak instead (10,000 single-use runs, about 20-30 minutes): bench/results/soak.{json,md,svg}
# (`--soak-runs N`, a shorter check: bench/results/tmp/soak/). Arguments are passed on: --quick, --soak,
# --soak-runs N, --profiles, --files (both transports), --sessions [--rounds N] [--gap-ms MIN-MAX] [--opens N]
# (bench/sessions.ts, runner transport), --outputs [--rounds N] [--opens N] (bench/outputs.ts: the data-science
# profile; builds the data-science image when missing), --transports exec,runner, --out <dir>, --image <ref>;
# `--streaming` (first) runs bench/streaming.ts (both transports; --rounds N, --transports, --out <dir>). Node runs
# with --expose-gc (the soak forces a GC before each sample).
#
# Env: POOL_IMAGE (an existing image to benchmark instead of container-pool-sandbox:bookworm; not built).
#      TESTCONTAINERS_RYUK_DISABLED is forced to true: the reaper's image would come from a registry.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CP_SCRIPT_NAME="bench"
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
ensure_node_packages ts-node testcontainers @nestjs/core

bash scripts/ensure-docker.sh >/dev/null
if [ -z "${POOL_IMAGE:-}" ]; then
  bash scripts/build-sandbox-image.sh sandbox
fi
case " $* " in
  *" --outputs "*) [ -n "${DATASCIENCE_IMAGE:-}" ] || bash scripts/build-sandbox-image.sh datascience ;;
esac

export TESTCONTAINERS_RYUK_DISABLED=true
# Streamed output's time to first byte (bench/streaming.ts), exec and runner transports:
# `npm run bench -- --streaming [--rounds N] [--transports exec,runner] [--out <dir>]`.
if [ "${1:-}" = "--streaming" ]; then
  shift
  exec node --require ts-node/register/transpile-only bench/streaming.ts "$@"
fi
exec node --expose-gc --require ts-node/register/transpile-only bench/run.ts "$@"
