import type { RunnerConnection } from './runner/runner-connection';
import type {
  ContainerDriver,
  DriverContainer,
  MainProcess,
} from '../engine/container-driver.interface';
import {
  ContainerPoolError,
  EngineUnavailableError,
  ImageUnavailableError,
  SandboxUnsupportedError,
} from '../errors/container-pool.errors';
import type { TransportSetting } from '../interfaces/container-pool-options.interface';
import { ExecTransport } from './exec/exec.transport';
import { RunnerStartError } from './runner/runner-connection';
import { RunnerTransport, type RunnerTransportOptions } from './runner/runner.transport';
import type {
  OomEvidence,
  OutputSinks,
  Transport,
  TransportJob,
  TransportName,
  TransportOutcome,
} from './transport.interface';

/** Creates a throwaway container with this main process (and removes it); rejects as a create would. */
export type Probe = (main: (deadline: Date) => MainProcess) => Promise<void>;

type Verdict = { runner: true } | { runner: false; reason: string };

/** Verdicts of the runner probe per driver, per image id and interpreter: probed once. */
const verdicts = new WeakMap<ContainerDriver, Map<string, Promise<Verdict>>>();

/** A create that failed because the interpreter is not in the image (the engine could not start it). */
const MISSING_PROGRAM = /executable file not found|no such file or directory|not found in \$PATH/i;

async function probeRunner(probe: Probe, runner: RunnerTransport): Promise<Verdict> {
  try {
    await probe((deadline) => runner.mainProcess(deadline));
    return { runner: true };
  } catch (err) {
    if (err instanceof RunnerStartError && err.exitedBeforeHello) {
      return { runner: false, reason: err.message };
    }
    if (
      (err instanceof SandboxUnsupportedError || err instanceof ContainerPoolError) &&
      !(err instanceof EngineUnavailableError) &&
      !(err instanceof ImageUnavailableError) &&
      MISSING_PROGRAM.test(err.message)
    ) {
      return {
        runner: false,
        reason: err instanceof SandboxUnsupportedError ? err.detail : err.message,
      };
    }
    // The engine, the image, a timeout: not the image's verdict. The preparation fails and is tried again.
    throw err;
  }
}

export interface ProfileTransportOptions extends Omit<RunnerTransportOptions, 'log'> {
  transport: TransportSetting;
  image: string;
  log: RunnerTransportOptions['log'] & { log(message: string): void };
}

/**
 * The transport of one profile: `exec`, `runner`, or (`auto`) the runner when the profile's image runs it,
 * decided at the pool's preparation by a probe (one throwaway runner container per image id and interpreter,
 * cached per driver). Each container keeps the transport that created it.
 */
export class ProfileTransport implements Transport {
  private readonly exec: ExecTransport;
  private readonly runner: RunnerTransport;
  private current: Transport;
  private readonly made = new WeakMap<DriverContainer, Transport>();
  /** Why `auto` chose exec, or null. */
  fallbackReason: string | null = null;

  constructor(
    private readonly driver: ContainerDriver,
    private readonly options: ProfileTransportOptions,
  ) {
    this.exec = new ExecTransport(driver, options.pythonCommand);
    this.runner = new RunnerTransport(driver, options);
    // Until the probe: what the setting names (auto starts as exec and is decided before the first create).
    this.current = options.transport === 'runner' ? this.runner : this.exec;
  }

  get name(): TransportName {
    return this.current.name;
  }

  get identity(): string {
    return this.current.identity;
  }

  /** The transport each image id was decided for (choose()), so that select() can switch at once. */
  private readonly byImage = new Map<string, Transport>();

  /**
   * Decides `auto` (and checks `runner`) for an image id and resolves with that transport; `exec` needs nothing.
   * Does not switch the transport new containers get: select() does, when the image becomes the one new
   * containers are made of (the preparation, a rollout or its revert).
   */
  async choose(imageId: string | null, probe: Probe): Promise<Transport> {
    const o = this.options;
    const image = imageId ?? o.image;
    const chosen = await this.decide(image, probe);
    this.byImage.set(image, chosen);
    return chosen;
  }

