import { PooledContainer } from '../../../src/container-pool/pool/pooled-container';
import { Stock } from '../../../src/container-pool/pool/stock';
import type { SourcedContainer } from '../../../src/container-pool/pool/container-source';
import { sourcedContainer } from '../../support/fake-source';

const NOW = Date.parse('2030-01-01T00:00:00Z');

function entry(overrides: Partial<SourcedContainer> = {}): PooledContainer {
  return new PooledContainer(
    sourcedContainer({
      createdAt: new Date(NOW - 1_000),
      expiry: new Date(NOW + 60_000),
      ...overrides,
    }),
  );
}

describe('Stock', () => {
  describe('counts', () => {
    it('counts idle, leased, creating and destroying containers toward the total', () => {
      const s = new Stock();
      expect(s.total).toBe(0);
      const a = entry();
      const b = entry();
      const c = entry();
      s.created(a, true);
      s.created(b, true);
      s.created(c, true);
      s.creatingNames.set('pending-1', new Date(NOW));
      s.creatingNames.set('pending-2', new Date(NOW));
      s.lease(s.takeIdle(NOW, () => undefined)!);
      s.startRemoval(c);
      expect({
        idle: s.idle.length,
        leased: s.leased.size,
        creating: s.creating,
        destroying: s.destroying,
      }).toEqual({
        idle: 1,
        leased: 1,
        creating: 2,
        destroying: 1,
      });
      expect(s.total).toBe(5);
      s.removed(c);
      s.creatingNames.delete('pending-1');
      expect(s.total).toBe(3);
      expect(s.byId.has(c.id)).toBe(false);
    });

    it('created(c, false) knows the container without making it idle (it is removed at once)', () => {
      const s = new Stock();
      const c = entry();
      s.created(c, false);
      expect(s.idle).toEqual([]);
      expect(s.byId.get(c.id)).toBe(c);
      expect(s.total).toBe(0);
      s.startRemoval(c);
      expect(s.total).toBe(1);
      expect(c.state).toBe('destroying');
    });

    it('startRemoval takes the container out of idle or leased and counts it until removed()', () => {
      const s = new Stock();
      const idle = entry();
      const leased = entry();
      s.created(idle, true);
      s.created(leased, true);
      s.lease(s.idle.splice(1, 1)[0]);
      s.startRemoval(idle);
      s.startRemoval(leased);
      expect(s.idle).toEqual([]);
      expect(s.leased.size).toBe(0);
      expect(s.destroying).toBe(2);
      expect(s.total).toBe(2);
      s.removed(idle);
      s.removed(leased);
      expect(s.total).toBe(0);
      expect(s.byId.size).toBe(0);
    });
  });

  describe('takeIdle', () => {
    it('hands out the oldest idle container first', () => {
      const s = new Stock();
      const [a, b, c] = [entry(), entry(), entry()];
      for (const x of [a, b, c]) s.created(x, true);
      const onExpired = jest.fn();
      expect(s.takeIdle(NOW, onExpired)).toBe(a);
      expect(s.takeIdle(NOW, onExpired)).toBe(b);
      expect(s.idle).toEqual([c]);
      expect(onExpired).not.toHaveBeenCalled();
    });

    it('drops expired containers (expiry at or before now), reporting each, and returns the next one', () => {
      const s = new Stock();
      const old1 = entry({ expiry: new Date(NOW - 1) });
      const old2 = entry({ expiry: new Date(NOW) });
      const fresh = entry();
      for (const x of [old1, old2, fresh]) s.created(x, true);
      const expired: PooledContainer[] = [];
      expect(s.takeIdle(NOW, (c) => expired.push(c))).toBe(fresh);
      expect(expired).toEqual([old1, old2]);
      expect(s.idle).toEqual([]);
      // The caller removes them: they are still known until then.
      expect(s.byId.has(old1.id)).toBe(true);
    });

    it('returns undefined when nothing idle may be handed out', () => {
      const s = new Stock();
      expect(s.takeIdle(NOW, () => undefined)).toBeUndefined();
      s.created(entry({ expiry: new Date(NOW - 5) }), true);
      const onExpired = jest.fn();
      expect(s.takeIdle(NOW, onExpired)).toBeUndefined();
      expect(onExpired).toHaveBeenCalledTimes(1);
    });
  });

  describe('lease and returnIdle', () => {
    it('lease marks the container leased', () => {
      const s = new Stock();
      const c = entry();
      s.created(c, true);
      s.lease(s.takeIdle(NOW, () => undefined)!);
      expect(c.state).toBe('leased');
      expect(s.leased.has(c)).toBe(true);
      expect(s.idle).toEqual([]);
    });

    it('returnIdle puts the container back at the front: handed out before newer ones', () => {
      const s = new Stock();
      const [a, b, c] = [entry(), entry(), entry()];
      for (const x of [a, b, c]) s.created(x, true);
      const first = s.takeIdle(NOW, () => undefined)!;
      s.lease(first);
      s.returnIdle(first);
      expect(first.state).toBe('idle');
      expect(s.leased.size).toBe(0);
      expect(s.idle).toEqual([a, b, c]);
      const second = s.takeIdle(NOW, () => undefined)!;
      s.lease(second);
      s.lease(s.takeIdle(NOW, () => undefined)!);
      s.returnIdle(second);
      expect(s.idle).toEqual([a, c]);
      expect(s.takeIdle(NOW, () => undefined)).toBe(a);
    });
  });

  describe('find', () => {
    function stockWith(...ids: string[]) {
      const s = new Stock();
      const entries = ids.map((id, i) => entry({ id, name: `box-${i}` }));
      for (const e of entries) s.created(e, true);
      return { s, entries };
    }

    it('finds by full id', () => {
      const { s, entries } = stockWith('a'.repeat(64), 'b'.repeat(64));
      expect(s.find('b'.repeat(64))).toBe(entries[1]);
    });

    it('finds by name', () => {
      const { s, entries } = stockWith('a'.repeat(64), 'b'.repeat(64));
      expect(s.find('box-0')).toBe(entries[0]);
    });

    it('finds by a unique id prefix', () => {
      const { s, entries } = stockWith('abc1'.padEnd(64, '0'), 'abd2'.padEnd(64, '0'));
      expect(s.find('abc1'.padEnd(12, '0'))).toBe(entries[0]);
      expect(s.find('abd')).toBe(entries[1]);
    });

    it('finds nothing for an ambiguous prefix', () => {
      const { s } = stockWith('abc1'.padEnd(64, '0'), 'abc2'.padEnd(64, '0'));
      expect(s.find('abc')).toBeUndefined();
    });

    it('finds nothing for an unknown ref', () => {
      const { s } = stockWith('a'.repeat(64));
      expect(s.find('f00')).toBeUndefined();
      expect(s.find('box-9')).toBeUndefined();
    });

    it('a name wins over an id prefix', () => {
      const s = new Stock();
      const byPrefix = entry({ id: 'deadbeef'.padEnd(64, '0'), name: 'x' });
      const byName = entry({ id: 'f'.repeat(64), name: 'dead' });
      s.created(byPrefix, true);
      s.created(byName, true);
      expect(s.find('dead')).toBe(byName);
    });

    it('finds leased and destroying containers too, but not removed ones', () => {
      const { s, entries } = stockWith('a'.repeat(64), 'b'.repeat(64));
      s.lease(s.takeIdle(NOW, () => undefined)!);
      s.startRemoval(entries[1]);
      expect(s.find('box-0')).toBe(entries[0]);
      expect(s.find('box-1')).toBe(entries[1]);
      s.removed(entries[1]);
      expect(s.find('box-1')).toBeUndefined();
    });
  });

  describe('rows', () => {
    it('lists known containers with their state and creates in flight with the expiry they will get', () => {
      const s = new Stock();
      const c = entry({ name: 'known', image: 'img:1' });
      s.created(c, true);
      const startedAt = new Date(NOW);
      s.creatingNames.set('pending', startedAt);
      const rows = s.rows('img:2', (at) => new Date(at.getTime() + 42));
      expect(rows).toEqual([
        {
          id: c.id,
          name: 'known',
          state: 'idle',
          createdAt: c.createdAt,
          expiry: c.expiry,
          image: 'img:1',
          generation: null,
        },
        {
          id: '',
          name: 'pending',
          state: 'creating',
          createdAt: startedAt,
          expiry: new Date(NOW + 42),
          image: 'img:2',
        },
      ]);
    });
  });
});
