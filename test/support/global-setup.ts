import Dockerode from 'dockerode';
import { BUSYBOX_IMAGE, DATASCIENCE_IMAGE, SANDBOX_IMAGE } from './integration';

/**
 * The integration suite runs against a real engine and never skips: when the engine or an image is missing it
 * fails here with the command that fixes it (`npm test` runs that command itself).
 */
export default async function globalSetup(): Promise<void> {
  // globalTeardown runs in this process: it checks only containers made after this moment.
  process.env.CONTAINER_POOL_TEST_RUN_STARTED_MS = String(Date.now());
  const docker = new Dockerode();
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(
      `Integration tests need a Docker engine and none answers (${(err as Error).message}). ` +
        'Run `npm test` (it starts one via scripts/ensure-docker.sh) or start dockerd yourself.',
    );
  }
  for (const image of [SANDBOX_IMAGE, BUSYBOX_IMAGE, DATASCIENCE_IMAGE]) {
    try {
      await docker.getImage(image).inspect();
    } catch {
      throw new Error(
        `Integration tests need image ${image}. Build it with \`bash scripts/build-sandbox-image.sh\` ` +
          '(`npm test` does this by itself).',
      );
    }
  }
}
