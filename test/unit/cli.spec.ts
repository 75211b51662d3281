import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext, LoggerService } from '@nestjs/common';
import { ImageUnavailableError } from '../../src/index';
import { buildImage } from '../../src/cli/image';
import { catchEarlySignals, takeEarlySignals } from '../../src/cli/early-signals';
import { ServiceLifecycle } from '../../src/cli/lifecycle';
import { serviceLoggerOptions } from '../../src/cli/logger';
import { waitFor } from '../support/pool-testing';
import { main } from '../../src/cli/main';
import {
  exitWithParent,
  launcherAbove,
  listenAddress,
  loadDotEnv,
  parentPid,
} from '../../src/cli/serve';

function recorder(): LoggerService & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: (m: string) => lines.push(`log ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
  };
}

function fakeApp(close: () => Promise<void> = () => Promise.resolve()) {
  return { close: jest.fn(close) } as unknown as INestApplicationContext & { close: jest.Mock };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('service logger', () => {
  it('logs JSON without colours when stdout is not a terminal, text with colours on one', () => {
    expect(serviceLoggerOptions({}, false)).toMatchObject({ json: true, colors: false });
    expect(serviceLoggerOptions({}, true)).toMatchObject({ json: false, colors: true });
  });

  it('LOG_FORMAT and NO_COLOR override', () => {
    expect(serviceLoggerOptions({ LOG_FORMAT: 'json' }, true)).toMatchObject({
      json: true,
      colors: false,
    });
    expect(serviceLoggerOptions({ LOG_FORMAT: 'text' }, false)).toMatchObject({
      json: false,
      colors: false,
    });
    expect(serviceLoggerOptions({ NO_COLOR: '1' }, true)).toMatchObject({
      json: false,
      colors: false,
    });
    expect(() => serviceLoggerOptions({ LOG_FORMAT: 'xml' }, false)).toThrow(/LOG_FORMAT/);
  });

  it('LOG_LEVEL keeps that level and the more severe ones', () => {
    expect(serviceLoggerOptions({ LOG_LEVEL: 'warn' }, false).logLevels).toEqual([
      'fatal',
      'error',
      'warn',
    ]);
    expect(serviceLoggerOptions({}, false).logLevels).toEqual(['fatal', 'error', 'warn', 'log']);
    expect(() => serviceLoggerOptions({ LOG_LEVEL: 'loud' }, false)).toThrow(/LOG_LEVEL/);
  });
});

describe('service settings', () => {
  it('HOST and PORT', () => {
    expect(listenAddress({})).toEqual({ host: '127.0.0.1', port: 3000 });
    expect(listenAddress({ HOST: '0.0.0.0', PORT: '8080' })).toEqual({
      host: '0.0.0.0',
      port: 8080,
    });
    expect(() => listenAddress({ PORT: '70000' })).toThrow(/PORT/);
  });

  it('watches its parent when asked, or by default when npm started it', () => {
    expect(exitWithParent({})).toBe(false);
    expect(exitWithParent({ npm_lifecycle_event: 'serve' })).toBe(true);
    expect(
      exitWithParent({ npm_lifecycle_event: 'serve', CONTAINER_POOL_EXIT_WITH_PARENT: '0' }),
    ).toBe(false);
    expect(exitWithParent({ CONTAINER_POOL_EXIT_WITH_PARENT: '1' })).toBe(true);
    expect(() => exitWithParent({ CONTAINER_POOL_EXIT_WITH_PARENT: 'maybe' })).toThrow(
      /EXIT_WITH_PARENT/,
    );
    // A named parent (npm run serve's script names it) is watched too, unless turned off.
    expect(exitWithParent({ CONTAINER_POOL_PARENT_PID: '4242' })).toBe(true);
    expect(
      exitWithParent({ CONTAINER_POOL_PARENT_PID: '4242', CONTAINER_POOL_EXIT_WITH_PARENT: '0' }),
    ).toBe(false);
  });

  it('CONTAINER_POOL_PARENT_PID is a process id', () => {
    expect(parentPid({})).toBeUndefined();
    expect(parentPid({ CONTAINER_POOL_PARENT_PID: ' 4242 ' })).toBe(4242);
    for (const bad of ['0', '-1', 'npm', '12abc', '1e3']) {
      expect(() => parentPid({ CONTAINER_POOL_PARENT_PID: bad })).toThrow(/PARENT_PID/);
    }
  });
});

describe('.env of the runnable service', () => {
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'container-pool-dotenv-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('fills what the environment lacks; a variable already set, even empty, keeps its value', () => {
    const file = join(dir, '.env');
    writeFileSync(
      file,
      [
        '# a comment',
        'CP_TEST_FROM_FILE=file',
        'CP_TEST_SET=file',
        'CP_TEST_EMPTY=file',
        'CP_TEST_QUOTED="a # b"',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = { CP_TEST_SET: 'env', CP_TEST_EMPTY: '' };
    expect(loadDotEnv(file, env)).toBe(true);
    expect(env).toEqual({
      CP_TEST_FROM_FILE: 'file',
      CP_TEST_SET: 'env',
      CP_TEST_EMPTY: '',
      CP_TEST_QUOTED: 'a # b',
    });
  });

  it('no file, no change', () => {
    const env: NodeJS.ProcessEnv = { A: '1' };
    expect(loadDotEnv(join(dir, '.env'), env)).toBe(false);
    expect(loadDotEnv(dir, env)).toBe(false);
    expect(env).toEqual({ A: '1' });
  });
});

describe('ServiceLifecycle', () => {
  it('closes the app once, logs the reason and exits 0; a repeated signal does not interrupt it', async () => {
    const logger = recorder();
    const exit = jest.fn();
    const lifecycle = new ServiceLifecycle({ logger, exit, graceMs: () => 1234 });
    const app = fakeApp();
    lifecycle.attach(app);
    lifecycle.stop('received SIGTERM');
    lifecycle.stop('received SIGINT');
    await tick();
    expect(app.close).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(0);
    expect(logger.lines[0]).toBe(
      'log received SIGTERM: shutting down gracefully (running executions get up to 1234 ms)',
    );
    expect(logger.lines[1]).toBe('log received SIGINT: already shutting down');
    expect(logger.lines[2]).toMatch(/^log stopped in \d+ ms$/);
  });

  it('a stop asked for during start-up closes the app as soon as it exists', async () => {
    const exit = jest.fn();
    const lifecycle = new ServiceLifecycle({ logger: recorder(), exit });
    lifecycle.stop('received SIGTERM');
    expect(lifecycle.stopping).toBe(true);
    const app = fakeApp();
    lifecycle.attach(app);
    await tick();
    expect(app.close).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledWith(0);
  });

  it('closes the HTTP connections that fall idle while the app closes (kept alive, they would hold it)', async () => {
    const exit = jest.fn();
    const closeIdleConnections = jest.fn();
    let calledDuringClose = 0;
    const app = {
      getHttpServer: () => ({ closeIdleConnections }),
      close: jest.fn(async () => {
        await new Promise((r) => setTimeout(r, 350));
        calledDuringClose = closeIdleConnections.mock.calls.length;
      }),
    } as unknown as INestApplicationContext;
    const lifecycle = new ServiceLifecycle({ logger: recorder(), exit });
    lifecycle.attach(app);
    lifecycle.stop('received SIGTERM');
    await waitFor(() => exit.mock.calls.length > 0, 2000, 'the exit');
    expect(exit).toHaveBeenCalledWith(0);
    expect(calledDuringClose).toBeGreaterThanOrEqual(2);
    const after = closeIdleConnections.mock.calls.length;
    await new Promise((r) => setTimeout(r, 250));
    expect(closeIdleConnections.mock.calls.length).toBe(after);
  });

  it('exits 1 when the shutdown fails', async () => {
    const logger = recorder();
    const exit = jest.fn();
    const lifecycle = new ServiceLifecycle({ logger, exit });
    lifecycle.attach(fakeApp(() => Promise.reject(new Error('boom'))));
    lifecycle.stop('received SIGTERM');
    await tick();
    expect(exit).toHaveBeenCalledWith(1);
    expect(logger.lines).toContain('error shutdown failed: boom');
  });

  it('exits 1 when the shutdown outlasts the grace plus its slack', () => {
    jest.useFakeTimers();
    try {
      const exit = jest.fn();
      const lifecycle = new ServiceLifecycle({ logger: recorder(), exit, graceMs: () => 1000 });
      lifecycle.attach(fakeApp(() => new Promise(() => undefined)));
      lifecycle.stop('received SIGTERM');
      jest.advanceTimersByTime(4_999);
      expect(exit).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(exit).toHaveBeenCalledWith(1);
    } finally {
      jest.useRealTimers();
    }
  });

  it('stops when the parent process changes', () => {
    jest.useFakeTimers();
    try {
      let ppid = 4242;
      const logger = recorder();
      const exit = jest.fn();
      const lifecycle = new ServiceLifecycle({ logger, exit }).watchParent(250, () => ppid);
      const app = fakeApp();
      lifecycle.attach(app);
      jest.advanceTimersByTime(1000);
      expect(app.close).not.toHaveBeenCalled();
      ppid = 1;
      jest.advanceTimersByTime(250);
      expect(app.close).toHaveBeenCalledTimes(1);
      expect(logger.lines[0]).toBe('log parent process 4242 is gone: shutting down gracefully');
      lifecycle.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('a named parent already gone at the start (re-parented during the boot): stops at once', () => {
    const logger = recorder();
    const lifecycle = new ServiceLifecycle({ logger, exit: jest.fn() }).watchParent(
      250,
      () => 1, // re-parented to init
      4242,
      () => false,
    );
    expect(lifecycle.stopping).toBe(true);
    expect(logger.lines[0]).toBe('log parent process 4242 is gone: shutting down gracefully');
    lifecycle.dispose();
  });

  it('a named parent that is not the own parent: watched by whether it exists', () => {
    jest.useFakeTimers();
    try {
      let exists = true;
      const lifecycle = new ServiceLifecycle({ logger: recorder(), exit: jest.fn() }).watchParent(
        250,
        () => 777,
        4242,
        () => exists,
      );
      jest.advanceTimersByTime(1000);
      expect(lifecycle.stopping).toBe(false);
      exists = false;
      jest.advanceTimersByTime(250);
      expect(lifecycle.stopping).toBe(true);
      lifecycle.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('the named parent is the own parent: a change of the parent pid stops it, even with the pid reused', () => {
    jest.useFakeTimers();
    try {
      let ppid = 4242;
      const lifecycle = new ServiceLifecycle({ logger: recorder(), exit: jest.fn() }).watchParent(
        250,
        () => ppid,
        4242,
        () => true, // a new process with the old pid
      );
      jest.advanceTimersByTime(1000);
      expect(lifecycle.stopping).toBe(false);
      ppid = 1;
      jest.advanceTimersByTime(250);
      expect(lifecycle.stopping).toBe(true);
      lifecycle.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('watches npm above the shell npx puts between npm and node', () => {
    jest.useFakeTimers();
    try {
      let alive = true;
      const logger = recorder();
      const lifecycle = new ServiceLifecycle({ logger, exit: jest.fn() }).watchProcess(
        900,
        'npm process',
        250,
        () => alive,
      );
      jest.advanceTimersByTime(1000);
      expect(lifecycle.stopping).toBe(false);
      alive = false;
      jest.advanceTimersByTime(250);
      expect(logger.lines[0]).toBe('log npm process 900 is gone: shutting down gracefully');
      lifecycle.dispose();
    } finally {
      jest.useRealTimers();
    }
    const tree: Record<number, { comm: string; ppid: number }> = {
      30: { comm: 'sh', ppid: 20 }, // npx: npm exec -> sh -c -> node
      20: { comm: 'npm exec contai', ppid: 10 },
      40: { comm: 'npm run serve', ppid: 10 }, // npm run serve: npm -> node
      50: { comm: 'bash', ppid: 1 },
    };
    const stat = (pid: number) => tree[pid];
    expect(launcherAbove(30, stat)).toBe(20);
    expect(launcherAbove(40, stat)).toBeUndefined();
    expect(launcherAbove(50, stat)).toBeUndefined();
    expect(launcherAbove(99, stat)).toBeUndefined();
    // This very process, on Linux: jest's parent is no shell.
    expect(() => launcherAbove()).not.toThrow();
  });

  it('exits 0 without an app when stopped before it started anything', () => {
    const logger = recorder();
    const exit = jest.fn();
    const lifecycle = new ServiceLifecycle({ logger, exit });
    lifecycle.stop('received SIGTERM while loading');
    lifecycle.exitBeforeStart();
    expect(exit).toHaveBeenCalledWith(0);
    expect(logger.lines.at(-1)).toMatch(/^log stopped in 0 ms/);
  });

  it('takes over the signals caught while loading: one that arrived stops it as soon as it listens', () => {
    const before = ['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s));
    catchEarlySignals();
    catchEarlySignals(); // idempotent
    expect(['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(
      before.map((n) => n + 1),
    );
    process.emit('SIGHUP', 'SIGHUP');
    const logger = recorder();
    const lifecycle = new ServiceLifecycle({ logger, exit: jest.fn() }).listen();
    expect(lifecycle.stopping).toBe(true);
    expect(logger.lines[0]).toBe('log received SIGHUP while loading: shutting down gracefully');
    // The early listeners are gone, the lifecycle's own are there until disposed.
    expect(['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(
      before.map((n) => n + 1),
    );
    expect(takeEarlySignals()).toEqual([]);
    lifecycle.dispose();
    expect(['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before);
  });

  it('listens to SIGTERM, SIGINT and SIGHUP until disposed', () => {
    const before = ['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s));
    const lifecycle = new ServiceLifecycle({ logger: recorder(), exit: jest.fn() }).listen();
    expect(['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(
      before.map((n) => n + 1),
    );
    lifecycle.dispose();
    expect(['SIGTERM', 'SIGINT', 'SIGHUP'].map((s) => process.listenerCount(s))).toEqual(before);
  });
});

describe('container-pool command', () => {
  let out: jest.SpyInstance;
  let err: jest.SpyInstance;
  beforeEach(() => {
    out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => jest.restoreAllMocks());

  it('prints usage and version, refuses unknown commands and arguments', async () => {
    expect(await main(['--help'])).toBe(0);
    expect(String(out.mock.calls[0][0])).toMatch(
      /container-pool <command>[\s\S]*serve[\s\S]*image build/,
    );
    expect(await main(['--version'])).toBe(0);
    expect(String(out.mock.calls[1][0])).toMatch(/^\d+\.\d+\.\d+/);
    expect(await main([])).toBe(2);
    expect(await main(['frobnicate'])).toBe(2);
    expect(await main(['image'])).toBe(2);
    expect(await main(['serve', '--port', '1'])).toBe(2);
    expect(await buildImage(['--fast'])).toBe(2);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/unknown argument --fast/);
    expect(await buildImage(['--help'])).toBe(0);
    expect(String(out.mock.calls.at(-1)?.[0])).toMatch(
      /\[sandbox\|busybox\|datascience\|all\][\s\S]*datascience/,
    );
    // datascience is a target: no "unknown argument" (the flag after it fails first, before any build).
    expect(await buildImage(['datascience', '--fast'])).toBe(2);
    expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/unknown argument --fast/);
  });
});

it('the image error names the command that builds the offline image', () => {
  expect(new ImageUnavailableError('x:1', 'not found').message).toContain(
    'npx container-pool image build',
  );
});
