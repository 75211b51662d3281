import type { Logger } from '@nestjs/common';

/** How a route's calls are audited: its action, what it was asked, and what to say of its result. */
export interface AuditSpec {
  action: string;
  /** What the call asks for, e.g. `size=2` (never secrets, never code). */
  what?: (req: any) => string;
  /** What to say of its result, e.g. ` idle=2 leased=0` (with a leading space). */
  summary?: (result: any) => string;
  /**
   * The route writes its request's one line itself (an execution: the executor's line); the audit writes one
   * only for a request refused before that (`exec refused ...`).
   */
  ownLine?: boolean;
}

/** Property of the request under which AuditStartGuard leaves the AuditRecord of an audited route. */
export const AUDIT_RECORD = Symbol('container-pool:audit-record');

/** An audited request on its way: the one line is written once, by whoever sees its end first. */
export interface AuditRecord {
  spec: AuditSpec;
  /** performance.now() when the route's first guard ran. */
  started: number;
  /** Whether the request's line was written (by the interceptor, the route or the executor). */
  logged: boolean;
  logger: Logger;
}
