import { REFILL_DEFER_MAX_MS } from '../../../src/container-pool/container-pool.constants';
import {
  planRefill,
  type RefillPlan,
  type RefillState,
} from '../../../src/container-pool/pool/refill-planner';

const NOW = 1_000_000;

/** A pool of size 4 under a cap of 8, 2 creates at a time, empty, nothing running. */
function state(overrides: Partial<RefillState> = {}): RefillState {
  return {
    size: 4,
    maxContainers: 8,
    maxConcurrentCreates: 2,
    draining: false,
    waiting: 0,
    idle: 0,
    creating: 0,
    total: 0,
    executing: 0,
    force: false,
    deferredSince: 0,
    now: NOW,
    ...overrides,
  };
}

/** `total` counts idle and creating containers (and leased/destroying ones on top). */
function counts(idle: number, creating: number, others = 0) {
  return { idle, creating, total: idle + creating + others };
}

describe('planRefill', () => {
  describe('how many creates: the deficit, bounded by the concurrency and the cap', () => {
    it.each<[string, Partial<RefillState>, number]>([
      ['empty pool: as many as the concurrency allows', {}, 2],
      ['empty pool, high concurrency: the whole deficit', { maxConcurrentCreates: 10 }, 4],
      ['full pool', counts(4, 0), 0],
      ['surplus', counts(6, 0), 0],
      ['size 0, nobody waiting', { size: 0 }, 0],
      [
        'creates in flight count toward the target',
        { ...counts(2, 1), maxConcurrentCreates: 5 },
        1,
      ],
      ['creates in flight use up the concurrency', counts(0, 2), 0],
      ['one concurrency slot left', { ...counts(0, 1), maxConcurrentCreates: 2 }, 1],
      ['leased containers do not fill the stock', { ...counts(0, 0, 3) }, 2],
      ['the cap counts every container', { ...counts(1, 0, 6) }, 1],
      ['at the cap', { ...counts(0, 0, 8) }, 0],
      ['above the cap (after a resize down)', { ...counts(0, 0, 10) }, 0],
      ['the cap below the concurrency', { maxContainers: 1, maxConcurrentCreates: 5 }, 1],
      // The limits shared with other profiles (SharedCapacity): a pool at the module-wide cap creates none.
      ['no shared allowance', { allowance: 0 }, 0],
      ['a shared allowance below the deficit', { allowance: 1, maxConcurrentCreates: 5 }, 1],
      ['a shared allowance above the deficit', { allowance: 9, maxConcurrentCreates: 5 }, 4],
      [
        'a shared allowance with waiters, the force of replenish()',
        { allowance: 0, waiting: 3, force: true },
        0,
      ],
    ])('%s', (_what, overrides, creates) => {
      expect(planRefill(state(overrides)).creates).toBe(creates);
    });
  });

  describe('waiters and draining', () => {
    it.each<[string, Partial<RefillState>, number]>([
      ['waiters add to the target', { size: 0, waiting: 3, maxConcurrentCreates: 5 }, 3],
      ['waiters on top of a full stock', { ...counts(4, 0), waiting: 1 }, 1],
      [
        'creates in flight serve waiters',
        { size: 0, waiting: 3, ...counts(0, 1), maxConcurrentCreates: 5 },
        2,
      ],
      [
        'waiters are still bounded by the cap',
        { size: 0, waiting: 5, maxContainers: 2, maxConcurrentCreates: 5 },
        2,
      ],
      ['draining: no top-up to size', { draining: true }, 0],
      ['draining with idle containers', { draining: true, ...counts(2, 0) }, 0],
      ['draining still serves waiters', { draining: true, waiting: 2 }, 2],
    ])('%s', (_what, overrides, creates) => {
      expect(planRefill(state(overrides)).creates).toBe(creates);
    });
  });

  describe('the wait for running executions (healthy stock: at least half of size idle or creating)', () => {
    it('defers a top-up of a healthy stock while executions run, for REFILL_DEFER_MAX_MS', () => {
      const plan = planRefill(state({ ...counts(2, 0, 2), executing: 1 }));
      expect(plan).toEqual<RefillPlan>({
        creates: 0,
        deferredSince: NOW,
        retryInMs: REFILL_DEFER_MAX_MS,
      });
    });

    it('keeps the start of the wait and retries for what is left of it', () => {
      const plan = planRefill(
        state({ ...counts(3, 0, 1), executing: 2, deferredSince: NOW - 500 }),
      );
      expect(plan).toEqual<RefillPlan>({
        creates: 0,
        deferredSince: NOW - 500,
        retryInMs: REFILL_DEFER_MAX_MS - 500,
      });
    });

    it.each([0, 1, 1_000])(
      'creates once the wait has lasted REFILL_DEFER_MAX_MS (+%i ms), and the wait ends',
      (late) => {
        const plan = planRefill(
          state({
            ...counts(2, 0, 2),
            executing: 1,
            deferredSince: NOW - REFILL_DEFER_MAX_MS - late,
          }),
        );
        expect(plan).toEqual<RefillPlan>({ creates: 2, deferredSince: 0 });
      },
    );

    it('counts creates in flight as healthy stock', () => {
      // idle 1 + creating 1 = 2 = ceil(4 / 2): healthy, one more create would be allowed.
      const plan = planRefill(state({ ...counts(1, 1, 2), executing: 1 }));
      expect(plan.creates).toBe(0);
      expect(plan.retryInMs).toBe(REFILL_DEFER_MAX_MS);
    });

    it.each<[string, Partial<RefillState>, number]>([
      ['low stock (below half of size)', { ...counts(1, 0, 3) }, 2],
      ['empty stock', { ...counts(0, 0, 4) }, 2],
      ['an odd size rounds half up (size 3 needs 2)', { size: 3, ...counts(1, 0, 2) }, 2],
      ['size 1 with nothing idle', { size: 1, ...counts(0, 0, 1) }, 1],
      ['a waiter, even with a healthy stock', { ...counts(4, 0), waiting: 1 }, 1],
    ])('does not wait with %s', (_what, overrides, creates) => {
      const plan = planRefill(state({ ...overrides, executing: 3 }));
      expect(plan).toEqual<RefillPlan>({ creates, deferredSince: 0 });
    });

    it('does not wait when nothing runs, and forgets an earlier wait', () => {
      const plan = planRefill(state({ ...counts(3, 0, 1), deferredSince: NOW - 100 }));
      expect(plan).toEqual<RefillPlan>({ creates: 1, deferredSince: 0 });
    });

    it('force (replenish) skips the wait', () => {
      const plan = planRefill(state({ ...counts(3, 0, 1), executing: 1, force: true }));
      expect(plan.creates).toBe(1);
      expect(plan.retryInMs).toBeUndefined();
    });

    it('force leaves a started wait as it is (only filling up ends it)', () => {
      const plan = planRefill(
        state({ ...counts(2, 0, 2), executing: 1, force: true, deferredSince: NOW - 100 }),
      );
      expect(plan).toEqual<RefillPlan>({ creates: 2, deferredSince: NOW - 100 });
    });
  });

  describe('deferredSince', () => {
    it('resets once the stock is full again', () => {
      expect(
        planRefill(state({ ...counts(4, 0), executing: 1, deferredSince: NOW - 100 })),
      ).toEqual<RefillPlan>({
        creates: 0,
        deferredSince: 0,
      });
    });

    it('resets when creates in flight make up the deficit', () => {
      expect(
        planRefill(state({ ...counts(2, 2), executing: 1, deferredSince: NOW - 100 }))
          .deferredSince,
      ).toBe(0);
    });

    it('is kept when the cap or the concurrency blocks the creates (the deficit remains)', () => {
      const atCap = planRefill(
        state({ ...counts(2, 0, 6), executing: 1, deferredSince: NOW - 100 }),
      );
      expect(atCap).toEqual<RefillPlan>({ creates: 0, deferredSince: NOW - 100 });
      const busy = planRefill(state({ ...counts(0, 2), executing: 1, deferredSince: NOW - 100 }));
      expect(busy).toEqual<RefillPlan>({ creates: 0, deferredSince: NOW - 100 });
    });

    it('a later wait starts afresh after a reset', () => {
      const first = planRefill(state({ ...counts(3, 0, 1), executing: 1 }));
      expect(first.deferredSince).toBe(NOW);
      const full = planRefill(
        state({ ...counts(4, 0), executing: 1, deferredSince: first.deferredSince, now: NOW + 10 }),
      );
      expect(full.deferredSince).toBe(0);
      const again = planRefill(
        state({
          ...counts(3, 0, 1),
          executing: 1,
          deferredSince: full.deferredSince,
          now: NOW + 5_000,
        }),
      );
      expect(again).toEqual<RefillPlan>({
        creates: 0,
        deferredSince: NOW + 5_000,
        retryInMs: REFILL_DEFER_MAX_MS,
      });
    });
  });

  it('plans exactly min(deficit, concurrency, cap) unless it defers (exhaustive over small pools)', () => {
    let checked = 0;
    const wrong: string[] = [];
    for (const size of [0, 1, 2, 3, 5])
      for (const maxContainers of [1, 2, 5])
        for (const maxConcurrentCreates of [1, 2, 4])
          for (const idle of [0, 1, 3, 6])
            for (const creating of [0, 1, 3])
              for (const others of [0, 2])
                for (const waiting of [0, 2])
                  for (const executing of [0, 1])
                    for (const draining of [false, true])
                      for (const force of [false, true]) {
                        const s = state({
                          size,
                          maxContainers,
                          maxConcurrentCreates,
                          waiting,
                          executing,
                          draining,
                          force,
                          ...counts(idle, creating, others),
                        });
                        const plan = planRefill(s);
                        const deficit = (draining ? 0 : size) + waiting - idle - creating;
                        const limit = Math.max(
                          0,
                          Math.min(
                            deficit,
                            maxConcurrentCreates - creating,
                            maxContainers - s.total,
                          ),
                        );
                        const deferred = plan.retryInMs !== undefined;
                        if (
                          plan.creates < 0 ||
                          plan.creates > limit ||
                          (deferred && (plan.creates !== 0 || plan.retryInMs! <= 0)) ||
                          (deferred && plan.retryInMs! > REFILL_DEFER_MAX_MS) ||
                          (deferred && (!executing || force || waiting > 0)) ||
                          (!deferred && plan.creates !== limit)
                        ) {
                          wrong.push(`${JSON.stringify(s)} -> ${JSON.stringify(plan)}`);
                        }
                        checked++;
                      }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(10_000);
  });
});
