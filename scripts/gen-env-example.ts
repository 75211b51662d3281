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
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
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
  '# Without POOL_PROFILES the service has two profiles: default (the POOL_* settings below) and datascience',
  '# (numpy, pandas, matplotlib pre-imported; runner, 1 GiB, size 1; POOL_PROFILE__DATASCIENCE__* override it).',
  '# 0 leaves datascience out; its image (built by npm run serve when missing, or npx container-pool image build',
  '# datascience):',
  '# CONTAINER_POOL_DATASCIENCE=1',
  '# DATASCIENCE_IMAGE=container-pool-datascience:bookworm',
  '# Engine connection, as for the Docker CLI: unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host',
  '# DOCKER_HOST=',
  '# DOCKER_TLS_VERIFY=',
  '# DOCKER_CERT_PATH=',
  '',
];
const rows = ['| option | setting | scope | default | what |', '|---|---|---|---|---|'];
for (const [key, setting] of Object.entries(SETTINGS)) {
  lines.push(`# ${setting.description}${setting.module ? ' (module-level)' : ''}`);
  lines.push(`# ${envName(key)}=${shown(key)}`);
  rows.push(
    `| \`${key}\` | \`${envName(key)}\` | ${setting.module ? 'module' : 'profile'} | ${shown(key) ? `\`${shown(key)}\`` : '(none)'} | ${setting.description.replace(/\|/g, '\\|')} |`,
  );
}
lines.push(
  '',
  '# Profiles: several named warm pools in one module. The list, then any profile-level setting per profile',
  '# as POOL_PROFILE__<NAME>__<SETTING> (the name upper case, - as _); unset ones fall back to the POOL_<SETTING>',
  '# above, then to the default. Module-level settings (marked above) are never per profile.',
  '# POOL_PROFILES=python,shell',
  '# POOL_DEFAULT_PROFILE=python',
  '# POOL_PROFILE__PYTHON__IMAGE=container-pool-sandbox:bookworm',
  '# POOL_PROFILE__PYTHON__SIZE=4',
  '# POOL_PROFILE__SHELL__IMAGE=container-pool-busybox:latest',
  '# POOL_PROFILE__SHELL__MEMORY_BYTES=64m',
);
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
