import { readdirSync, readFileSync } from 'node:fs';
import { py, report, sh, TRANSPORTS, useHostilePool } from '../../support/hostile';
import { docker, eventually } from '../../support/integration';

/** Host processes whose command line contains `marker` (this machine runs the engine). */
function hostProcesses(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(marker)) found.push(`${pid}: ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

async function containerGone(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect();
    return false;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode === 404;
  }
}

/** Hostile workloads against the lifecycle: what one run leaves behind must not reach the next. */
describe.each(TRANSPORTS)(
  'hostile workloads: nothing survives a run (transport %s)',
  (transport) => {
    const ctx = useHostilePool(transport);

    describe('8. background processes', () => {
      it('shell: nohup, setsid and a double fork do not survive into a later run', async () => {
        const marker = `${Date.now() % 100000}.${process.pid % 1000}`;
        const first = await sh(
          ctx.pool,
          [
            `nohup sleep 1${marker} >/dev/null 2>&1 &`,
            `setsid sleep 2${marker} >/dev/null 2>&1 < /dev/null &`,
            `( ( sleep 3${marker} >/dev/null 2>&1 & ) & )`,
            'sleep 0.2',
            // Only the workload's sleeps: the lifeline has its own (root's) sleep.
            `ps -eo args --no-headers | grep -c "^sleep [123]${marker}"`,
          ].join('\n'),
        );
        expect(first.exitCode).toBe(0);
        expect(first.stdout.trim()).toBe('3');
        // The container of that run is removed, and with it every process it had.
        await eventually(
          () => containerGone(first.containerId),
          10_000,
          'the first container removed',
        );
        await eventually(
          () => [1, 2, 3].every((i) => hostProcesses(`sleep ${i}${marker}`).length === 0),
          10_000,
          'the background sleeps gone from the host',
        );
        const second = await sh(
          ctx.pool,
          `ps -eo args --no-headers | grep "^sleep [123]${marker}" || echo none`,
        );
        expect(second.containerId).not.toBe(first.containerId);
        expect(second.stdout).toBe('none\n');
      });

      it('Python: a daemonized grandchild (double fork + setsid) is gone with the container', async () => {
        const marker = `cp-daemon-${Date.now()}`;
        const first = await py(
          ctx.pool,
          [
            'import os, sys, time',
            'if os.fork() == 0:',
            '    os.setsid()',
            '    if os.fork() == 0:',
            '        fd = os.open("/dev/null", os.O_RDWR)',
            '        for i in (0, 1, 2): os.dup2(fd, i)',
            `        os.execv("/bin/sleep", ["${marker}", "600"])`,
            '    os._exit(0)',
            'os.wait()',
            'time.sleep(0.2)',
            `print(sum(1 for p in os.listdir("/proc") if p.isdigit() and b"${marker}" in open("/proc/%s/cmdline" % p, "rb").read()))`,
          ].join('\n'),
        );
        expect(first.exitCode).toBe(0);
        expect(first.stdout).toBe('1\n');
        await eventually(
          () => containerGone(first.containerId),
          10_000,
          'the first container removed',
        );
        await eventually(
          () => hostProcesses(marker).length === 0,
          10_000,
          'the daemon gone from the host',
        );
        // Only a process whose argv[0] is the marker (the probe's own command line merely contains it).
        const second = await sh(
          ctx.pool,
          `ps -eo args --no-headers | awk '$1 == "${marker}"' | wc -l`,
        );
        expect(second.stdout).toBe('0\n');
      });

      it('shell: a background process holding stdout ends with the run (exec: at its timeout; runner: at once)', async () => {
        const marker = `hold-${Date.now()}`;
        const held = await ctx.pool.run({
          cmd: ['bash', '-c', `(exec -a ${marker} sleep 600) & echo started`],
          timeoutMs: 1_500,
        });
        if (transport === 'exec') {
          // exec: the execution is its stream, which stays open while the background process holds stdout.
          expect(held).toMatchObject({ timedOut: true, stdout: 'started\n', transport: 'exec' });
          expect(held.durationMs).toBeLessThan(2_500);
        } else {
          // runner (by design, docs/runner-protocol.md "Jobs"): the job is over when its process is reaped; what a
          // background process writes later is dropped. So bash's own exit code, no timeout.
          expect(held).toMatchObject({
            timedOut: false,
            exitCode: 0,
            stdout: 'started\n',
            transport: 'runner',
          });
        }
        await eventually(() => containerGone(held.containerId), 10_000, 'its container removed');
        await eventually(
          () => hostProcesses(marker).length === 0,
          10_000,
          'the process gone from the host',
        );
      });
    });

    describe('9. files', () => {
      it('Python: files written in one run are not visible to the next', async () => {
        const write = await py(
          ctx.pool,
          [
            'import json, os',
            'paths = ["/tmp/secret", os.path.expanduser("~/secret"), "/dev/shm/secret", "/workspace/secret"]',
            'for p in paths:',
            '    with open(p, "w") as f: f.write("from run 1")',
            'print(json.dumps({"written": [p for p in paths if os.path.exists(p)]}))',
          ].join('\n'),
        );
        expect(report<{ written: string[] }>(write).written).toHaveLength(4);
        const read = await py(
          ctx.pool,
          [
            'import json, os',
            'paths = ["/tmp/secret", os.path.expanduser("~/secret"), "/dev/shm/secret", "/workspace/secret"]',
            'print(json.dumps({"seen": [p for p in paths if os.path.exists(p)], "tmp": os.listdir("/tmp")}))',
          ].join('\n'),
        );
        expect(read.containerId).not.toBe(write.containerId);
        expect(report(read)).toEqual({ seen: [], tmp: [] });
      });

      it('shell: the same with sh', async () => {
        const write = await sh(
          ctx.pool,
          'echo one > /tmp/s && echo two > "$HOME/s" && ls /tmp "$HOME"',
        );
        expect(write.stdout).toContain('s');
        const read = await sh(ctx.pool, 'ls -A /tmp "$HOME"; cat /tmp/s 2>&1 || true');
        expect(read.stdout).not.toMatch(/^s$/m);
        expect(read.stdout).toMatch(/No such file/);
      });
    });
  },
);
