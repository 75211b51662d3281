/*
 * container-pool as its users get it: the tarball `npm pack` makes in a clean clone of HEAD (prepare builds it),
 * installed without --force or --legacy-peer-deps into a Nest 11 CommonJS app and a Nest 12 ESM app
 * (test/consumer/), compiled with strict TypeScript and skipLibCheck false, booted as child processes (jest on
 * Node 20 cannot load Nest 12) that run code through the module on the real engine; the packaged bin; and a
 * git install. npm downloads go through a cache shared by every run (<tmpdir>/container-pool-npm-cache).
 *
 * Uncommitted changes are not part of it: the clone is of HEAD.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineContainers, SANDBOX_IMAGE, uniquePoolName } from '../support/integration';
import {
  descendants,
  freePort,
  isAlive,
  jsonLogs,
  launch,
  portOpen,
  run,
  waitUntil,
} from '../support/processes';

const ROOT = join(__dirname, '../..');
const NPM_CACHE = join(tmpdir(), 'container-pool-npm-cache');
const TOKEN = `consumer-${randomBytes(16).toString('hex')}`;
const INSTALL = ['install', '--no-audit', '--no-fund', '--prefer-offline'];

/** The environment of every npm and app process: no npm_* of the runner, the shared cache. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('npm_') || k === 'INIT_CWD' || k === 'NODE_OPTIONS') delete env[k];
  }
  return {
    ...env,
    npm_config_cache: NPM_CACHE,
    npm_config_update_notifier: 'false',
    npm_config_prefer_offline: 'true',
    ...extra,
  };
}

let work = '';
let clone = '';
let tarball = '';
let gitInstall: Promise<{ dir: string; log: string } | Error> = Promise.resolve(
  new Error('not started'),
);
const timings: string[] = [];

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

beforeAll(async () => {
  mkdirSync(NPM_CACHE, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'container-pool-consumer-'));
  clone = join(work, 'clone');
  const head = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  if (execFileSync('git', ['-C', ROOT, 'status', '--porcelain'], { encoding: 'utf8' }).trim()) {
    console.warn(
      `consumer tests use HEAD ${head.slice(0, 12)}: uncommitted changes are not part of them`,
    );
  }
  await timed('clone, npm ci, npm pack', async () => {
    await run('git', ['clone', '--quiet', '--no-checkout', ROOT, clone]);
    await run('git', ['-C', clone, 'checkout', '--quiet', head]);
    // npm pack builds it (prepare); --ignore-scripts spares a first build here.
    await run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: clone,
      env: cleanEnv(),
    });
    const out = await run('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: clone,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [packed] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
    tarball = join(work, 'container-pool.tgz');
    cpSync(join(work, packed.filename), tarball);
  });
  // The slowest part (npm prepares the git dependency in a clone of its own, dev dependencies and build
  // included): it runs while the apps are tested, and its test awaits it.
  gitInstall = timed('git install (beside the app tests)', async () => {
    const dir = join(work, 'git-app');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'git-app', version: '1.0.0', private: true }),
    );
    const log = await run('npm', [...INSTALL, `git+file://${clone}`], {
      cwd: dir,
      env: cleanEnv(),
    });
    return { dir, log };
  }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
}, 600_000);

afterAll(() => {
  if (timings.length) console.log(`consumer test timings:\n  ${timings.join('\n  ')}`);
  if (work && !process.env.CONTAINER_POOL_KEEP_CONSUMER_DIRS)
    rmSync(work, { recursive: true, force: true });
});

/**
 * The README's install command for a Nest `major` app (`npm install container-pool ...   # a Nest 11 app`), its
 * arguments after `npm install`, with the tarball for `container-pool`.
 */
function readmeInstall(major: 11 | 12): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const line = readme
    .split('\n')
    .find((l) => l.startsWith('npm install container-pool') && l.endsWith(`# a Nest ${major} app`));
  if (!line) throw new Error(`README.md has no install command for a Nest ${major} app`);
  const args = line.replace(/#.*$/, '').trim().split(/\s+/).slice(2);
  return args.map((a) => (a === 'container-pool' ? '../container-pool.tgz' : a));
}

