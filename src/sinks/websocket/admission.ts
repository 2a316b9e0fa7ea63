/**
 * Who may connect to the WebSocket and what each client may do, kept out of the fan-out code:
 * the Origin allow-list, the client limit, the token's stream pattern against the requested
 * subscription (the token itself was checked by the HTTP endpoint, src/telemetry/auth), and a
 * token bucket per client for subscribe messages.
 */
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../../telemetry/auth/auth.js';
import type { WebsocketSinkConfig } from './config.js';

export type RejectReason = 'unauthorized' | 'forbidden' | 'origin' | 'full' | 'rate-limited' | 'too-large' | 'slow';

export interface Rejection {
  status: 401 | 403 | 503;
  reason: RejectReason;
  message: string;
}

export interface Admitted {
  principal: Principal;
  /** The `?streams=` subscription; undefined: every stream the principal may see. */
  streams: Set<string> | undefined;
}

export function parseStreams(list: string | null): Set<string> | undefined {
  if (!list) return undefined;
  const s = new Set(list.split(',').filter(Boolean));
  return s.size ? s : undefined;
}

/** Streams of `wanted` the principal may not see. */
export function forbiddenStreams(principal: Principal, wanted: Iterable<string>): string[] {
  const out: string[] = [];
  for (const s of wanted) if (!principal.allows(s)) out.push(s);
  return out;
}

export function admit(req: IncomingMessage, url: URL, config: WebsocketSinkConfig, principal: Principal, clients: number): Admitted | Rejection {
  const origin = req.headers.origin;
  if (origin !== undefined && config.allowedOrigins.length > 0 && !config.allowedOrigins.includes(origin)) {
    return { status: 403, reason: 'origin', message: `origin ${origin} is not allowed` };
  }
  if (clients >= config.maxClients) return { status: 503, reason: 'full', message: `at most ${config.maxClients} clients` };
  const streams = parseStreams(url.searchParams.get('streams'));
  if (streams) {
    const denied = forbiddenStreams(principal, streams);
    if (denied.length) return { status: 403, reason: 'forbidden', message: `this token may not see stream(s) ${denied.join(', ')}` };
  }
  return { principal, streams };
}

/** A token bucket: `ratePerSec` on average, `burst` at once; counts refusals in a row. */
export class RateLimit {
  private tokens: number;
  private last = performance.now();
  /** Refusals since the last accepted message. */
  refusedInARow = 0;

  constructor(private readonly ratePerSec: number, private readonly burst: number) {
    this.tokens = burst;
  }

  take(now = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.refusedInARow = 0;
      return true;
    }
    this.refusedInARow++;
    return false;
  }
}
