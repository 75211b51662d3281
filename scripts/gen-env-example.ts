/*
 * Writes .env.example and the settings table of README.md (between the `settings-table` markers) from the
 * SETTINGS table and DEFAULT_OPTIONS, so that neither drifts from the code: `npm run env:example`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_OPTIONS, envName, SETTINGS } from '../src/container-pool/config';

const MiB = 1024 * 1024;
const root = join(__dirname, '..');

function shown(key: string): string {
  const value = (DEFAULT_OPTIONS as unknown as Record<string, unknown>)[key];
  const kind = SETTINGS[key as keyof typeof SETTINGS].kind;
  if (Array.isArray(value)) return value.join(' ');
  if (value === undefined) return '';
  if (kind === 'bytes' && typeof value === 'number' && value % MiB === 0)
    return `${value / MiB}MiB`;
  return String(value);
}

const lines = [
  '# container-pool settings. Explicit forRoot() options win over these, which win over the defaults shown.',
  '# Sizes take bytes or units (64m, 256MiB); times are in ms. Uncomment to change.',
  '',
  '# The runnable service (`npx container-pool serve`, `npm run serve`)',
  '# HOST=127.0.0.1',
  '# PORT=3000',
  '# json (default when stdout is not a terminal) or text (default on a terminal, with colours unless NO_COLOR)',
  '# LOG_FORMAT=',
  '# fatal | error | warn | log | debug | verbose: the least severe level logged',
  '# LOG_LEVEL=log',
  '# 1: stop when the parent process goes away (default 1 when started by npm, as npm run serve and npx do)',
  '# CONTAINER_POOL_EXIT_WITH_PARENT=',
  '# Engine connection, as for the Docker CLI: unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host',
  '# DOCKER_HOST=',
  '# DOCKER_TLS_VERIFY=',
  '# DOCKER_CERT_PATH=',
  '',
];
const rows = ['| option | setting | default | what |', '|---|---|---|---|'];
for (const [key, setting] of Object.entries(SETTINGS)) {
  lines.push(`# ${setting.description}`);
  lines.push(`# ${envName(key)}=${shown(key)}`);
  rows.push(
    `| \`${key}\` | \`${envName(key)}\` | ${shown(key) ? `\`${shown(key)}\`` : '(none)'} | ${setting.description.replace(/\|/g, '\\|')} |`,
  );
}
writeFileSync(join(root, '.env.example'), lines.join('\n') + '\n');

const readmePath = join(root, 'README.md');
if (existsSync(readmePath)) {
  const readme = readFileSync(readmePath, 'utf8');
  const start = '<!-- settings-table:start -->';
  const end = '<!-- settings-table:end -->';
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a >= 0 && b > a) {
    writeFileSync(
      readmePath,
      readme.slice(0, a + start.length) + '\n' + rows.join('\n') + '\n' + readme.slice(b),
    );
  }
}
