import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import { RunnerProtocolError } from '../../src/container-pool/errors/container-pool.errors';
import { RUNNER_PROTOCOL_VERSION } from '../../src/container-pool/transport/runner/runner-protocol';
import { RUNNER_ASSET_PATH } from '../../src/container-pool/transport/runner/runner-source';
import type { ContainerPoolService } from '../../src/container-pool/container-pool.service';
import {
  BUSYBOX_IMAGE,
  docker,
  engineContainers,
  eventually,
  expectNoContainersLeft,
  startPool,
} from '../support/integration';

/** The runner transport on the real engine: selection, results, errors, the container's processes. */
describe('runner transport on a real engine', () => {
  let app: INestApplication;
  let pool: ContainerPoolService;
  let name: string;

  beforeAll(async () => {
    ({ app, pool, name } = await startPool({ size: 2, maxContainers: 4, transport: 'auto' }));
    await pool.initialize();
  });

  afterAll(async () => {
    await app?.close();
    if (name) await expectNoContainersLeft(name);
  });

  it('auto picks the runner for a Python image, and says so in stats, profiles and results', async () => {
    expect(pool.stats().transport).toBe('runner');
    expect(pool.profiles()[0].transport).toBe('runner');
    const r = await pool.run({ code: 'print("hi")' });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hi\n', transport: 'runner', timedOut: false });
  });

  it('runs code as python3 -c does: argv, __name__, exit codes, tracebacks without the runner', async () => {
    const r = await pool.run({
      code: 'import sys\nprint(sys.argv, __name__)\nsys.stderr.write("e\\n")\nraise SystemExit(3)',
    });
    expect(r).toMatchObject({ exitCode: 3, stdout: "['-c'] __main__\n", stderr: 'e\n' });
    const boom = await pool.run({ code: 'x = 1\n\ndef f():\n    return 1 / 0\nf()\n' });
    expect(boom.exitCode).toBe(1);
    expect(boom.stderr).toMatch(/File "<string>", line 5, in <module>/);
    expect(boom.stderr).toMatch(/ZeroDivisionError: division by zero/);
    expect(boom.stderr).not.toMatch(/runner|-c>/);
    const syntax = await pool.run({ code: 'def (' });
    expect(syntax.exitCode).toBe(1);
    expect(syntax.stderr).toMatch(/SyntaxError/);
    const interrupted = await pool.run({ code: 'raise KeyboardInterrupt' });
    expect(interrupted.exitCode).toBe(130);
  });

  it('runs cmd with the caller env only (PATH, HOME and its variables), in the workdir, with stdin', async () => {
    const r = await pool.run({
      cmd: ['sh', '-c', 'env | sort; pwd; cat'],
      env: { GREETING: 'hello' },
      stdin: 'from stdin',
    });
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    const keys = lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0]);
    expect(keys.filter((k) => k !== 'PWD').sort()).toEqual(['GREETING', 'HOME', 'PATH']);
    expect(r.stdout).toContain('\n/workspace\n');
    expect(r.stdout.endsWith('from stdin')).toBe(true);
  });

  it('reports a signal as docker exec does (128 + n), and a missing program as a request error', async () => {
    expect((await pool.run({ cmd: ['sh', '-c', 'kill -TERM $$'] })).exitCode).toBe(143);
    await expect(pool.run({ cmd: ['no-such-program'] })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      field: 'cmd[0]',
    });
    await expect(pool.run({ cmd: ['true'], workdir: '/no/such/dir' })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
  });

  it('kills on timeout: the container goes, timedOut is the host verdict', async () => {
    const r = await pool.run({ code: 'while True: pass', timeoutMs: 500 });
    expect(r).toMatchObject({ timedOut: true, exitCode: null, transport: 'runner' });
  });

  it('runs concurrent executions of one leased container side by side, each with its own output', async () => {
    const c = await pool.acquire();
    try {
      // Each job waits (up to 5 s) until all four have started: only jobs that run side by side see 4.
      const rendezvous = (i: number) =>
        `touch /tmp/m${i}; for k in $(seq 50); do [ $(ls /tmp/m* | wc -l) -ge 4 ] && break; sleep 0.1; done; ` +
        `echo job${i} $(ls /tmp/m* | wc -l); echo err${i} >&2; exit ${i}`;
      const runs = await Promise.all(
        [0, 1, 2, 3].map((i) => c.execute(['sh', '-c', rendezvous(i)])),
      );
      runs.forEach((r, i) => {
        expect(r).toMatchObject({ exitCode: i, stdout: `job${i} 4\n`, stderr: `err${i}\n` });
      });
    } finally {
      pool.release(c);
    }
  });

  it('streams output as the program prints it, with offsets, on the runner', async () => {
    const chunks: { data: string; offset: number }[] = [];
    const r = await pool.run({
      code: 'import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.2)\n',
      onOutput: (e) => void chunks.push({ data: e.data.toString(), offset: e.offset }),
    });
    expect(r).toMatchObject({ exitCode: 0, stdout: '0\n1\n2\n', transport: 'runner' });
    expect(chunks).toEqual([
      { data: '0\n', offset: 0 },
      { data: '1\n', offset: 2 },
      { data: '2\n', offset: 4 },
    ]);
  });

  it('moves every byte value through stdin, stdout and files', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const r = await pool.run({
      cmd: ['sh', '-c', 'cat; cat in.bin > out.bin'],
      stdin: all,
      files: [{ path: 'in.bin', content: all }],
      collect: ['out.bin'],
    });
    expect(r.stdoutBytes.equals(all)).toBe(true);
    expect(r.files?.[0].content.equals(all)).toBe(true);
  });

  it('its containers run the runner as PID 1 without an init', async () => {
    const c = await pool.acquire();
    try {
      const r = await c.execute(['sh', '-c', 'tr "\\0" " " </proc/1/cmdline | head -c 16']);
      expect(r.stdout).toMatch(/^python3 -I -c /);
      const info = await docker.getContainer(c.id).inspect();
      expect(info.HostConfig.Init).toBe(false);
    } finally {
      pool.release(c);
    }
  });
});

