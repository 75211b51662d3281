/**
 * Attacks on a container's lifeline, as a uid-65534 process without capabilities can make them, for the lifeline
 * fault suite (test/integration/faults/lifeline.int-spec.ts). Each attack is one execution: its foreground tries
 * the attack once and prints one JSON report (what the kernel answered), then leaves the attack running in the
 * background (setsid, stdio on /dev/null, so the execution ends while the attack goes on). Every background
 * process of an attack carries the marker `cpatk-<attack>` in its name or command line, so the test can see from
 * the host that it still runs when the owner's fate is decided.
 *
 * Two sets: Python (the sandbox image; ptrace through ctypes) and busybox (sh and busybox applets only: no
 * ptrace tool exists there, so ptrace is covered by the Python set alone).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type ImageKind = 'python' | 'busybox';
export type TransportName = 'exec' | 'runner';

/**
 * What is attacked: an image kind on a transport. The Python image runs every attack on both transports; busybox
 * has no Python, so exec only.
 */
export interface Variant {
  kind: ImageKind;
  transport: TransportName;
}
export const VARIANTS: Variant[] = [
  { kind: 'python', transport: 'exec' },
  { kind: 'python', transport: 'runner' },
  { kind: 'busybox', transport: 'exec' },
];
export const variantLabel = (v: Variant) => `${v.kind}/${v.transport}`;

export interface Attack {
  attack: string;
  cmd: string[];
  env?: Record<string, string>;
  /** Checks the foreground's JSON report (the attack was really made, and failed against the lifeline). */
  check(report: AttackReport): void;
  /** Checks what the host sees in the container's cgroup just before the owner's fate. */
  hostCheck?(evidence: HostEvidence): void;
}

/**
 * The lifeline as the attacker sees it, by pid. exec: every uid-0 process of the container (docker-init, sh,
 * sleep, cat). runner: the runner's own processes (its command line), PID 1 and its helpers (Python set only;
 * busybox has no runner).
 */
export interface LifelineView {
  [pid: string]: Record<'Name' | 'State' | CapField | 'NoNewPrivs' | 'Seccomp', string> & {
    Uid?: string;
    PPid?: string;
  };
}
type CapField = 'CapInh' | 'CapPrm' | 'CapEff' | 'CapBnd' | 'CapAmb';
export type AttackReport = { lifeline: LifelineView } & Record<string, any>;

/** A process of the container, read from the host's /proc. */
export interface HostProcess {
  pid: number;
  uid: number;
  name: string;
  state: string;
  tracerPid: number;
  cmdline: string;
  fds: string[] | null;
}

export interface HostEvidence {
  procs: HostProcess[];
  /** The attack's own processes (marker in the name or the command line), zombies excluded. */
  attackers: HostProcess[];
  pidsCurrent: number;
  pidsMax: number;
  oomKills: number;
  memoryMaxUsage: number;
  memoryLimit: number;
}

export const marker = (attack: string) => `cpatk-${attack}`;

const ZERO = '0000000000000000';

/**
 * What every report shows.
 * - exec: the lifeline is docker-init, sh, sleep and cat, as root without any capability.
 * - runner: the runner is PID 1 (python3) with its two helpers, the zygote (a child of PID 1) and the spare it
 *   forks (the zygote's child), all python3 with the runner's command line, as the sandbox user (65534) without
 *   any capability. Only PID 1 is the lifeline proper (its exit ends the container); the helpers are
 *   expendable by design (docs/runner-protocol.md: a job may kill or stop them, the runner forks new ones).
 */
export function checkLifelineView(view: LifelineView, transport: TransportName = 'exec'): void {
  const entries = Object.values(view);
  if (transport === 'exec') {
    expect(entries.map((e) => e.Name).sort()).toEqual(['cat', 'docker-init', 'sh', 'sleep']);
  } else {
    expect(entries.map((e) => e.Name)).toEqual(['python3', 'python3', 'python3']);
    expect(view['1']).toMatchObject({ Name: 'python3', Uid: '65534', PPid: '0' });
    const zygote = Object.entries(view).find(([, e]) => e.PPid === '1');
    expect(zygote).toBeDefined();
    expect(entries.filter((e) => e.PPid === zygote![0])).toHaveLength(1);
    for (const e of entries) expect(e.Uid).toBe('65534');
  }
  for (const e of entries) {
    expect(e).toMatchObject({
      CapInh: ZERO,
      CapPrm: ZERO,
      CapEff: ZERO,
      CapBnd: ZERO,
      CapAmb: ZERO,
      NoNewPrivs: '1',
      Seccomp: '2',
    });
    // Not stopped (T) nor traced (t): running or asleep (D, an uninterruptible moment, included).
    expect(e.State).toMatch(/^[RSD]/);
  }
}