/** Copies test/consumer/<app> next to the tarball and installs it as the README says. */
async function installApp(app: 'nest11' | 'nest12'): Promise<{ dir: string; installLog: string }> {
  const dir = join(work, app);
  cpSync(join(ROOT, 'test/consumer', app), dir, { recursive: true });
  const args = readmeInstall(app === 'nest11' ? 11 : 12);
  const installLog = await run('npm', [...INSTALL, ...args], { cwd: dir, env: cleanEnv() });
  return { dir, installLog };
}

/** name -> versions of every @nestjs/* package installed in the app, nested copies included. */
function nestPackages(dir: string): Record<string, string[]> {
  const found: Record<string, string[]> = {};
  const visit = (modules: string): void => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      const pkgs = entry.startsWith('@')
        ? readdirSync(join(modules, entry)).map((n) => join(modules, entry, n))
        : [join(modules, entry)];
      for (const pkgDir of pkgs) {
        const manifest = join(pkgDir, 'package.json');
        if (entry === '@nestjs' && existsSync(manifest)) {
          const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as {
            name: string;
            version: string;
          };
          (found[name] ??= []).push(version);
        }
        visit(join(pkgDir, 'node_modules'));
      }
    }
  };
  visit(join(dir, 'node_modules'));
  return found;
}

interface AppResult {
  nest: string;
  typed: [boolean, boolean];
  run: { exitCode: number | null; stdout: string };
  steps: string;
  valid: { status: number; body: { stdout?: string; exitCode?: number } };
  invalid: { status: number; body: { message?: string[] } };
  unknown: { status: number; body: { message?: string[] } };
  ready: number;
  docs: boolean;
  openapiPaths?: string[];
}

