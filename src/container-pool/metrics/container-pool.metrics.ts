import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ContainerPoolEventMap, ContainerPoolService } from '../container-pool.service';
import type { PoolTotals } from '../interfaces/container.interface';
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
 * Prometheus metrics of one pool, in a registry of its own (two apps or two pools in one process never
 * collide). Every series carries the label `pool`. Gauges and counters are read from stats() at scrape time;
 * histograms are fed by the pool's events. Inject it to merge `registry` into a registry of your own.
 */
@Injectable()
export class ContainerPoolMetrics implements OnModuleDestroy {
  readonly registry = new Registry();
  private readonly acquireWait: Histogram;
  private readonly createDuration: Histogram;
  private readonly execDuration: Histogram<'outcome'>;
  private readonly unsubscribe: () => void;

  constructor(private readonly pool: ContainerPoolService) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ pool: pool.options.name });
    const stats = () => pool.stats();

    new Gauge({
      name: 'container_pool_containers',
      help: 'Containers of the pool by state.',
      labelNames: ['state'],
      registers,
      collect() {
        const s = stats();
        this.set({ state: 'idle' }, s.idle);
        this.set({ state: 'leased' }, s.leased);
        this.set({ state: 'creating' }, s.creating);
        this.set({ state: 'destroying' }, s.destroying);
      },
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name: `container_pool_${name}`,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('waiting', 'Acquires waiting for a container.', () => stats().waiting);
    gauge('size', 'Idle containers the pool keeps warm (target).', () => stats().size);
    gauge('max_containers', 'Cap on all containers of the pool.', () => stats().maxContainers);
    gauge('engine_available', '1 when the Docker engine answers.', () => +stats().engineAvailable);
    gauge('draining', '1 while an operator has drained the pool.', () => +stats().draining);

    for (const t of TOTALS) {
      new Counter({
        name: `container_pool_${t.name}`,
        help: t.help,
        registers,
        collect() {
          this.reset();
          this.inc(stats().totals[t.key]);
        },
      });
    }

    this.acquireWait = new Histogram({
      name: 'container_pool_acquire_wait_seconds',
      help: 'Time an acquire waited for a container.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.createDuration = new Histogram({
      name: 'container_pool_create_duration_seconds',
      help: 'Time to create and start a container.',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    });
    this.execDuration = new Histogram({
      name: 'container_pool_exec_duration_seconds',
      help: 'Duration of executions by outcome (success, failure, timeout, oom).',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });

    const onAcquired = (e: ContainerPoolEventMap['acquired'][0]) =>
      this.acquireWait.observe(e.waitMs / 1000);
    const onCreated = (e: ContainerPoolEventMap['created'][0]) =>
      this.createDuration.observe(e.durationMs / 1000);
    const onExecuted = (e: ContainerPoolEventMap['executed'][0]) =>
      this.execDuration.observe({ outcome: outcomeOf(e.result) }, e.result.durationMs / 1000);
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