  /** New containers get the transport decided for this image id (by choose()); an unknown id changes nothing. */
  select(imageId: string | null): void {
    this.current = this.byImage.get(imageId ?? this.options.image) ?? this.current;
  }

  private async decide(image: string, probe: Probe): Promise<Transport> {
    const o = this.options;
    if (o.transport === 'exec') return this.exec;
    const key = `${image}\0${o.pythonCommand.join('\0')}`;
    let byImage = verdicts.get(this.driver);
    if (!byImage) verdicts.set(this.driver, (byImage = new Map<string, Promise<Verdict>>()));
    let verdict = byImage.get(key);
    if (!verdict && !this.driver.channels) {
      verdict = Promise.resolve({
        runner: false,
        reason: 'the engine driver cannot attach to a container main process',
      });
    }
    if (!verdict) {
      verdict = probeRunner(probe, this.runner);
      byImage.set(key, verdict);
      // A failed probe (engine, timeout) is not a verdict: the next preparation probes again.
      verdict.catch(() => byImage.delete(key));
    }
    const v = await verdict;
    if (v.runner) {
      if (!this.logged.has(image)) {
        this.logged.add(image);
        o.log.log(`transport ${o.transport}: runner for image ${o.image} (${image})`);
      }
      this.fallbackReason = null;
      return this.runner;
    }
    if (o.preloadModules?.length) {
      // Falling back to exec would silently drop them (and sessions): the profile asked for the runner.
      throw new SandboxUnsupportedError(
        `preloadModules (POOL_PRELOAD_MODULES) needs the runner transport, and the runner did not start in ` +
          `image ${o.image} with pythonCommand (${o.pythonCommand.join(' ')}): ${v.reason}. Use an image with ` +
          'Python >= 3.8, fix pythonCommand, or leave preloadModules empty',
      );
    }
    if (o.transport === 'runner') {
      throw new SandboxUnsupportedError(
        `transport "runner" needs Python >= 3.8 at pythonCommand (${o.pythonCommand.join(' ')}) in image ` +
          `${o.image}, and the runner did not start there: ${v.reason}. Use an image with Python, fix ` +
          'pythonCommand (POOL_PYTHON_COMMAND), or set transport exec (POOL_TRANSPORT=exec)',
      );
    }
    if (!this.logged.has(image)) {
      this.logged.add(image);
      o.log.log(
        `transport auto: exec for image ${o.image} (the runner cannot run there: ${v.reason})`,
      );
    }
    this.fallbackReason = v.reason;
    return this.exec;
  }

  private readonly logged = new Set<string>();

  mainProcess(deadline: Date): MainProcess {
    const transport = this.current;
    const main = transport.mainProcess(deadline);
    return {
      ...main,
      ready: async (container, signal) => {
        this.made.set(container, transport);
        await main.ready(container, signal);
      },
    };
  }

  private of(container: DriverContainer): Transport {
    return this.made.get(container) ?? this.current;
  }

  run(
    container: DriverContainer,
    job: TransportJob,
    sinks: OutputSinks,
    signal: AbortSignal,
  ): Promise<TransportOutcome> {
    return this.of(container).run(container, job, sinks, signal);
  }

  /** The transport that created the container (an execution's result names it). */
  nameOf(container: DriverContainer): TransportName {
    return this.of(container).name;
  }

  wasOomKilled(
    container: DriverContainer,
    evidence: OomEvidence,
    oomEventsBefore: number,
    outcome?: TransportOutcome,
  ): Promise<boolean> {
    return this.of(container).wasOomKilled(container, evidence, oomEventsBefore, outcome);
  }

  /** The runner connection of a runner container (sessions run over it); undefined on the exec transport. */
  sessionChannel(container: DriverContainer): RunnerConnection | undefined {
    const t = this.of(container);
    return t === this.runner ? this.runner.connectionOf(container) : undefined;
  }
}