describe('transport selection', () => {
  it('auto falls back to exec on an image without Python', async () => {
    const { app, pool, name } = await startPool({
      image: BUSYBOX_IMAGE,
      size: 1,
      transport: 'auto',
    });
    try {
      await pool.initialize();
      expect(pool.stats().transport).toBe('exec');
      const r = await pool.run({ cmd: ['echo', 'ok'] });
      expect(r).toMatchObject({ stdout: 'ok\n', transport: 'exec' });
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });

  it('runner on an image without Python fails the profile with SandboxUnsupportedError', async () => {
    const { app, pool, name } = await startPool({
      image: BUSYBOX_IMAGE,
      size: 1,
      transport: 'runner',
    });
    try {
      await expect(pool.initialize()).rejects.toMatchObject({
        code: 'SANDBOX_UNSUPPORTED',
        message: expect.stringMatching(
          /transport "runner" needs Python >= 3.8.*python3.*not found/,
        ),
      });
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });
});

/**
 * A forged runner (what a compromised container could send): `pythonCommand` is a shell script that says a
 * valid HELLO, reads the JOB header, then answers with a frame that breaks the protocol. The host must kill the
 * container and fail the run with RunnerProtocolError, never trust what it sent.
 */
describe('a runner that breaks the protocol', () => {
  const frame = (type: number, job: number, payload: Buffer) => {
    const b = Buffer.alloc(9);
    b.writeUInt32BE(payload.length, 0);
    b.writeUInt8(type, 4);
    b.writeUInt32BE(job, 5);
    return Buffer.concat([b, payload]);
  };
  const printf = (bytes: Buffer) =>
    `printf '${[...bytes].map((x) => `\\${x.toString(8).padStart(3, '0')}`).join('')}'`;
  const version = /^RUNNER_VERSION = '([^']+)'$/m.exec(readFileSync(RUNNER_ASSET_PATH, 'utf8'))![1];
  const hello = frame(
    0x81,
    0,
    Buffer.from(
      JSON.stringify({
        protocol: RUNNER_PROTOCOL_VERSION,
        runner: version,
        python: '3.11.2',
        oomKills: 0,
      }),
    ),
  );

  /** The forged runner: HELLO, wait for the JOB's header (9 bytes), then `answer`, then hold stdin open. */
  const forged = (answer: string) =>
    startPool({
      size: 1,
      transport: 'runner',
      pythonCommand: [
        'sh',
        '-c',
        `${printf(hello)}; head -c 9 >/dev/null; ${answer}; exec cat >/dev/null`,
        'forged',
      ],
    });
  const oversized = Buffer.alloc(9);
  oversized.writeUInt32BE(70_000, 0);
  oversized.writeUInt8(0x82, 4);
  oversized.writeUInt32BE(1, 5);

  it.each([
    ['an exit status of 300', printf(frame(0x84, 1, Buffer.from('{"status": 300}'))), /status 300/],
    [
      'a frame for another job',
      printf(frame(0x82, 7, Buffer.from('x'))),
      /job 7, which the host never started/,
    ],
    ['an unknown frame type', printf(frame(0x42, 1, Buffer.from('x'))), /unknown type 0x42/],
    [
      'an oversized output frame',
      `${printf(oversized)}; head -c 70000 /dev/zero`,
      /STDOUT frame of 70000 bytes \(at most 65536\)/,
    ],
    ['an EXIT that is not JSON', printf(frame(0x84, 1, Buffer.from('{'))), /not JSON/],
  ])('%s: RunnerProtocolError, the container is killed', async (_what, answer, message) => {
    const { app, pool, name } = await forged(answer);
    try {
      await pool.initialize();
      const err = await pool.run({ cmd: ['true'] }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RunnerProtocolError);
      expect(err).toMatchObject({ code: 'RUNNER_PROTOCOL', retryable: true });
      expect((err as Error).message).toMatch(message);
      expect(pool.stats().totals.executions).toBe(0);
      const killed = (err as RunnerProtocolError).containerName;
      await eventually(
        async () => !(await engineContainers(name)).some((r) => r.Names[0] === `/${killed}`),
        10_000,
        `${killed} killed`,
      );
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });

  it('output after the exit: the result stands, the container is killed, nothing more runs in it', async () => {
    const late = Buffer.concat([
      frame(0x84, 1, Buffer.from('{"status": 0}')),
      frame(0x82, 1, Buffer.from('late')),
    ]);
    const { app, pool, name } = await forged(printf(late));
    try {
      await pool.initialize();
      const c = await pool.acquire();
      await expect(c.execute(['true'])).resolves.toMatchObject({ exitCode: 0, stdout: '' });
      await eventually(
        async () => !(await engineContainers(name)).some((r) => r.Id === c.id),
        10_000,
        'the container killed',
      );
      await expect(c.execute(['true'])).rejects.toMatchObject({
        code: expect.stringMatching(/^(RUNNER_PROTOCOL|CONTAINER_LOST)$/),
      });
      pool.release(c);
    } finally {
      await app.close();
      await expectNoContainersLeft(name);
    }
  });
});