/** Runs the app's dist/main.js to its end; returns its RESULT. */
async function bootApp(dir: string, name: string): Promise<AppResult> {
  const out = await run('node', ['dist/main.js'], {
    cwd: dir,
    env: cleanEnv({ POOL_NAME: name, POOL_ADMIN_TOKEN: TOKEN }),
    timeoutMs: 120_000,
  });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no RESULT line from the app:\n${out}`);
  return JSON.parse(line.slice('RESULT '.length)) as AppResult;
}

function expectWorkingApp(r: AppResult): void {
  expect(r.typed).toEqual([false, false]);
  expect(r.run).toEqual({ exitCode: 0, stdout: '42\n' });
  expect(r.steps).toBe('42\n');
  expect(r.valid.status).toBe(200);
  expect(r.valid.body).toMatchObject({ exitCode: 0, stdout: '42\n' });
  // The one error shape: the first problem as the message, every problem in details.
  const problems = (body: any): string[] => [
    body.message,
    ...((body.details ?? []) as { message: string }[]).map((d) => d.message),
  ];
  expect(r.invalid.status).toBe(400);
  expect(r.invalid.body).toMatchObject({ code: 'INVALID_REQUEST', retryable: false });
  expect(problems(r.invalid.body)).toContainEqual(expect.stringMatching(/^timeoutMs /));
  expect(r.unknown.status).toBe(400);
  expect(problems(r.unknown.body)).toContain('property shell should not exist');
  expect(r.ready).toBe(200);
}

/**
 * `npx container-pool serve` in the app: ready, then `signal` to npx alone stops it with no container left.
 * npx runs `npm exec` -> `sh -c` -> node and passes signals on poorly: SIGTERM ends the shell and npm (the
 * service sees its parent or npm gone), SIGHUP ends npm alone (the service watches npm above the shell). SIGINT to npx alone does
 * nothing at all (npm counts on Ctrl-C reaching the whole group), so it is not one of them.
 */
async function serveThroughBin(dir: string, signal: 'SIGTERM' | 'SIGHUP'): Promise<void> {
  const port = await freePort();
  const name = uniquePoolName('consumer-bin');
  const proc = launch('npx', ['container-pool', 'serve'], {
    cwd: dir,
    env: cleanEnv({
      POOL_IMAGE: SANDBOX_IMAGE,
      POOL_PULL_POLICY: 'never',
      POOL_SIZE: '1',
      POOL_NAME: name,
      PORT: String(port),
    }),
  });
  let node = 0;
  try {
    await waitUntil(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`serve exited:\n${proc.output()}`);
        try {
          return (await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200;
        } catch {
          return false;
        }
      },
      60_000,
      'container-pool serve',
      200,
    );
    node = descendants(proc.child.pid!).find((p) => /container-pool serve$/.test(p.args))?.pid ?? 0;
    expect(node).toBeGreaterThan(0);
    expect(await engineContainers(name)).toHaveLength(1);
    proc.child.kill(signal);
    await waitUntil(() => !isAlive(node), 15_000, 'container-pool serve to exit');
    expect(await portOpen(port)).toBe(false);
    expect(await engineContainers(name)).toEqual([]);
    const logs = jsonLogs(proc.output());
    expect(logs.map((l) => l.message)).toContainEqual(
      signal === 'SIGTERM'
        ? expect.stringMatching(/^(parent|npm) process \d+ is gone: shutting down gracefully/)
        : expect.stringMatching(/^npm process \d+ is gone: shutting down gracefully/),
    );
    expect(logs.map((l) => l.message)).toContainEqual(expect.stringMatching(/^stopped in \d+ ms$/));
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
  } finally {
    if (node && isAlive(node)) process.kill(node, 'SIGKILL');
  }
}

describe('container-pool installed like a library', () => {
  jest.setTimeout(600_000);

  it('the packed tarball holds the library, its types, the bin and the image build script; no dev scripts, service entry or source maps', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/cli/main.js',
        'bin/container-pool.js',
        'scripts/build-sandbox-image.sh',
        'scripts/lib/common.sh',
      ]),
    );
    const unwanted = files.filter(
      (f) =>
        f.endsWith('.map') ||
        f.endsWith('.tsbuildinfo') ||
        /^dist\/main\./.test(f) ||
        /^(src|test|bench|docs|\.ci)\//.test(f) ||
        (f.startsWith('scripts/') &&
          !['scripts/build-sandbox-image.sh', 'scripts/lib/common.sh'].includes(f)),
    );
    expect(unwanted).toEqual([]);
  });

  it('a Nest 11 CommonJS app (class-validator 0.14 pinned, no swagger): installs, compiles strict, runs code, validates, closes clean', async () => {
    const { dir, installLog } = await timed('Nest 11 app: npm install', () => installApp('nest11'));
    expect(installLog).not.toMatch(/ERESOLVE|conflicting peer|overriding peer/i);
    // One copy of class-validator, the host's: the module's DTOs and the host's pipe share its metadata.
    expect(
      execFileSync('find', ['node_modules', '-type', 'd', '-name', 'class-validator'], {
        cwd: dir,
        encoding: 'utf8',
      }).trim(),
    ).toBe('node_modules/class-validator');
    // The Nest 11 line of every Nest package (npm's newest in range would be 12.x, ESM), and no @nestjs/config.
    const nest = nestPackages(dir);
    expect(nest['@nestjs/schedule']).toEqual([expect.stringMatching(/^6\./)]);
    expect(nest['@nestjs/terminus']).toEqual([expect.stringMatching(/^11\./)]);
    expect(nest['@nestjs/config']).toBeUndefined();
    expect(
      Object.entries(nest).filter(([, versions]) => versions.some((v) => v.startsWith('12.'))),
    ).toEqual([]);
    // So it loads as plain CommonJS, without require(esm), as jest on Node 20 loads it in such an app.
    expect(
      await run(
        'node',
        ['--no-experimental-require-module', '-e', "require('container-pool'); console.log('cjs')"],
        { cwd: dir, env: cleanEnv() },
      ),
    ).toContain('cjs');
    await timed('Nest 11 app: tsc (commonjs, nodenext)', () =>
      run('npm', ['run', 'build'], { cwd: dir, env: cleanEnv() }),
    );
    const name = uniquePoolName('consumer-nest11');
    const r = await timed('Nest 11 app: boot, run, close', () => bootApp(dir, name));
    expect(r.nest).toMatch(/^11\./);
    expectWorkingApp(r);
    expect(r.docs).toBe(false);
    expect(await engineContainers(name)).toEqual([]);

    const image = await run('npx', ['container-pool', 'image', 'build'], {
      cwd: dir,
      env: cleanEnv(),
    });
    expect(image).toMatch(/container-pool-sandbox:bookworm exists/);
    await timed('Nest 11 app: npx container-pool serve, SIGTERM', () =>
      serveThroughBin(dir, 'SIGTERM'),
    );
  });

  it('a Nest 12 ESM app (nodenext, also type-checked for bundlers, with swagger): installs, compiles strict, runs code, validates, serves docs, closes clean', async () => {
    const { dir, installLog } = await timed('Nest 12 app: npm install', () => installApp('nest12'));
    expect(installLog).not.toMatch(/ERESOLVE|conflicting peer|overriding peer/i);
    // class-validator and class-transformer come as container-pool's peers, at the top: one copy each.
    expect(
      execFileSync(
        'find',
        [
          'node_modules',
          '-type',
          'd',
          '(',
          '-name',
          'class-validator',
          '-o',
          '-name',
          'class-transformer',
          ')',
        ],
        { cwd: dir, encoding: 'utf8' },
      )
        .trim()
        .split('\n')
        .sort(),
    ).toEqual(['node_modules/class-transformer', 'node_modules/class-validator']);
    // @nestjs/schedule and @nestjs/terminus come as peers too, at their Nest 12 majors; no @nestjs/config.
    const nest = nestPackages(dir);
    expect(nest['@nestjs/schedule']).toEqual([expect.stringMatching(/^12\./)]);
    expect(nest['@nestjs/terminus']).toEqual([expect.stringMatching(/^12\./)]);
    expect(nest['@nestjs/config']).toBeUndefined();
    await timed('Nest 12 app: tsc (nodenext, bundler)', () =>
      run('npm', ['run', 'build'], { cwd: dir, env: cleanEnv() }),
    );
    const name = uniquePoolName('consumer-nest12');
    const r = await timed('Nest 12 app: boot, run, close', () => bootApp(dir, name));
    expect(r.nest).toMatch(/^12\./);
    expectWorkingApp(r);
    expect(r.docs).toBe(true);
    expect(r.openapiPaths).toEqual(
      expect.arrayContaining(['/admin/pool/executions', '/health/ready']),
    );
    expect(await engineContainers(name)).toEqual([]);
    await timed('Nest 12 app: npx container-pool serve, SIGHUP', () =>
      serveThroughBin(dir, 'SIGHUP'),
    );
  });

  it('npm install git+file://<clone> builds it (prepare), require("container-pool") loads, serve names the missing HTTP platform', async () => {
    const installed = await gitInstall;
    if (installed instanceof Error) throw installed;
    const { dir, log } = installed;
    expect(log).not.toMatch(/ERESOLVE|conflicting peer|overriding peer/i);
    const loaded = await run(
      'node',
      [
        '-e',
        "const m = require('container-pool'); console.log(JSON.stringify({ forRoot: typeof m.ContainerPoolModule.forRoot, service: typeof m.ContainerPoolService, nest: JSON.parse(require('fs').readFileSync('node_modules/@nestjs/core/package.json', 'utf8')).version }))",
      ],
      { cwd: dir, env: cleanEnv() },
    );
    expect(JSON.parse(loaded.trim().split('\n').pop()!)).toMatchObject({
      forRoot: 'function',
      service: 'function',
    });

    const serve = launch('npx', ['container-pool', 'serve'], {
      cwd: dir,
      env: cleanEnv({ LOG_FORMAT: 'text' }),
    });
    const { code } = await serve.exited;
    expect(code).toBe(1);
    expect(serve.output()).toMatch(
      /needs @nestjs\/platform-express .*npm install @nestjs\/platform-express/,
    );
  });
});
