/**
 * OpenTelemetry spans of the pool, through the optional peer `@opentelemetry/api`: `container-pool.acquire`,
 * `.create`, `.execute` and `.release`, with `container_pool.*` attributes. Without the package, or without an
 * SDK registered by the host (the API is then a no-op), nothing is recorded and nothing is allocated per call
 * beyond a check.
 */

/** Attribute names of the pool's spans. */
export const SPAN_ATTRIBUTES = {
  profile: 'container_pool.profile',
  containerId: 'container_pool.container_id',
  exitCode: 'container_pool.exit_code',
  timedOut: 'container_pool.timed_out',
  oomKilled: 'container_pool.oom_killed',
  transport: 'container_pool.transport',
} as const;

type AttributeValue = string | number | boolean;
export type SpanAttributes = Record<string, AttributeValue | undefined | null>;

/** What the pool uses of a span (a subset of @opentelemetry/api's Span). */
export interface PoolSpan {
  setAttribute(key: string, value: AttributeValue): unknown;
  recordException(exception: Error): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  isRecording(): boolean;
  end(): void;
}

interface Tracer {
  startActiveSpan<T>(
    name: string,
    options: { attributes?: Record<string, AttributeValue> },
    fn: (span: PoolSpan) => T,
  ): T;
}

interface OtelApi {
  trace: { getTracer(name: string, version?: string): Tracer };
}

/** SpanStatusCode.ERROR of @opentelemetry/api. */
const STATUS_ERROR = 2;
const TRACER_NAME = 'container-pool';

function load(): OtelApi | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@opentelemetry/api') as OtelApi;
  } catch {
    return null;
  }
}

const api = load();

function defined(attributes: SpanAttributes): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}

/** Sets the attributes that are defined. */
export function setSpanAttributes(span: PoolSpan | null, attributes: SpanAttributes): void {
  if (!span?.isRecording()) return;
  for (const [k, v] of Object.entries(defined(attributes))) span.setAttribute(k, v);
}

function failed(span: PoolSpan, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  span.recordException(error);
  span.setStatus({ code: STATUS_ERROR, message: error.message });
}

/**
 * Runs `fn` in the span `container-pool.<name>` (the active span while it runs, so the host's spans nest):
 * ended when the promise settles, with the error recorded when it rejects.
 */
export function withSpan<T>(
  name: string,
  attributes: SpanAttributes,
  fn: (span: PoolSpan | null) => Promise<T>,
): Promise<T> {
  if (!api) return fn(null);
  const tracer = api.trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(
    `container-pool.${name}`,
    { attributes: defined(attributes) },
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        failed(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** withSpan for synchronous work. */
export function withSpanSync<T>(
  name: string,
  attributes: SpanAttributes,
  fn: (span: PoolSpan | null) => T,
): T {
  if (!api) return fn(null);
  const tracer = api.trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(
    `container-pool.${name}`,
    { attributes: defined(attributes) },
    (span) => {
      try {
        return fn(span);
      } catch (err) {
        failed(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
