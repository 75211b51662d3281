import { createHash } from 'node:crypto';
import type { ContainerSpec } from '../engine/container-driver.interface';
import type { ResolvedContainerPoolOptions } from '../interfaces/container-pool-options.interface';

/** What the pool's options decide of a container: all but its name, labels and main process (the transport's). */
export type ContainerShape = Omit<
  ContainerSpec,
  'name' | 'labels' | 'command' | 'init' | 'mainUser' | 'capAdd' | 'ready'
>;

/**
 * The generation of the containers made from these options: a hash of every field that reaches container
 * creation (the image's engine id, user, env, limits, tmpfs, shm, runtime, seccomp, lifetime) and of the
 * transport's identity (`exec`, or the runner and its version), put on each container's generation label. Size,
 * caps and timeouts are not part of it: changing them replaces no container.
 */
export function generationOf(
  o: ResolvedContainerPoolOptions,
  imageId: string,
  transportIdentity: string,
): string {
  const { image: _name, ...shape } = containerSpecOf(o);
  void _name;
  const fields = {
    imageId,
    transport: transportIdentity,
    ...shape,
    runtime: shape.runtime ?? null,
    seccompProfile: shape.seccompProfile ?? null,
  };
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 16);
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
