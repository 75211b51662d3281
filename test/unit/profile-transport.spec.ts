import type { ContainerDriver } from '../../src/container-pool/engine/container-driver.interface';
import {
  ContainerCreateError,
  EngineUnavailableError,
  SandboxUnsupportedError,
} from '../../src/container-pool/errors/container-pool.errors';
import type { TransportSetting } from '../../src/container-pool/interfaces/container-pool-options.interface';
import { ProfileTransport } from '../../src/container-pool/transport/profile-transport';
import { RunnerStartError } from '../../src/container-pool/transport/runner/runner-connection';

const quiet = { log: () => undefined, warn: () => undefined, debug: () => undefined };

function transportOf(setting: TransportSetting, driver: ContainerDriver) {
  return new ProfileTransport(driver, {
    transport: setting,
    image: 'img',
    pythonCommand: ['python3'],
    user: '65534:65534',
    baseEnv: ['PATH=/bin', 'HOME=/w'],
    log: quiet,
  });
}

describe('transport selection (auto | runner | exec)', () => {
  it('auto: the runner when the probe container says hello, probed once per image id and driver', async () => {
    const driver = { channels: true } as ContainerDriver;
    const probe = jest.fn(() => Promise.resolve());
    const a = transportOf('auto', driver);
    const b = transportOf('auto', driver);
    expect(a.name).toBe('exec');
    await a.choose('sha256:1', probe);
    await b.choose('sha256:1', probe);
    // choose() decides; select() switches what new containers get.
    expect([a.name, b.name]).toEqual(['exec', 'exec']);
    a.select('sha256:1');
    b.select('sha256:1');
    expect([a.name, b.name]).toEqual(['runner', 'runner']);
    expect(probe).toHaveBeenCalledTimes(1);
    await b.choose('sha256:2', probe);
    expect(probe).toHaveBeenCalledTimes(2);
    expect(a.identity).toMatch(/^runner:/);
    // An id never chosen changes nothing.
    a.select('sha256:unknown');
    expect(a.name).toBe('runner');
  });

  it('auto: exec when the runner ends before its hello or the interpreter is missing', async () => {
    const driver = { channels: true } as ContainerDriver;
    const early = transportOf('auto', driver);
    await expect(
      early.choose('sha256:old-python', () =>
        Promise.reject(new RunnerStartError('runner: needs python >= 3.8', true)),
      ),
    ).resolves.toMatchObject({ name: 'exec' });
    early.select('sha256:old-python');
    expect(early.name).toBe('exec');
    expect(early.fallbackReason).toMatch(/needs python/);
    const missing = transportOf('auto', driver);
    await missing.choose('sha256:busybox', () =>
      Promise.reject(
        new SandboxUnsupportedError('exec: "python3": executable file not found in $PATH'),
      ),
    );
    expect(missing.name).toBe('exec');
  });

  it('a failure that is not the image (engine, timeout) is no verdict: it fails the preparation, the next probes again', async () => {
    const driver = { channels: true } as ContainerDriver;
    const t = transportOf('auto', driver);
    await expect(
      t.choose('sha256:1', () => Promise.reject(new EngineUnavailableError('down'))),
    ).rejects.toBeInstanceOf(EngineUnavailableError);
    await expect(
      t.choose('sha256:1', () =>
        Promise.reject(new ContainerCreateError('create took longer than 30000 ms')),
      ),
    ).rejects.toBeInstanceOf(ContainerCreateError);
    await t.choose('sha256:1', () => Promise.resolve());
    t.select('sha256:1');
    expect(t.name).toBe('runner');
  });

  it('runner: an image that cannot run it fails the profile with SandboxUnsupportedError saying what to do', async () => {
    const t = transportOf('runner', { channels: true } as ContainerDriver);
    await expect(
      t.choose('sha256:1', () =>
        Promise.reject(new RunnerStartError('it exited: no python3', true)),
      ),
    ).rejects.toThrow(/transport "runner" needs Python >= 3.8.*POOL_TRANSPORT=exec/);
  });

  it('exec probes nothing; a driver without channels makes auto exec and runner unsupported', async () => {
    const probe = jest.fn(() => Promise.resolve());
    const exec = transportOf('exec', { channels: true } as ContainerDriver);
    await exec.choose('sha256:1', probe);
    expect(exec.name).toBe('exec');
    const noChannels = {} as ContainerDriver;
    const auto = transportOf('auto', noChannels);
    await expect(auto.choose('sha256:1', probe)).resolves.toMatchObject({ name: 'exec' });
    await expect(
      transportOf('runner', noChannels).choose('sha256:1', probe),
    ).rejects.toBeInstanceOf(SandboxUnsupportedError);
    expect(probe).not.toHaveBeenCalled();
  });
});
