import type { TransportOutcome } from './transport.interface';

/**
 * The job's own verdict on the OOM killer, when its transport measured one: the runner reads the memory
 * cgroup's kill counter before and after each job. That count belongs to this job alone; the engine's `oom`
 * event does not: it may arrive a moment late, while the container's next job runs, and must not be counted
 * into that job. null: the transport measured nothing, the engine's events decide.
 */
export function countedOomKill(outcome: TransportOutcome | undefined): boolean | null {
  const after = outcome?.oomKills;
  const before = outcome?.oomKillsBefore;
  if (after === undefined || after === null || before === undefined || before === null) return null;
  return after > before;
}
