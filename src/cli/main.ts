/**
 * The `container-pool` command (bin/container-pool.js):
 *   container-pool serve                  the runnable service
 *   container-pool image build [...]      the offline sandbox image
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { catchEarlySignals } from './early-signals';

export const USAGE = `usage: container-pool <command>

  serve                                      run the service: admin API, health, metrics, docs on HOST:PORT
                                             (default 127.0.0.1:3000); settings from POOL_* in the environment
                                             or ./.env; LOG_FORMAT=json|text, LOG_LEVEL
  image build [--force] [sandbox|busybox|datascience|all]
                                             build the offline sandbox image (no registry needed)
  --version                                  print the version`;

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
    return String(pkg.version);
  } catch {
    return 'unknown';
  }
}

/**
 * Runs a command. Resolves with the exit code, or with undefined for `serve`, which keeps the process running
 * until it is stopped (and then exits by itself).
 */
export async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      if (rest.some((a) => a === '-h' || a === '--help')) {
        process.stdout.write(USAGE + '\n');
        return 0;
      }
      if (rest.length) {
        process.stderr.write(
          `container-pool serve takes no arguments (settings come from the environment)\n`,
        );
        return 2;
      }
      // Before Nest and the module load: a signal during the boot stops the service cleanly.
      catchEarlySignals();
      const { runService } = await import('./serve');
      runService();
      return undefined;
    }
    case 'image':
      if (rest[0] === 'build') {
        const { buildImage } = await import('./image');
        return buildImage(rest.slice(1));
      }
      process.stderr.write(`${USAGE}\n`);
      return 2;
    case '--version':
    case '-v':
      process.stdout.write(version() + '\n');
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`container-pool: unknown command ${command}\n${USAGE}\n`);
      return 2;
  }
}