/**
 * The pids whose fate each attack checks: exec, the whole lifeline (4 processes); runner, PID 1 only (the
 * helpers are attacked too, but a job of the same uid may kill or stop them by design).
 */
const lifelinePids = (r: AttackReport, transport: TransportName) =>
  transport === 'exec' ? Object.keys(r.lifeline) : ['1'];

/** Every checked lifeline pid maps to `expected` in `results`. */
function expectForLifeline(
  r: AttackReport,
  transport: TransportName,
  given: unknown,
  expected: unknown,
) {
  const results = (given ?? {}) as Record<string, unknown>;
  const pids = lifelinePids(r, transport);
  expect(pids).toHaveLength(transport === 'exec' ? 4 : 1);
  expect(Object.fromEntries(pids.map((p) => [p, results[p]]))).toEqual(
    Object.fromEntries(pids.map((p) => [p, expected])),
  );
}

// ------------------------------------------------------------------------------------------------ programs

/**
 * The programs live in lifeline-attacks/<kind>/: `prelude` (helpers, and the lifeline as the attacker sees it:
 * every uid-0 process with its name, state and capability sets) followed by `<attack>`. Python runs them with
 * `python3 -c`, busybox with `sh -c` (ash; builtins only where the pid table may be full).
 */
function program(kind: ImageKind, attack: string): string {
  const dir = join(__dirname, 'lifeline-attacks', kind);
  const ext = kind === 'python' ? 'py' : 'sh';
  return (
    readFileSync(join(dir, `prelude.${ext}`), 'utf8') +
    readFileSync(join(dir, `${attack}.${ext}`), 'utf8')
  );
}

// ------------------------------------------------------------------------------------------------- checks

const CHECKS: Record<
  string,
  {
    check: (r: AttackReport, kind: ImageKind, transport: TransportName) => void;
    hostCheck?: (e: HostEvidence, kind: ImageKind) => void;
  }
