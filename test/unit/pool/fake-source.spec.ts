/** The test doubles themselves: what the pool specs rely on. */
import {
  ContainerRemoveError,
  EngineUnavailableError,
  ExecutionAbortedError,
  ImageUnavailableError,
} from '../../../src/container-pool/errors/container-pool.errors';
import {
  FakeContainerSource,
  FakeEngineStatus,
  FakeExecution,
  flush,
} from '../../support/fake-source';

describe('FakeContainerSource', () => {
  it('creates succeed on their own, or fail with createError', async () => {
    const source = new FakeContainerSource();
    const ok = source.create();
    expect(ok.name).toBe('fake-1');
    const c = await ok.ready;
    expect(c).toMatchObject({ name: 'fake-1', image: 'fake:latest' });
    expect(c.expiry.getTime()).toBeGreaterThan(c.createdAt.getTime());
    expect(source.live.has(c.id)).toBe(true);
    source.createError = new ImageUnavailableError('img', 'gone');
    await expect(source.create().ready).rejects.toBe(source.createError);
    expect(source.createCalls).toBe(2);
    expect(source.creatingNow).toBe(0);
  });

  it('holds creates until settled, and aborting one fails it', async () => {
    const source = new FakeContainerSource();
    source.manualCreates = true;
    const ac = new AbortController();
    const a = source.create();
    const b = source.create(ac.signal);
    expect(source.pendingCreates.map((p) => p.name)).toEqual([a.name, b.name]);
    expect(source.maxCreatingAtOnce).toBe(2);
    ac.abort(new Error('caller gave up'));
    await expect(b.ready).rejects.toBeInstanceOf(ExecutionAbortedError);
    expect(source.pendingCreates).toHaveLength(1);
    const made = source.nextCreate().succeed({ image: 'other:1' });
    await expect(a.ready).resolves.toBe(made);
    expect(made.image).toBe('other:1');
    expect(() => source.nextCreate()).toThrow(/no create is held/);
    const pre = new AbortController();
    pre.abort();
    await expect(source.create(pre.signal).ready).rejects.toBeInstanceOf(ExecutionAbortedError);
  });

  it('fires watches on die() and oom() until unwatched', async () => {
    const source = new FakeContainerSource();
    const c = await source.create().ready;
    const gone = jest.fn();
    const oom = jest.fn();
    const unwatch = source.watch(c, { gone, oom });
    source.oom(c.id);
    source.die(c.id, 'bye');
    expect(oom).toHaveBeenCalledTimes(1);
    expect(gone).toHaveBeenCalledWith('bye');
    unwatch();
    expect(source.watched(c.id)).toBe(false);
    source.die(c.id);
    expect(gone).toHaveBeenCalledTimes(1);
  });

  it('removals succeed, fail per container, or are held', async () => {
    const source = new FakeContainerSource();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => source.create().ready));
    await source.remove(a);
    expect(source.removedIds).toEqual([a.id]);
    const refusal = new ContainerRemoveError(b.name, 'busy');
    source.removeErrors.set(b.id, refusal);
    await expect(source.remove(b)).rejects.toBe(refusal);
    expect(source.live.has(b.id)).toBe(true);
    source.manualRemoves = true;
    let done = false;
    void source.remove(c).then(() => (done = true));
    await flush();
    expect(done).toBe(false);
    source.pendingRemoves[0].finish();
    await flush();
    expect(done).toBe(true);
    expect(source.removeCounts.get(c.id)).toBe(1);
  });

  it('prepare() marks the linked engine up, or down on an EngineUnavailableError', async () => {
    const engine = new FakeEngineStatus();
    const source = new FakeContainerSource(engine);
    const events: string[] = [];
    engine.subscribe((e) => events.push(e));
    source.prepareError = new EngineUnavailableError('down');
    await expect(source.prepare()).rejects.toBe(source.prepareError);
    expect(engine.available).toBe(false);
    expect(events).toEqual(['down']);
    source.prepareError = null;
    await source.prepare();
    expect(engine.available).toBe(true);
    source.answers = false;
    await expect(source.engineAnswers()).resolves.toBe(false);
    expect(engine.available).toBe(false);
  });
});

describe('FakeEngineStatus', () => {
  it('only an EngineUnavailableError marks it down', () => {
    const engine = new FakeEngineStatus();
    const listener = jest.fn();
    const unsubscribe = engine.subscribe(listener);
    engine.markDown(new ImageUnavailableError('img', 'gone'));
    expect(engine.available).toBe(true);
    expect(listener).not.toHaveBeenCalled();
    engine.goDown();
    expect(engine.available).toBe(false);
    expect(listener).toHaveBeenCalledWith('down', expect.any(EngineUnavailableError));
    engine.reconnect();
    expect(listener).toHaveBeenLastCalledWith('reconnected', undefined);
    unsubscribe();
    expect(engine.listenerCount).toBe(0);
  });
});

describe('FakeExecution', () => {
  it('keeps the first kill error and settles done once', async () => {
    const e = new FakeExecution();
    const first = new Error('first');
    e.kill(first);
    e.kill(new Error('second'));
    await e.done;
    expect(e.killedWith).toBe(first);
    const finished = new FakeExecution();
    finished.finish();
    finished.kill(new Error('late'));
    expect(finished.killedWith).toBeNull();
  });
});
