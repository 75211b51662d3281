import type { ContainerInfo } from '../interfaces/container.interface';
import type { PooledContainer } from './pooled-container';

/**
 * The pool's containers by state: idle (oldest first), leased, being created (by name, before they have an id)
 * and being removed. Every container is counted from its create call until its removal has finished.
 */
export class Stock {
  readonly idle: PooledContainer[] = [];
  readonly leased = new Set<PooledContainer>();
  /** Every created container not yet removed, by id. */
  readonly byId = new Map<string, PooledContainer>();
  /** Creates in flight: name -> when the create started. */
  readonly creatingNames = new Map<string, Date>();
  /** Of those, the ones the engine has started that wait for their main process to be ready (no create slot). */
  readonly warmingNames = new Set<string>();
  destroying = 0;

  get creating(): number {
    return this.creatingNames.size;
  }

  /** Creates in flight that hold a create slot (the engine is still at work on them). */
  get creatingOnEngine(): number {
    return this.creatingNames.size - this.warmingNames.size;
  }

  /** Every container the pool has, as the cap counts them. */
  get total(): number {
    return this.idle.length + this.leased.size + this.creating + this.destroying;
  }

  /** A create finished: the container is known (and idle, unless it is removed at once). */
  created(c: PooledContainer, idle: boolean): void {
    this.byId.set(c.id, c);
    if (idle) this.idle.push(c);
  }

  /** The oldest idle container that may still be handed out; `onExpired` gets each one that may not. */
  takeIdle(now: number, onExpired: (c: PooledContainer) => void): PooledContainer | undefined {
    while (this.idle.length) {
      const c = this.idle.shift()!;
      if (c.expiry.getTime() <= now) {
        onExpired(c);
        continue;
      }
      return c;
    }
    return undefined;
  }

  /** The first idle container `wanted` accepts that may still be handed out, taken out of idle; else undefined. */
  takeIdleWhere(now: number, wanted: (c: PooledContainer) => boolean): PooledContainer | undefined {
    const i = this.idle.findIndex((c) => c.expiry.getTime() > now && wanted(c));
    return i < 0 ? undefined : this.idle.splice(i, 1)[0];
  }

  lease(c: PooledContainer): void {
    c.state = 'leased';
    this.leased.add(c);
  }

  /** Back to idle, at the front: handed out before newer ones. */
  returnIdle(c: PooledContainer): void {
    this.leased.delete(c);
    c.state = 'idle';
    this.idle.unshift(c);
  }

  /** The container leaves idle/leased and counts as being removed. */
  startRemoval(c: PooledContainer): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.leased.delete(c);
    c.state = 'destroying';
    this.destroying++;
  }

  removed(c: PooledContainer): void {
    this.destroying--;
    this.byId.delete(c.id);
  }

  /** One of the containers by full id, unique id prefix or name. */
  find(ref: string): PooledContainer | undefined {
    const all = [...this.byId.values()];
    const byName = all.find((c) => c.name === ref);
    if (byName) return byName;
    const matches = all.filter((c) => c.id.startsWith(ref));
    return matches.length === 1 ? matches[0] : undefined;
  }

  /** Rows for containers(); creates in flight get the image and expiry they will have. */
  rows(image: string, expiryOf: (createdAt: Date) => Date): ContainerInfo[] {
    const rows: ContainerInfo[] = [...this.byId.values()].map((c) => ({
      id: c.id,
      name: c.name,
      state: c.state,
      createdAt: c.createdAt,
      expiry: c.expiry,
      image: c.source.image,
      generation: c.generation ?? null,
    }));
    for (const [name, createdAt] of this.creatingNames) {
      rows.push({ id: '', name, state: 'creating', createdAt, expiry: expiryOf(createdAt), image });
    }
    return rows;
  }
}
