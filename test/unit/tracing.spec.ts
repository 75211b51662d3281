import { SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { FakeDriver, hangingExec } from '../support/fake-driver';
import { useFakePools } from '../support/pool-testing';

describe('OpenTelemetry spans (optional @opentelemetry/api, with the SDK in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const start = useFakePools();

  beforeAll(() => trace.setGlobalTracerProvider(provider));
  afterAll(async () => {
    trace.disable();
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());

  const spans = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

  it('acquire, create, execute and release, with the container_pool attributes', async () => {
    const { pool, driver } = await start({ name: 'traced', size: 1 });
    await pool.initialize();
    const r = await pool.run({ cmd: ['echo', 'hi'] });
    const [create] = spans('container-pool.create');
    expect(create.attributes).toMatchObject({
      'container_pool.profile': 'traced',
      'container_pool.container_id': driver.created[0].id,
    });
    expect(spans('container-pool.acquire')[0].attributes).toMatchObject({
      'container_pool.profile': 'traced',
      'container_pool.container_id': r.containerId,
    });
    expect(spans('container-pool.execute')[0].attributes).toEqual({
      'container_pool.profile': 'traced',
      'container_pool.container_id': r.containerId,
      'container_pool.transport': 'exec',
      'container_pool.exit_code': 0,
      'container_pool.timed_out': false,
      'container_pool.oom_killed': false,
    });
    expect(spans('container-pool.release')[0].attributes).toEqual({
      'container_pool.profile': 'traced',
      'container_pool.container_id': r.containerId,
    });
  });

  it('a timeout is an attribute of the execute span; a failed acquire is an error span', async () => {
    const driver = new FakeDriver();
    driver.execBehaviour = hangingExec;
    const { pool } = await start({ size: 0, maxContainers: 1 }, driver);
    await pool.initialize();
    const r = await pool.run({ cmd: ['sleep', '9'], timeoutMs: 20 });
    expect(r.timedOut).toBe(true);
    expect(spans('container-pool.execute')[0].attributes).toMatchObject({
      'container_pool.timed_out': true,
    });
    expect(spans('container-pool.execute')[0].attributes).not.toHaveProperty(
      'container_pool.exit_code',
    );
    const held = await pool.acquire();
    await expect(pool.acquire({ timeoutMs: 10 })).rejects.toThrow(/No container/);
    const failed = spans('container-pool.acquire').find(
      (s) => s.status.code === SpanStatusCode.ERROR,
    );
    expect(failed?.events.map((e) => e.name)).toContain('exception');
    pool.release(held);
  });
});

describe('without @opentelemetry/api', () => {
  it('runs the work, records nothing', async () => {
    await jest.isolateModulesAsync(async () => {
      jest.doMock('@opentelemetry/api', () => {
        throw new Error("Cannot find module '@opentelemetry/api'");
      });
      const tracing = await import('../../src/container-pool/tracing');
      const seen: unknown[] = [];
      await expect(
        tracing.withSpan('acquire', {}, (span) => (seen.push(span), Promise.resolve(42))),
      ).resolves.toBe(42);
      expect(tracing.withSpanSync('release', {}, (span) => (seen.push(span), 'ok'))).toBe('ok');
      expect(seen).toEqual([null, null]);
    });
    jest.dontMock('@opentelemetry/api');
  });
});
