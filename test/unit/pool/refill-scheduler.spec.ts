import { RefillScheduler } from '../../../src/container-pool/pool/refill-scheduler';
import { FakeIntervalHost, flush } from '../../support/fake-source';

describe('RefillScheduler', () => {
  describe('timers (fake clock)', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'clearImmediate'] }));
    afterEach(() => jest.useRealTimers());

    it('retryIn pumps once after the delay', () => {
      const pump = jest.fn();
      const s = new RefillScheduler(pump);
      s.retryIn(250);
      jest.advanceTimersByTime(249);
      expect(pump).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(pump).toHaveBeenCalledTimes(1);
      jest.advanceTimersByTime(10_000);
      expect(pump).toHaveBeenCalledTimes(1);
    });

    it('retryIn does not stack: one retry, at the earliest deadline asked (a later one is ignored)', () => {
      const pump = jest.fn();
      const s = new RefillScheduler(pump);
      s.retryIn(500);
      s.retryIn(100);
      s.retryIn(500);
      jest.advanceTimersByTime(99);
      expect(pump).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1);
      expect(pump).toHaveBeenCalledTimes(1);
      jest.advanceTimersByTime(400);
      expect(pump).toHaveBeenCalledTimes(1);
      jest.advanceTimersByTime(1_000);
      expect(pump).toHaveBeenCalledTimes(1);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('retryIn can be scheduled again once it fired', () => {
      const pump = jest.fn();
      const s = new RefillScheduler(pump);
      s.retryIn(10);
      jest.advanceTimersByTime(10);
      s.retryIn(20);
      jest.advanceTimersByTime(20);
      expect(pump).toHaveBeenCalledTimes(2);
    });

    it('retryIn with a delay already past pumps on the next timer turn', () => {
      const pump = jest.fn();
      const s = new RefillScheduler(pump);
      s.retryIn(-50);
      expect(pump).not.toHaveBeenCalled();
      jest.advanceTimersByTime(0);
      expect(pump).toHaveBeenCalledTimes(1);
    });

    it('deferFor does not stack either, and is independent of retryIn', () => {
      const pump = jest.fn();
      const s = new RefillScheduler(pump);
      s.deferFor(2_000);
      s.deferFor(50);
      s.retryIn(1_000);
      expect(jest.getTimerCount()).toBe(2);
      jest.advanceTimersByTime(1_000);
      expect(pump).toHaveBeenCalledTimes(1);
      jest.advanceTimersByTime(1_000);
      expect(pump).toHaveBeenCalledTimes(2);
      jest.advanceTimersByTime(5_000);
      expect(pump).toHaveBeenCalledTimes(2);
      s.deferFor(10);
      jest.advanceTimersByTime(10);
      expect(pump).toHaveBeenCalledTimes(3);
    });

    it('startTicks calls tick every interval, registered with the host under its name, once', () => {
      const host = new FakeIntervalHost();
      const tick = jest.fn();
      const other = jest.fn();
      const s = new RefillScheduler(jest.fn(), host);
      s.startTicks('pool:x', 1_000, tick);
      s.startTicks('pool:y', 10, other);
      jest.advanceTimersByTime(3_000);
      expect(tick).toHaveBeenCalledTimes(3);
      expect(other).not.toHaveBeenCalled();
      expect(host.added).toEqual(['pool:x']);
      expect(host.intervals.has('pool:x')).toBe(true);
    });

    it('startTicks works without a host', () => {
      const tick = jest.fn();
      const s = new RefillScheduler(jest.fn());
      s.startTicks('pool:x', 100, tick);
      jest.advanceTimersByTime(250);
      expect(tick).toHaveBeenCalledTimes(2);
      s.stop();
      jest.advanceTimersByTime(1_000);
      expect(tick).toHaveBeenCalledTimes(2);
    });

    it('stop clears the retry, the deferral and the interval, and removes the interval from the host', () => {
      const host = new FakeIntervalHost();
      const pump = jest.fn();
      const tick = jest.fn();
      const s = new RefillScheduler(pump, host);
      s.startTicks('pool:x', 100, tick);
      s.retryIn(100);
      s.deferFor(100);
      s.stop();
      expect(host.removed).toEqual(['pool:x']);
      expect(host.intervals.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(1_000);
      expect(pump).not.toHaveBeenCalled();
      expect(tick).not.toHaveBeenCalled();
    });

    it('after stop nothing can be scheduled any more', async () => {
      const host = new FakeIntervalHost();
      const pump = jest.fn();
      const s = new RefillScheduler(pump, host);
      s.stop();
      s.retryIn(10);
      s.deferFor(10);
      s.soon();
      s.startTicks('pool:x', 10, pump);
      expect(jest.getTimerCount()).toBe(0);
      expect(host.added).toEqual([]);
      jest.advanceTimersByTime(100);
      await flush();
      expect(pump).not.toHaveBeenCalled();
    });

    it('stop survives a host that no longer knows the interval, and still clears it', () => {
      const host = new FakeIntervalHost();
      host.removeError = new Error('No Interval was found with the given name');
      const tick = jest.fn();
      const s = new RefillScheduler(jest.fn(), host);
      s.startTicks('pool:x', 100, tick);
      expect(() => s.stop()).not.toThrow();
      jest.advanceTimersByTime(1_000);
      expect(tick).not.toHaveBeenCalled();
    });

    it('stop twice is harmless', () => {
      const host = new FakeIntervalHost();
      const s = new RefillScheduler(jest.fn(), host);
      s.startTicks('pool:x', 100, jest.fn());
      s.stop();
      expect(() => s.stop()).not.toThrow();
    });
  });

  describe('soon (real setImmediate)', () => {
    it('pumps after the current task, not synchronously', async () => {
      const pump = jest.fn();
      const s = new RefillScheduler(pump);
      s.soon();
      expect(pump).not.toHaveBeenCalled();
      await flush();
      expect(pump).toHaveBeenCalledTimes(1);
    });

    it('coalesces calls within one task into one pump', async () => {
      const pump = jest.fn();
      const s = new RefillScheduler(pump);
      s.soon();
      s.soon();
      s.soon();
      await flush();
      expect(pump).toHaveBeenCalledTimes(1);
      s.soon();
      await flush();
      expect(pump).toHaveBeenCalledTimes(2);
    });

    it('a soon() called from the pump it triggered is queued again', async () => {
      let n = 0;
      const self: { s?: RefillScheduler } = {};
      const pump = jest.fn(() => {
        if (++n < 3) self.s!.soon();
      });
      const s = (self.s = new RefillScheduler(pump));
      s.soon();
      await flush(10);
      expect(pump).toHaveBeenCalledTimes(3);
    });
  });

  describe('unref', () => {
    it('never keeps the process alive: every timer is unref’d', () => {
      const host = new FakeIntervalHost();
      const s = new RefillScheduler(jest.fn(), host);
      const created: NodeJS.Timeout[] = [];
      const realSetTimeout = global.setTimeout;
      const spy = jest.spyOn(global, 'setTimeout').mockImplementation((fn, ms) => {
        const t = realSetTimeout(fn, ms);
        created.push(t);
        return t;
      });
      try {
        s.retryIn(60_000);
        s.deferFor(60_000);
      } finally {
        spy.mockRestore();
      }
      s.startTicks('pool:x', 60_000, jest.fn());
      expect(created).toHaveLength(2);
      for (const t of created) expect(t.hasRef()).toBe(false);
      expect(host.intervals.get('pool:x')!.hasRef()).toBe(false);
      s.stop();
    });
  });
});
