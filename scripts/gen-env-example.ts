/* Writes .env.example from the SETTINGS table and DEFAULT_OPTIONS: `npm run env:example`. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_OPTIONS, envName, SETTINGS } from '../src/container-pool/container-pool.config';

const lines = [
  '# container-pool settings. Explicit forRoot() options win over these, which win over the defaults shown.',
  '# Sizes take bytes or units (64m, 256MiB); times are in ms. Uncomment to change.',
  '',
  '# The runnable service (src/main.ts)',
  '# HOST=127.0.0.1',
  '# PORT=3000',
  '# Engine connection, as for the Docker CLI: unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host',
  '# DOCKER_HOST=',
  '# DOCKER_TLS_VERIFY=',
  '# DOCKER_CERT_PATH=',
  '',
];
for (const [key, setting] of Object.entries(SETTINGS)) {
  const value = (DEFAULT_OPTIONS as unknown as Record<string, unknown>)[key];
  const MiB = 1024 * 1024;
  const shown = Array.isArray(value)
    ? value.join(' ')
    : value === undefined
      ? ''
      : setting.kind === 'bytes' && typeof value === 'number' && value % MiB === 0
        ? `${value / MiB}MiB`
        : String(value);
  lines.push(`# ${setting.description}`);
  lines.push(`# ${envName(key)}=${shown}`);
}
writeFileSync(join(__dirname, '..', '.env.example'), lines.join('\n') + '\n');
