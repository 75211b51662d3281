import type Dockerode from 'dockerode';
import type { ContainerSpec } from '../container-driver.interface';

/**
 * The container's Env: the spec's entries, plus every variable the image itself sets (its ENV) and HOSTNAME named
 * without a value, which makes the engine unset them, in the container and in every exec. So a program sees only
 * what the pool and its caller pass, never the image's ENV (e.g. GPG_KEY, PYTHON_VERSION) nor the engine's HOSTNAME.
 */
export function sandboxEnv(env: string[], imageEnv: string[] = []): string[] {
  const keyOf = (entry: string) =>
    entry.includes('=') ? entry.slice(0, entry.indexOf('=')) : entry;
  const given = new Set(env.map(keyOf));
  const unset = [...imageEnv.map(keyOf), 'HOSTNAME'].filter((k) => k && !given.has(k));
  return [...env, ...new Set(unset)];
}

/** Builds the engine's createContainer body: the hardening table of docs/ in one place. */
export function toCreateOptions(
  spec: ContainerSpec,
  imageEnv: string[] = [],
): Dockerode.ContainerCreateOptions {
  const securityOpt = ['no-new-privileges:true'];
  if (spec.seccompProfile) securityOpt.push(`seccomp=${spec.seccompProfile}`);
  const tmpfs: Record<string, string> = {};
  for (const t of spec.tmpfs) {
    const opts = ['rw', 'nosuid', 'nodev', t.exec ? 'exec' : 'noexec', `size=${t.sizeBytes}`];
    opts.push(`mode=${t.mode}`);
    if (t.owner) {
      const [uid, gid] = t.owner.split(':');
      opts.push(`uid=${uid}`, `gid=${gid ?? uid}`);
    }
    tmpfs[t.path] = opts.join(',');
  }
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: spec.command,
    Entrypoint: [],
    // The main process's user (the transport's choice); executions carry their own. No WorkingDir: runc would
    // copy the mode of the directory dockerd makes for it onto the work dir's tmpfs (0755); each exec sets its
    // own cwd, so the tmpfs stays 0700.
    User: spec.mainUser,
    Env: sandboxEnv(spec.env, imageEnv),
    Labels: spec.labels,
    Hostname: 'sandbox',
    Tty: false,
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: 'none',
      AutoRemove: true,
      Init: spec.init,
      Privileged: false,
      ReadonlyRootfs: true,
      Tmpfs: tmpfs,
      ShmSize: spec.shmSizeBytes,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes,
      NanoCpus: spec.nanoCpus,
      PidsLimit: spec.pidsLimit,
      CapDrop: ['ALL'],
      CapAdd: spec.capAdd ?? [],
      SecurityOpt: securityOpt,
      Ulimits: [
        { Name: 'nofile', Soft: spec.nofileLimit, Hard: spec.nofileLimit },
        { Name: 'core', Soft: 0, Hard: 0 },
        { Name: 'fsize', Soft: spec.fileSizeLimitBytes, Hard: spec.fileSizeLimitBytes },
      ],
      LogConfig: { Type: 'none', Config: {} },
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      PidMode: '',
      IpcMode: 'private',
      UTSMode: '',
      Binds: [],
      Mounts: [],
      Devices: [],
      ...(spec.runtime ? { Runtime: spec.runtime } : {}),
    },
  };
}
