import { createHash } from 'node:crypto';
import type { ContainerSpec } from '../engine/container-driver.interface';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';

/** What the pool's options decide of a container: all but its name, labels and main process (the transport's). */
export type ContainerShape = Omit<
  ContainerSpec,
  'name' | 'labels' | 'command' | 'init' | 'mainUser' | 'capAdd' | 'ready'
>;

/** Hash of everything that shapes a container, put on its labels. */
export function configHash(o: ResolvedContainerPoolOptions): string {
  const shape = {
    image: o.image,
    user: o.user,
    workdir: o.workdir,
    memoryBytes: o.memoryBytes,
    nanoCpus: o.nanoCpus,
    pidsLimit: o.pidsLimit,
    nofileLimit: o.nofileLimit,
    fileSizeLimitBytes: o.fileSizeLimitBytes,
    tmpSizeBytes: o.tmpSizeBytes,
    workdirSizeBytes: o.workdirSizeBytes,
    shmSizeBytes: o.shmSizeBytes,
    runtime: o.runtime ?? null,
    seccompProfile: o.seccompProfile ?? null,
    containerLifetimeMs: o.containerLifetimeMs,
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
}

/** The engine-neutral shape of every container of a pool with these options (name and labels come per create). */
export function containerSpecOf(o: ResolvedContainerPoolOptions): ContainerShape {
  return {
    image: o.image,
    user: o.user,
    workdir: o.workdir,
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${o.workdir}`],
    memoryBytes: o.memoryBytes,
    nanoCpus: o.nanoCpus,
    pidsLimit: o.pidsLimit,
    nofileLimit: o.nofileLimit,
    fileSizeLimitBytes: o.fileSizeLimitBytes,
    tmpfs: [
      { path: '/tmp', sizeBytes: o.tmpSizeBytes, mode: '1777', exec: false },
      { path: o.workdir, sizeBytes: o.workdirSizeBytes, mode: '0700', exec: true, owner: o.user },
    ],
    shmSizeBytes: o.shmSizeBytes,
    runtime: o.runtime,
    seccompProfile: o.seccompProfile,
    lifetimeMs: o.containerLifetimeMs,
  };
}
