/** What the shared capacity sees of one warm pool (a profile), at the moment it decides. */
export interface CapacityMember {
  /** Idle containers it keeps warm (0 while draining). */
  readonly target: number;
  /** Its size, drained or not: what the others' ceilings leave it. */
  readonly reserved: number;
  /** Its own cap (maxContainers). */
  readonly maxContainers: number;
  readonly idle: number;
  readonly creating: number;
  /** Of `creating`, those that no longer hold a create slot (started, waiting for their main process). */
  readonly warming?: number;
  /** Every container it has: idle, leased, creating, being removed. */
  readonly total: number;
  /** When each of its waiters started waiting (performance.now()), oldest first. */
  readonly waiterTimes: readonly number[];
  /**
   * Creates it would start now by its own rules (its deficit, waiters, own caps), the shared limits aside: 0 while
   * it cannot create at all (backing off, not prepared, shutting down) or holds its refill off, so that it never
   * holds a create slot it does not use.
   */
  wanted(): number;
  /** Removes its idle containers above its target now: another pool waits at the module-wide cap. */
  trimSurplus(): void;
  /** Its creates in flight (each settles, never rejects, once the create finished or failed). */
  inFlight(): readonly Promise<void>[];
  /** Its scheduling step (it asks allowance() again). */
  pump(): void;
}

/**
 * The limits several warm pools of one module share: at most `maxTotal` containers of all of them, at most
 * `maxConcurrentCreates` creates in flight, handed out round-robin among the pools that would use them. A freed
 * slot goes first to a pool below its target, then to waiters in FIFO order across pools; a pool never holds more
 * than `maxTotal` minus the sizes of the others, drained or not (so every pool can always reach its own size).
 */
export class SharedCapacity {
  private readonly members: CapacityMember[] = [];
  /** Round-robin start of the create slots: the member after the last one that started a create. */
  private next = 0;
  private pumping = false;
  private again = false;

  constructor(
    readonly maxTotal: number,
    readonly maxConcurrentCreates: number,
  ) {}

  join(member: CapacityMember): void {
    this.members.push(member);
  }

  /** Creates `member` may start now, by the rules above (its own limits aside). */
  allowance(member: CapacityMember): number {
    return this.allocate().get(member) ?? 0;
  }

  /** `member` started `count` creates: the next create slot goes to the member after it. */
  started(member: CapacityMember, count: number): void {
    if (count <= 0) return;
    const i = this.members.indexOf(member);
    if (i >= 0) this.next = (i + 1) % this.members.length;
  }

  /** Something changed that others may use (a slot or a create slot freed, a waiter came): all decide again. */
  changed(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        for (const m of this.rotated()) m.pump();
        this.trimForWaiters();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * At the module-wide cap with a waiter that no create of its pool covers, idle containers some pool keeps above
   * its target (returned reusable ones) are removed at once rather than at its next tick, so that the slot goes
   * to the waiter.
   */
  private trimForWaiters(): void {
    const used = this.members.reduce((n, m) => n + m.total, 0);
    if (used < this.maxTotal) return;
    const starving = this.members.some((m) => m.idle === 0 && m.waiterTimes.length > m.creating);
    if (!starving) return;
    for (const m of this.members) if (m.idle > m.target) m.trimSurplus();
  }

  /** The most containers `member` may hold: its own cap, and the module's minus the others' sizes. */
  ceiling(member: CapacityMember): number {
    const others = this.members.reduce((n, m) => n + (m === member ? 0 : m.reserved), 0);
    return Math.max(0, Math.min(member.maxContainers, this.maxTotal - others));
  }

  /** How many more containers `member` could have now: below its ceiling and the module-wide cap. */
  room(member: CapacityMember): number {
    const used = this.members.reduce((n, m) => n + m.total, 0);
    return Math.max(0, Math.min(this.ceiling(member) - member.total, this.maxTotal - used));
  }

  /** Why `member` may not be resized to `size` (the others' sizes must still fit), or null. */
  sizeProblem(member: CapacityMember, size: number): string | null {
    const others = this.members.reduce((n, m) => n + (m === member ? 0 : m.reserved), 0);
    const limit = this.maxTotal - others;
    if (size <= limit) return null;
    return (
      `must not exceed maxContainersTotal (${this.maxTotal}) minus the other profiles' sizes (${others}): ` +
      `at most ${limit}`
    );
  }

  /** The members from the round-robin start. */
  private rotated(): CapacityMember[] {
    const n = this.members.length;
    return Array.from({ length: n }, (_, k) => this.members[(this.next + k) % n]);
  }

  /** How many pools share the limits. */
  get memberCount(): number {
    return this.members.length;
  }

  /**
   * The other members' creates in flight when they hold every create slot `member` could use now (the cap and
   * its ceiling would let it create): a top-up waits for one of them to settle, then it may be its turn. Empty
   * when something else stops it (the cap, its ceiling, nothing wanted).
   */
  slotsHeldFor(member: CapacityMember): Promise<void>[] {
    const { alloc, granted } = this.plan();
    if (!(alloc.get(member)! > 0) || granted.get(member)! > 0) return [];
    return this.members.filter((m) => m !== member).flatMap((m) => [...m.inFlight()]);
  }

  /** How many creates each member may start now. */
  allocate(): Map<CapacityMember, number> {
    return this.plan().granted;
  }

  /** `alloc`: the creates the cap allows each member; `granted`: those of them with a create slot now. */
  private plan(): {
    alloc: Map<CapacityMember, number>;
    granted: Map<CapacityMember, number>;
  } {
    const members = this.rotated();
    let free = this.maxTotal - members.reduce((n, m) => n + m.total, 0);
    const cap = new Map<CapacityMember, number>();
    const alloc = new Map<CapacityMember, number>();
    for (const m of members) {
      // Its ceiling, and never more than it would start: a pool that cannot create holds no slot.
      cap.set(m, Math.max(0, Math.min(this.ceiling(m) - m.total, m.wanted())));
      alloc.set(m, 0);
    }
    const give = (m: CapacityMember, n: number) => {
      const take = Math.min(n, free, cap.get(m)! - alloc.get(m)!);
      if (take <= 0) return 0;
      alloc.set(m, alloc.get(m)! + take);
      free -= take;
      return take;
    };
    // 1. Every pool below its target, up to its target.
    for (const m of members) give(m, m.target - m.idle - m.creating);
    // 2. Waiters in FIFO order across pools (those its creates in flight beyond its target do not cover).
    const waiters: [number, CapacityMember][] = [];
    for (const m of members) {
      const covered = Math.max(0, m.creating + m.idle - m.target);
      for (const t of m.waiterTimes.slice(covered)) waiters.push([t, m]);
    }
    waiters.sort((a, b) => a[0] - b[0]);
    for (const [, m] of waiters) if (free > 0) give(m, 1);
    // 3. The create slots, one at a time round-robin.
    let slots =
      this.maxConcurrentCreates - members.reduce((n, m) => n + m.creating - (m.warming ?? 0), 0);
    const granted = new Map<CapacityMember, number>(members.map((m) => [m, 0]));
    for (let progress = true; slots > 0 && progress;) {
      progress = false;
      for (const m of members) {
        if (slots > 0 && granted.get(m)! < alloc.get(m)!) {
          granted.set(m, granted.get(m)! + 1);
          slots--;
          progress = true;
        }
      }
    }
    return { alloc, granted };
  }
}
