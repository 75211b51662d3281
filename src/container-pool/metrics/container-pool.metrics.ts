import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ContainerPoolEventMap, ContainerPoolService } from '../container-pool.service';
import type { PoolStats, PoolTotals } from '../interfaces/container.interface';
import type { ExecResult } from '../interfaces/exec-result.interface';

const TOTALS: { key: keyof PoolTotals; name: string; help: string }[] = [
  { key: 'created', name: 'containers_created_total', help: 'Containers created and started.' },
  { key: 'destroyed', name: 'containers_destroyed_total', help: 'Containers removed.' },
  {
    key: 'failedCreates',
    name: 'container_create_failures_total',
    help: 'Container creates that failed.',
  },
  { key: 'acquired', name: 'acquires_total', help: 'Containers handed out.' },
  { key: 'acquireTimeouts', name: 'acquire_timeouts_total', help: 'Acquires that timed out.' },
  { key: 'executions', name: 'executions_total', help: 'Executions that produced a result.' },
  {
    key: 'timeouts',
    name: 'execution_timeouts_total',
    help: 'Executions killed by their timeout.',
  },
  { key: 'ooms', name: 'execution_ooms_total', help: 'Executions hit by the OOM killer.' },
  {
    key: 'truncated',
    name: 'executions_truncated_total',
    help: 'Executions whose output was truncated.',
  },
  {
    key: 'containersLost',
    name: 'containers_lost_total',
    help: 'Containers that died outside the pool.',
  },
  {
    key: 'orphansRemoved',
    name: 'orphans_removed_total',
    help: 'Leftovers of dead instances removed.',
  },
];

/** Outcome label of an execution: success (exit 0), failure (other exit), timeout, oom. */
export function outcomeOf(r: ExecResult): 'success' | 'failure' | 'timeout' | 'oom' {
  if (r.timedOut) return 'timeout';
  if (r.oomKilled) return 'oom';
  return r.exitCode === 0 ? 'success' : 'failure';
}

/**
 * Prometheus metrics of the module, in a registry of its own (two apps or two pools in one process never
 * collide). Every series carries the labels `pool` (the module's name) and `profile`. Gauges and counters are
 * read from each profile's stats() at scrape time; histograms are fed by the pools' events. Inject it to merge
 * `registry` into a registry of your own.
 */
@Injectable()
export class ContainerPoolMetrics implements OnModuleDestroy {
  readonly registry = new Registry();
  private readonly acquireWait: Histogram<'profile'>;
  private readonly createDuration: Histogram<'profile'>;
  private readonly execDuration: Histogram<'profile' | 'outcome'>;
  private readonly unsubscribe: () => void;

  constructor(private readonly pool: ContainerPoolService) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ pool: pool.options.name });
    /** Each profile's stats, once per collect of a metric. */
    const each = (): [string, PoolStats][] =>
      pool.profileNames().map((name) => [name, pool.pool(name).stats()]);

    new Gauge({
      name: 'container_pool_containers',
      help: 'Containers of the profile by state.',
      labelNames: ['profile', 'state'],
      registers,
      collect() {
        for (const [profile, s] of each()) {
          this.set({ profile, state: 'idle' }, s.idle);
          this.set({ profile, state: 'leased' }, s.leased);
          this.set({ profile, state: 'creating' }, s.creating);
          this.set({ profile, state: 'destroying' }, s.destroying);
        }
      },
    });
    const gauge = (name: string, help: string, read: (s: PoolStats) => number) =>
      new Gauge({
        name: `container_pool_${name}`,
        help,
        labelNames: ['profile'],
        registers,
        collect() {
          for (const [profile, s] of each()) this.set({ profile }, read(s));
        },
      });
    gauge('waiting', 'Acquires waiting for a container.', (s) => s.waiting);
    gauge('size', 'Idle containers the profile keeps warm (target).', (s) => s.size);
    gauge('max_containers', 'Cap on all containers of the profile.', (s) => s.maxContainers);
    gauge('engine_available', '1 when the Docker engine answers.', (s) => +s.engineAvailable);
    gauge('draining', '1 while an operator has drained the profile.', (s) => +s.draining);

    for (const t of TOTALS) {
      new Counter({
        name: `container_pool_${t.name}`,
        help: t.help,
        labelNames: ['profile'],
        registers,
        collect() {
          this.reset();
          for (const [profile, s] of each()) this.inc({ profile }, s.totals[t.key]);
        },
      });
    }

    gauge('sessions_open', 'Open code-interpreter sessions.', (s) => s.sessions?.open ?? 0);
    const sessionCounter = (name: string, help: string, read: (s: PoolStats) => number) =>
      new Counter({
        name: `container_pool_${name}`,
        help,
        labelNames: ['profile'],
        registers,
        collect() {
          this.reset();
          for (const [profile, s] of each()) this.inc({ profile }, read(s));
        },
      });
    sessionCounter('sessions_opened_total', 'Sessions opened.', (s) => s.sessions?.opened ?? 0);
    sessionCounter('sessions_closed_total', 'Sessions closed.', (s) => s.sessions?.closed ?? 0);
    sessionCounter('session_calls_total', 'Calls run in sessions.', (s) => s.sessions?.calls ?? 0);
    new Counter({
      name: 'container_pool_session_ladder_steps_total',
      help: 'Timeout ladder steps of session calls: interrupt (KeyboardInterrupt), kill (processes killed, state lost), recycle (container replaced, session lost).',
      labelNames: ['profile', 'step'],
      registers,
      collect() {
        this.reset();
        for (const [profile, s] of each()) {
          this.inc({ profile, step: 'interrupt' }, s.sessions?.interrupts ?? 0);
          this.inc({ profile, step: 'kill' }, s.sessions?.kills ?? 0);
          this.inc({ profile, step: 'recycle' }, s.sessions?.recycles ?? 0);
        }
      },
    });

    this.acquireWait = new Histogram({
      name: 'container_pool_acquire_wait_seconds',
      help: 'Time an acquire waited for a container.',
      labelNames: ['profile'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.createDuration = new Histogram({
      name: 'container_pool_create_duration_seconds',
      help: 'Time to create and start a container.',
      labelNames: ['profile'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    });
    this.execDuration = new Histogram({
      name: 'container_pool_exec_duration_seconds',
      help: 'Duration of executions by outcome (success, failure, timeout, oom).',
      labelNames: ['profile', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });

    const defaultProfile = pool.profileNames()[0];
    const profileOf = (e: { profile?: string }) => ({ profile: e.profile ?? defaultProfile });
    const onAcquired = (e: ContainerPoolEventMap['acquired'][0]) =>
      this.acquireWait.observe(profileOf(e), e.waitMs / 1000);
    const onCreated = (e: ContainerPoolEventMap['created'][0]) =>
      this.createDuration.observe(profileOf(e), e.durationMs / 1000);
    const onExecuted = (e: ContainerPoolEventMap['executed'][0]) =>
      this.execDuration.observe(
        { ...profileOf(e), outcome: outcomeOf(e.result) },
        e.result.durationMs / 1000,
      );
    pool.events.on('acquired', onAcquired);
    pool.events.on('created', onCreated);
    pool.events.on('executed', onExecuted);
    this.unsubscribe = () => {
      pool.events.off('acquired', onAcquired);
      pool.events.off('created', onCreated);
      pool.events.off('executed', onExecuted);
    };
  }

  /** The Prometheus text exposition. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  onModuleDestroy(): void {
    this.unsubscribe();
  }
}
