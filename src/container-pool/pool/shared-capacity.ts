/** What the shared capacity sees of one warm pool (a profile), at the moment it decides. */
export interface CapacityMember {
  /** Idle containers it keeps warm (0 while draining). */
  readonly target: number;
  /** Its own cap (maxContainers). */
  readonly maxContainers: number;
  readonly idle: number;
  readonly creating: number;
  /** Every container it has: idle, leased, creating, being removed. */
  readonly total: number;
  /** When each of its waiters started waiting (performance.now()), oldest first. */
  readonly waiterTimes: readonly number[];
  /** Its scheduling step (it asks allowance() again). */
  pump(): void;
}

/**
 * The limits several warm pools of one module share: at most `maxTotal` containers of all of them, at most
 * `maxConcurrentCreates` creates in flight, handed out round-robin. A freed slot goes first to a pool below
 * its target, then to waiters in FIFO order across pools; a pool never holds more than `maxTotal` minus the
 * targets of the others (so every pool can always reach its own target).
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
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  /** The members from the round-robin start. */
  private rotated(): CapacityMember[] {
    const n = this.members.length;
    return Array.from({ length: n }, (_, k) => this.members[(this.next + k) % n]);
  }

  /** How many creates each member may start now. */
  allocate(): Map<CapacityMember, number> {
    const members = this.rotated();
    const targets = members.reduce((n, m) => n + m.target, 0);
    let free = this.maxTotal - members.reduce((n, m) => n + m.total, 0);
    const cap = new Map<CapacityMember, number>();
    const alloc = new Map<CapacityMember, number>();
    for (const m of members) {
      const othersTargets = targets - m.target;
      cap.set(m, Math.max(0, Math.min(m.maxContainers, this.maxTotal - othersTargets) - m.total));
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
    let slots = this.maxConcurrentCreates - members.reduce((n, m) => n + m.creating, 0);
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
    return granted;
  }
}
