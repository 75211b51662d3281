import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The offline image build script shipped with the package (dist/cli -> scripts, src/cli -> scripts). */
export const BUILD_SCRIPT = join(__dirname, '..', '..', 'scripts', 'build-sandbox-image.sh');

export const IMAGE_BUILD_USAGE = `usage: container-pool image build [--force] [sandbox|busybox|datascience|all]

Builds the offline sandbox image where no container registry is reachable: Debian packages only (mmdebstrap
with python3 and procps, then docker import), about 20-40 s, as root on Debian or Ubuntu with a Docker engine
answering. An image that exists is kept unless --force.

  sandbox  container-pool-sandbox:bookworm (default; SANDBOX_IMAGE to name it otherwise)
  busybox  container-pool-busybox:latest, a tiny shell-only image
  datascience
           container-pool-datascience:bookworm: python3 with numpy, pandas and matplotlib from Debian, its font
           cache built in (/usr/local/share/matplotlib-cache), ~520 MB, about 70 s (DATASCIENCE_IMAGE)
  all      the three

Then: POOL_IMAGE=container-pool-sandbox:bookworm POOL_PULL_POLICY=never`;

/** The build script's targets; none given: sandbox. */
const TARGETS = ['sandbox', 'busybox', 'datascience', 'all'];

/** Runs the build script with the given arguments; resolves with its exit code. */
export function buildImage(args: string[]): Promise<number> {
  if (args.some((a) => a === '-h' || a === '--help')) {
    process.stdout.write(IMAGE_BUILD_USAGE + '\n');
    return Promise.resolve(0);
  }
  const bad = args.find((a) => !['--force', '-f', ...TARGETS].includes(a));
  if (bad !== undefined) {
    process.stderr.write(
      `container-pool image build: unknown argument ${bad}\n${IMAGE_BUILD_USAGE}\n`,
    );
    return Promise.resolve(2);
  }
  if (!existsSync(BUILD_SCRIPT)) {
    process.stderr.write(`container-pool image build: ${BUILD_SCRIPT} is missing\n`);
    return Promise.resolve(1);
  }
  const what = args.some((a) => TARGETS.includes(a)) ? [] : ['sandbox'];
  return new Promise((resolve) => {
    const child = spawn('bash', [BUILD_SCRIPT, ...args, ...what], { stdio: 'inherit' });
    child.once('error', (err) => {
      process.stderr.write(`container-pool image build: cannot run bash: ${err.message}\n`);
      resolve(1);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
  });
}
