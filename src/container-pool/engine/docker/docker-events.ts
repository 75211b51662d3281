import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { BACKOFF_INITIAL_MS } from '../../container-pool.constants';
import type {
  EngineEventHandlers,
  EngineEventType,
  EventSubscription,
} from '../container-driver.interface';
import { labelFilters } from './docker-call';

const WATCHED_EVENTS: EngineEventType[] = ['oom', 'die', 'destroy'];
const EVENT_RECONNECT_MAX_MS = 5_000;

/** One event as the engine's event stream writes it (JSON lines). */
interface RawEvent {
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

interface EventStreamHooks {
  /** The getEvents options of each (re)connect. */
  options(): Record<string, unknown>;
  /** Each event, in order (a malformed line is skipped). */
  onEvent(event: RawEvent): void;
  onConnected?(): void;
  /** The stream could not be opened or ended; a reconnect follows after the back-off. */
  onLost?(error: Error): void;
  /** Whether the reconnect timer may keep the process alive. */
  refTimer: boolean;
}

/**
 * Follows one filtered engine event stream: JSON lines parsed one by one, and a reconnect with doubling back-off
 * (up to EVENT_RECONNECT_MAX_MS) whenever it cannot be opened or ends (an engine restart ends it), until closed.
 */
function followEvents(docker: Dockerode, hooks: EventStreamHooks): EventSubscription {
  let closed = false;
  let stream: Readable | undefined;
  let timer: NodeJS.Timeout | undefined;
  let delayMs = BACKOFF_INITIAL_MS;
  const reconnect = (error: Error) => {
    stream = undefined;
    if (closed) return;
    hooks.onLost?.(error);
    timer = setTimeout(connect, delayMs);
    if (!hooks.refTimer) timer.unref();
    delayMs = Math.min(delayMs * 2, EVENT_RECONNECT_MAX_MS);
  };
  const connect = () => {
    timer = undefined;
    if (closed) return;
    docker.getEvents(hooks.options(), (err, s) => {
      if (closed) {
        (s as Readable | undefined)?.destroy();
        return;
      }
      if (err || !s) return reconnect(err ?? new Error('no event stream'));
      const current = s as Readable;
      stream = current;
      delayMs = BACKOFF_INITIAL_MS;
      hooks.onConnected?.();
      let pending = '';
      current.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line) continue;
          try {
            hooks.onEvent(JSON.parse(line) as RawEvent);
          } catch {
            // A malformed line is skipped; the next one is independent.
          }
        }
      });
      let ended = false;
      const onGone = (e?: Error) => {
        if (ended) return;
        ended = true;
        current.removeAllListeners('data');
        reconnect(e ?? new Error('the engine closed the event stream'));
      };
      current.once('end', () => onGone());
      current.once('close', () => onGone());
      current.once('error', (e: Error) => onGone(e));
    });
  };
  connect();
  return {
    close: () => {
      closed = true;
      if (timer) clearTimeout(timer);
      stream?.destroy();
      stream = undefined;
    },
  };
}

/**
 * Follows the engine's `oom`/`die`/`destroy` events of the containers carrying these labels. The stream ends when
 * the engine restarts: it reconnects with back-off, replays from the last second seen (`since`) and reports each
 * event once.
 */
export function watchDockerEvents(
  docker: Dockerode,
  labels: Record<string, string>,
  handlers: EngineEventHandlers,
): EventSubscription {
  let sinceSec: number | undefined;
  const seen = new Set<string>();
  let connected = false;
  const setStatus = (next: boolean, error?: Error) => {
    if (next !== connected || error) handlers.onStatus(next, error);
    connected = next;
  };
  return followEvents(docker, {
    refTimer: true,
    options: () => {
      const opts: Record<string, unknown> = {
        filters: { type: ['container'], event: WATCHED_EVENTS, label: labelFilters(labels) },
      };
      if (sinceSec !== undefined) opts.since = String(sinceSec);
      return opts;
    },
    onConnected: () => {
      // Events while disconnected are replayed from here on the next reconnect.
      sinceSec ??= Math.floor(Date.now() / 1000) - 1;
      setStatus(true);
    },
    onLost: (error) => setStatus(false, error),
    onEvent: (ev) => {
      const type = (ev.Action ?? ev.status) as EngineEventType;
      const id = ev.Actor?.ID ?? ev.id;
      const timeMs = ev.timeNano ? Math.floor(ev.timeNano / 1e6) : (ev.time ?? 0) * 1000;
      if (ev.time) sinceSec = ev.time;
      // A reconnect replays from the last second seen: report each event once.
      const key = `${id}:${type}:${ev.timeNano ?? ev.time}`;
      if (seen.has(key)) return;
      seen.add(key);
      if (seen.size > 1000) seen.delete(seen.values().next().value as string);
      if (id && WATCHED_EVENTS.includes(type)) handlers.onEvent({ type, containerId: id, timeMs });
    },
  });
}

const IMAGE_EVENTS = ['tag', 'import', 'load', 'pull'];

/**
 * Follows the engine's image events that may give a name another image (`tag`, which `docker import` and
 * `docker build -t` emit too, `import`, `load`, `pull`), reconnecting with back-off. No replay: what is missed
 * while disconnected the pools' scheduled check of their image's id catches.
 */
export function watchDockerImageEvents(
  docker: Dockerode,
  onEvent: (event: { action: string; image: string }) => void,
): EventSubscription {
  return followEvents(docker, {
    refTimer: false,
    options: () => ({ filters: { type: ['image'], event: IMAGE_EVENTS } }),
    onEvent: (ev) => {
      const action = ev.Action ?? ev.status ?? '';
      const image = ev.Actor?.Attributes?.name ?? ev.Actor?.ID ?? ev.id ?? '';
      if (IMAGE_EVENTS.includes(action)) onEvent({ action, image });
    },
  });
}