> = {
  stop: {
    check: (r, _kind, t) => {
      // exec: the lifeline runs as root: EPERM. runner: PID 1 is of the same uid, so kill() is allowed, but the
      // kernel drops SIGSTOP and SIGKILL sent to a namespace's init from inside it: 'ok', and no effect (after).
      const refused = t === 'exec' ? 'EPERM' : 'ok';
      expectForLifeline(r, t, r.stop, refused);
      expectForLifeline(r, t, r.kill, refused);
      // Running or asleep: never stopped (T) nor a zombie (Z). D is a sleep too (a moment of uninterruptible
      // wait, e.g. a page fault while the attack loads the machine); it was seen once on the runner's PID 1.
      expectForLifeline(r, t, r.after, expect.stringMatching(/^[RSD]$/));
      // The same signal stops a process of its own (T): the attempt was real.
      expect(r.victimState).toBe('T');
    },
    // The background loop is still sending SIGSTOP and SIGKILL while the owner's fate is decided.
    hostCheck: (e) => expect(e.attackers.length).toBeGreaterThanOrEqual(1),
  },
  kill9: {
    check: (r, kind, t) => {
      expectForLifeline(r, t, r.alive, true);
      // exec: EPERM (root). runner: accepted and dropped by the kernel (PID 1 of the namespace), as for stop.
      expectForLifeline(r, t, r.direct, t === 'exec' ? 'EPERM' : 'ok');
      // kill -9 -1 did kill what it could: its own sleeping child.
      if (kind === 'python') expect(r.victimSignal).toBe(9);
      else expect(r.victimStatus).toBe(137);
    },
    hostCheck: (e) => expect(e.attackers.length).toBeGreaterThanOrEqual(1),
  },
  ptrace: {
    check: (r, _kind, t) => {
      expect(r.control).toBe('ok');
      // exec: root's processes. runner: the runner is non-dumpable, so the same uid is refused too.
      expectForLifeline(r, t, r.seize, 'EPERM');
      expectForLifeline(r, t, r.attach, 'EPERM');
      expectForLifeline(r, t, r.tracers, '0');
    },
    hostCheck: (e) => expect(e.attackers.length).toBeGreaterThanOrEqual(1),
  },
  procfd: {
    check: (r, kind, t) => {
      // On a child of its own the same opens and changes work: the attempts are real.
      expect(r.control).toMatchObject({
        fd: 'ok',
        fd0: 'ok',
        environ: 'ok',
        root: 'ok',
        nice: 'ok',
        oomAdj: 'ok',
      });
      const denied = {
        fd: 'EACCES',
        fd0: 'EACCES',
        fd1w: 'EACCES',
        environ: 'EACCES',
        mem: 'EACCES',
        oomAdj: 'EACCES',
        // exec: root's processes. runner: the kernel checks these two by uid, not by dumpability: a job may
        // renice the runner (upwards only) and read its limits. Everything behind /proc/1/* is refused
        // (non-dumpable: root-owned).
        nice: t === 'exec' ? 'EPERM' : 'ok',
        ...(kind === 'python' ? { prlimit: t === 'exec' ? 'EPERM' : 'ok' } : {}),
      };
      for (const p of lifelinePids(r, t)) {
        expect({ pid: p, ...r.open[p] }).toMatchObject({ pid: p, ...denied });
        expect(['EACCES', 'EPERM']).toContain(r.open[p].root);
      }
    },
    hostCheck: (e) => expect(e.attackers.length).toBeGreaterThanOrEqual(1),
  },
  pids: {
    check: (r, kind) => {
      expect(r.pidsCurrent).toBe(r.pidsMax);
      if (kind === 'python') {
        expect(r.error).toBe('EAGAIN');
        expect(r.forked).toBeGreaterThan(0);
      }
    },
    // The table stays full, and the bomb itself still runs (busybox: the interactive shell that retries).
    hostCheck: (e) => {
      expect(e.pidsCurrent).toBeGreaterThanOrEqual(e.pidsMax);
      expect(e.attackers.length).toBeGreaterThanOrEqual(1);
    },
  },
  mem: {
    check: (r) => {
      expect(r.oomKills).toBeGreaterThan(Number(r.oomKillsBefore));
    },
    hostCheck: (e) => {
      expect(e.oomKills).toBeGreaterThan(0);
      expect(e.memoryMaxUsage).toBeGreaterThan(e.memoryLimit * 0.9);
      expect(e.attackers.length).toBeGreaterThanOrEqual(1);
    },
  },
  cpu: {
    check: (r) => expect(r.spinners).toBe(4),
    hostCheck: (e) => {
      expect(e.attackers.length).toBe(4);
      expect(e.attackers.filter((p) => p.state === 'R').length).toBeGreaterThanOrEqual(1);
    },
  },
  tmpfs: {
    check: (r) => {
      const filled = Object.values(r.filled as Record<string, [number, string]>);
      expect(filled).toHaveLength(3);
      for (const [bytes, error] of filled) {
        expect(error).toBe('ENOSPC');
        expect(bytes).toBeGreaterThan(1 << 20);
      }
    },
    hostCheck: (e) => expect(e.attackers.length).toBeGreaterThanOrEqual(1),
  },
  fds: {
    check: (r, kind) => {
      if (kind === 'python') {
        expect(r.error).toBe('EMFILE');
        expect(r.opened).toBeGreaterThan(Number(r.nofile[0]) / 2);
      } else expect(r.closed).toEqual([0, 1, 2]);
    },
    hostCheck: (e, kind) => {
      expect(e.attackers.length).toBeGreaterThanOrEqual(1);
      const daemon = e.attackers.find((p) => p.fds !== null)!;
      // Its own stdio is gone (busybox) or replaced by what it opened afterwards (Python: /dev/null to EMFILE).
      if (kind === 'busybox')
        for (const fd of ['0', '1', '2']) expect(daemon.fds).not.toContain(fd);
      else expect(daemon.fds!.length).toBeGreaterThan(8);
    },
  },
};

/** The attacks of an image kind on a transport, in the order they are launched (the CPU-heavy ones last). */
export function attacksFor(kind: ImageKind, transport: TransportName = 'exec'): Attack[] {
  const names =
    kind === 'python'
      ? ['stop', 'kill9', 'ptrace', 'procfd', 'fds', 'tmpfs', 'pids', 'mem', 'cpu']
      : ['stop', 'kill9', 'procfd', 'fds', 'tmpfs', 'pids', 'mem', 'cpu'];
  return names.map((attack) => {
    const { check, hostCheck } = CHECKS[attack];
    const cmd =
      kind === 'python'
        ? ['python3', '-c', program(kind, attack)]
        : ['sh', '-c', program(kind, attack)];
    return {
      attack,
      cmd,
      env: { CPATK_MARK: marker(attack), CPATK_TRANSPORT: transport },
      check: (r: AttackReport) => {
        checkLifelineView(r.lifeline, transport);
        check(r, kind, transport);
      },
      hostCheck: hostCheck && ((e: HostEvidence) => hostCheck(e, kind)),
    };
  });
}
