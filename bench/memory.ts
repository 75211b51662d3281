/**
 * Memory of idle containers, seen from the host. Method:
 * - the container's own cgroup: `memory.usage_in_bytes` (cgroup v1, includes page cache) and `total_rss` of
 *   `memory.stat` under /sys/fs/cgroup/memory/docker/<id>/ (cgroup v2: `memory.current` / `anon` of
 *   `memory.stat` under /sys/fs/cgroup/system.slice/docker-<id>.scope/ or /sys/fs/cgroup/docker/<id>/);
 * - the containerd-shim that holds the container: its anonymous memory (`Anonymous` of /proc/<pid>/smaps_rollup:
 *   what one more shim costs) and its PSS (plus its share of the shim binary's pages, which are in the page
 *   cache anyway);
 * - the engine: RSS (VmRSS) of dockerd and containerd, before and after the containers exist;
 * - the machine: MemAvailable of /proc/meminfo, before and after (noisy on a shared machine).
 */
import { readdir, readFile } from 'node:fs/promises';

export interface HostMemorySnapshot {
  /** Sum over the given containers; null when no cgroup file was found. */
  cgroupUsageBytes: number | null;
  cgroupRssBytes: number | null;
  /** Sum of the PSS of their shims; null when no shim was found. */
  shimPssBytes: number | null;
  /** Sum of the anonymous memory of their shims; null when no shim was found. */
  shimAnonBytes: number | null;
  shimsFound: number;
  cgroupsFound: number;
  dockerdRssBytes: number;
  containerdRssBytes: number;
  memAvailableBytes: number;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

function statField(text: string, key: string): number | null {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** { usage, rss } of one container's memory cgroup, v1 or v2. */
export async function containerCgroupMemory(
  id: string,
): Promise<{ usage: number; rss: number } | null> {
  const v1 = `/sys/fs/cgroup/memory/docker/${id}`;
  const usage1 = await readText(`${v1}/memory.usage_in_bytes`);
  if (usage1 !== null) {
    const stat = (await readText(`${v1}/memory.stat`)) ?? '';
    return { usage: Number(usage1.trim()), rss: statField(stat, 'total_rss') ?? NaN };
  }
  for (const v2 of [
    `/sys/fs/cgroup/system.slice/docker-${id}.scope`,
    `/sys/fs/cgroup/docker/${id}`,
  ]) {
    const current = await readText(`${v2}/memory.current`);
    if (current !== null) {
      const stat = (await readText(`${v2}/memory.stat`)) ?? '';
      return { usage: Number(current.trim()), rss: statField(stat, 'anon') ?? NaN };
    }
  }
  return null;
}

interface Proc {
  pid: number;
  comm: string;
  cmdline: string;
}

async function processes(): Promise<Proc[]> {
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d));
  const rows = await Promise.all(
    pids.map(async (pid) => {
      const comm = (await readText(`/proc/${pid}/comm`))?.trim() ?? '';
      if (!/^(dockerd|containerd|containerd-shim)/.test(comm)) return null;
      const cmdline = ((await readText(`/proc/${pid}/cmdline`)) ?? '').split('\0').join(' ');
      return { pid: Number(pid), comm, cmdline };
    }),
  );
  return rows.filter((r): r is Proc => r !== null);
}

async function kbField(path: string, key: string): Promise<number> {
  const text = (await readText(path)) ?? '';
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

export async function readHostMemory(containerIds: string[]): Promise<HostMemorySnapshot> {
  const procs = await processes();
  let dockerdRssBytes = 0;
  let containerdRssBytes = 0;
  for (const p of procs) {
    if (p.comm === 'dockerd') dockerdRssBytes += await kbField(`/proc/${p.pid}/status`, 'VmRSS');
    if (p.comm === 'containerd')
      containerdRssBytes += await kbField(`/proc/${p.pid}/status`, 'VmRSS');
  }
  let cgroupUsage = 0;
  let cgroupRss = 0;
  let cgroupsFound = 0;
  let shimPss = 0;
  let shimAnon = 0;
  let shimsFound = 0;
  const shims = procs.filter((p) => p.comm.startsWith('containerd-shim'));
  for (const id of containerIds) {
    const cg = await containerCgroupMemory(id);
    if (cg) {
      cgroupsFound++;
      cgroupUsage += cg.usage;
      cgroupRss += cg.rss;
    }
    const shim = shims.find((p) => p.cmdline.includes(` -id ${id}`));
    if (shim) {
      shimsFound++;
      shimPss += await kbField(`/proc/${shim.pid}/smaps_rollup`, 'Pss');
      shimAnon += await kbField(`/proc/${shim.pid}/smaps_rollup`, 'Anonymous');
    }
  }
  const memAvailableBytes = await kbField('/proc/meminfo', 'MemAvailable');
  return {
    cgroupUsageBytes: cgroupsFound ? cgroupUsage : null,
    cgroupRssBytes: cgroupsFound ? cgroupRss : null,
    shimPssBytes: shimsFound ? shimPss : null,
    shimAnonBytes: shimsFound ? shimAnon : null,
    shimsFound,
    cgroupsFound,
    dockerdRssBytes,
    containerdRssBytes,
    memAvailableBytes,
  };
}
