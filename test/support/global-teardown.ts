import Dockerode from 'dockerode';

/** Fails the run when a test left a container behind: of a test pool (`test-*`) or labelled by a test. */
export default async function globalTeardown(): Promise<void> {
  const docker = new Dockerode();
  const deadline = Date.now() + 10_000;
  let left: Dockerode.ContainerInfo[] = [];
  while (Date.now() < deadline) {
    const pool = await docker.listContainers({
      all: true,
      filters: { label: ['io.container-pool.managed-by=container-pool'] },
    });
    const tests = await docker.listContainers({
      all: true,
      filters: { label: ['io.container-pool.test'] },
    });
    // This run's pools only (uniquePoolName() puts the runner's pid in the name): a parallel run is not ours.
    const ours = pool.filter((c) => {
      const name = c.Labels['io.container-pool.pool'] ?? '';
      return name.startsWith('test-') && name.includes(`-${process.pid}-`);
    });
    // Test-labelled containers made during this run (engine time is in seconds).
    const startedSec = Number(process.env.CONTAINER_POOL_TEST_RUN_STARTED_MS ?? 0) / 1000 - 1;
    left = [...ours, ...tests.filter((c) => c.Created >= startedSec)];
    if (!left.length) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  await Promise.allSettled(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  throw new Error(
    `containers left behind by the tests (now removed): ${left.map((c) => `${c.Names[0]} ${c.State}`).join(', ')}`,
  );
}
