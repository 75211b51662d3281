import type Dockerode from 'dockerode';
import { ImageUnavailableError } from '../../errors/container-pool.errors';
import type { PullPolicy } from '../../interfaces/container-pool-options.interface';
import { deadline } from './docker-call';
import {
  describe,
  isConnectionError,
  statusOf,
  toCreateError,
  toEngineError,
} from './docker-errors';

/** Images on the engine: presence by pull policy, pulls followed to their end, the image's own ENV (cached). */
export class DockerImages {
  private readonly imageEnv = new Map<string, string[]>();

  constructor(private readonly docker: Dockerode) {}

  /** Makes sure the image is there by the policy (a pull followed to its end); resolves with its id. */
  async ensure(
    image: string,
    policy: PullPolicy,
    log: (message: string) => void,
  ): Promise<string | undefined> {
    this.imageEnv.delete(image);
    let present: boolean;
    let id: string | undefined;
    try {
      const inspected = await this.docker
        .getImage(image)
        .inspect(deadline() as Dockerode.ImageInspectOptions);
      this.imageEnv.set(image, inspected.Config?.Env ?? []);
      id = inspected.Id;
      present = true;
    } catch (err) {
      if (statusOf(err) !== 404) throw toEngineError(err, `inspecting image ${image}`);
      present = false;
    }
    if (present && policy !== 'always') return id;
    if (!present && policy === 'never') {
      throw new ImageUnavailableError(image, 'it is not on the engine and pullPolicy is never', {
        retryable: false,
      });
    }
    log(`pulling ${image} (pullPolicy ${policy})`);
    await this.pull(image, log);
    this.imageEnv.delete(image);
    return this.envOf(image).then(
      () => this.idOf(image),
      () => undefined,
    );
  }

  private async idOf(image: string): Promise<string | undefined> {
    try {
      return (
        await this.docker.getImage(image).inspect(deadline() as Dockerode.ImageInspectOptions)
      ).Id;
    } catch {
      return undefined;
    }
  }

  /**
   * The image's own ENV entries (cached per image name until the next ensureImage). Without them the image's
   * variables could not be unset, so a failure fails the create.
   */
  async envOf(image: string, signal?: AbortSignal): Promise<string[]> {
    const known = this.imageEnv.get(image);
    if (known) return known;
    try {
      const inspected = await this.docker
        .getImage(image)
        .inspect(deadline(signal) as Dockerode.ImageInspectOptions);
      const env = inspected.Config?.Env ?? [];
      this.imageEnv.set(image, env);
      return env;
    } catch (err) {
      if (statusOf(err) === 404)
        throw new ImageUnavailableError(image, 'the engine does not have it');
      throw toCreateError(err, image);
    }
  }

  private async pull(image: string, log: (message: string) => void): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(image);
    } catch (err) {
      if (isConnectionError(err) && statusOf(err) === undefined) throw toEngineError(err, 'pull');
      throw new ImageUnavailableError(image, `the pull failed: ${describe(err)}`, { cause: err });
    }
    const started = Date.now();
    let lastLog = 0;
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: unknown, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          const failed = events?.find((e) => e.error || e.errorDetail);
          if (err || failed) {
            const detail = failed?.errorDetail?.message ?? failed?.error ?? describe(err);
            reject(new ImageUnavailableError(image, `the pull failed: ${detail}`, { cause: err }));
          } else {
            log(`pulled ${image} in ${Date.now() - started} ms`);
            resolve();
          }
        },
        (event: { status?: string; id?: string; progress?: string }) => {
          const now = Date.now();
          if (now - lastLog >= 2000) {
            lastLog = now;
            log(
              `pull ${image}: ${[event.id, event.status, event.progress].filter(Boolean).join(' ')}`,
            );
          }
        },
      );
    });
  }
}
