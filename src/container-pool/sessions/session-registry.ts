import { PoolShuttingDownError } from '../errors/container-pool.errors';
import {
  SessionClosedError,
  SessionNotFoundError,
  TooManySessionsError,
} from '../errors/session.errors';
import type { SessionInfo } from '../interfaces/session.interface';
import type { PoolSession } from './pool-session';

/** How many closed sessions are remembered (their ids answer SessionClosedError, not SessionNotFoundError). */
const CLOSED_REMEMBERED = 10_000;

export interface SessionLimits {
  maxSessions: number;
  maxSessionsPerOwner: number;
}

/**
 * The module's sessions, across its profiles: the limits (maxSessions in all, maxSessionsPerOwner), lookup by id
 * for its owner, the recently closed ones, and their end at shutdown.
 */
export class SessionRegistry {
  private readonly open = new Map<string, PoolSession>();
  private readonly closed = new Map<string, { reason: string; owner: string }>();
  /** Opens in flight (their container is being acquired), in all and per owner. */
  private opening = 0;
  private readonly openingBy = new Map<string, number>();
  private shuttingDown = false;

  constructor(private readonly limits: SessionLimits) {}

  /** Reserves a place within the limits, runs `start`, and registers the session it makes. */
  async add(owner: string, start: () => Promise<PoolSession>): Promise<PoolSession> {
    if (this.shuttingDown) throw new PoolShuttingDownError();
    const { maxSessions, maxSessionsPerOwner } = this.limits;
    const mine = this.countOf(owner) + (this.openingBy.get(owner) ?? 0);
    if (mine >= maxSessionsPerOwner) throw new TooManySessionsError('owner', maxSessionsPerOwner);
    if (this.open.size + this.opening >= maxSessions) {
      throw new TooManySessionsError('module', maxSessions);
    }
    this.opening++;
    this.openingBy.set(owner, (this.openingBy.get(owner) ?? 0) + 1);
    try {
      const session = await start();
      if (this.shuttingDown) {
        await session.close('shutdown');
        throw new PoolShuttingDownError();
      }
      if (session.isOpen) this.open.set(session.id, session);
      return session;
    } finally {
      this.opening--;
      const n = (this.openingBy.get(owner) ?? 1) - 1;
      if (n > 0) this.openingBy.set(owner, n);
      else this.openingBy.delete(owner);
    }
  }

  /** A session closed (for whatever reason): forgotten, its id remembered as closed. */
  closedOne(session: PoolSession, reason: string): void {
    this.open.delete(session.id);
    this.closed.set(session.id, { reason, owner: session.owner });
    if (this.closed.size > CLOSED_REMEMBERED) {
      this.closed.delete(this.closed.keys().next().value!);
    }
  }

  /**
   * The open session of this id; with `owner`, only when it is that owner's (another owner's is not found: its
   * existence is not told).
   */
  get(id: string, owner?: string): PoolSession {
    const session = typeof id === 'string' ? this.open.get(id) : undefined;
    if (session && (owner === undefined || session.owner === owner)) return session;
    const closed = typeof id === 'string' ? this.closed.get(id) : undefined;
    if (closed && (owner === undefined || closed.owner === owner)) {
      throw new SessionClosedError(id, closed.reason);
    }
    throw new SessionNotFoundError(String(id));
  }

  /** The open sessions, of one owner or all, oldest first. */
  list(owner?: string): SessionInfo[] {
    return [...this.open.values()]
      .filter((s) => owner === undefined || s.owner === owner)
      .map((s) => s.info());
  }

  /** Open sessions of one profile. */
  countIn(profile: string): number {
    let n = 0;
    for (const s of this.open.values()) if (s.profile === profile) n++;
    return n;
  }

  private countOf(owner: string): number {
    let n = 0;
    for (const s of this.open.values()) if (s.owner === owner) n++;
    return n;
  }

  /** No more opens; every session ends (a running call first gets the pool's shutdown grace). */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await Promise.allSettled([...this.open.values()].map((s) => s.shutdown()));
  }
}
