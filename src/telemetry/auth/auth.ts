/**
 * Bearer-token access control for the processor's HTTP server (docs/contracts.md, "Access
 * control"). The HTTP request handler and the WebSocket upgrade each call one method here; what
 * a token may see (its stream pattern) travels with the client as its Principal.
 *
 * Tokens are read once at start (env or file), kept only as SHA-256 digests, and compared in
 * constant time against every configured token, so neither timing nor an early exit tells which
 * one nearly matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { FramewireError } from '../../core/errors.js';
import { readSecret } from '../../config/secret.js';
import type { HttpAuthConfig } from './config.js';

/** The WebSocket subprotocol a browser offers to carry its token (browsers cannot set headers). */
export const BEARER_PROTOCOL_PREFIX = 'framewire.bearer.';
/** The subprotocol the server selects when a client offered its token that way. */
export const WS_PROTOCOL = 'framewire';

/** A client that presented a valid token. */
export class Principal {
  private readonly cache = new Map<string, boolean>();

  constructor(
    readonly name: string,
    /** Streams this token may see; undefined: every stream. */
    readonly streams: RegExp | undefined,
  ) {}

  /** Whether messages of `stream` may reach this principal's clients (memoised, bounded). */
  allows(stream: string): boolean {
    if (!this.streams) return true;
    let ok = this.cache.get(stream);
    if (ok === undefined) {
      ok = this.streams.test(stream);
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(stream, ok);
    }
    return ok;
  }
}

/** Anyone, when no tokens are configured. */
export const ANONYMOUS = new Principal('anonymous', undefined);

export interface Denial {
  status: 401 | 403;
  reason: 'unauthorized' | 'forbidden';
  message: string;
}

const UNAUTHORIZED: Denial = { status: 401, reason: 'unauthorized', message: 'a valid bearer token is required' };

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class HttpAuth {
  private readonly tokens: { digest: Buffer; principal: Principal }[];

  private constructor(private readonly config: HttpAuthConfig, env: NodeJS.ProcessEnv) {
    this.tokens = config.tokens.map((t, i) => {
      let pattern: RegExp | undefined;
      try {
        pattern = t.streams === undefined ? undefined : new RegExp(t.streams);
      } catch (err) {
        throw new FramewireError('TOPOLOGY_INVALID', 'config', `http.auth.tokens[${i}].streams: not a regular expression: ${(err as Error).message}`);
      }
      return { digest: digest(readSecret(t.secret, `http.auth.tokens[${i}].secret`, env)), principal: new Principal(t.name, pattern) };
    });
  }

  /** The access control a configuration asks for; undefined when it has no tokens (open). */
  static fromConfig(config: HttpAuthConfig, env: NodeJS.ProcessEnv = process.env): HttpAuth | undefined {
    return config.tokens.length === 0 ? undefined : new HttpAuth(config, env);
  }

  /** The principal of a presented token, or undefined. Every configured token is compared. */
  principalOf(token: string | undefined): Principal | undefined {
    if (!token) return undefined;
    const d = digest(token);
    let found: Principal | undefined;
    for (const t of this.tokens) if (timingSafeEqual(t.digest, d) && !found) found = t.principal;
    return found;
  }

  /**
   * For plain HTTP requests: undefined when allowed, else the denial. /metrics and /healthz,
   * /readyz are open unless `protectMetrics` / `protectHealth`; everything else (the dashboard)
   * needs a token.
   */
  checkRequest(req: IncomingMessage, url: URL): Denial | undefined {
    const p = url.pathname;
    if (p === '/metrics' && !this.config.protectMetrics) return undefined;
    if ((p === '/healthz' || p === '/readyz') && !this.config.protectHealth) return undefined;
    return this.principalOf(presentedToken(req, url)) ? undefined : UNAUTHORIZED;
  }

  /** For a WebSocket upgrade: the client's principal, or the denial. */
  authenticateUpgrade(req: IncomingMessage, url: URL): Principal | Denial {
    return this.principalOf(presentedToken(req, url)) ?? UNAUTHORIZED;
  }
}

/**
 * The token a request carries: `Authorization: Bearer <token>`, else the `token` query
 * parameter, else a `framewire.bearer.<token>` WebSocket subprotocol.
 */
export function presentedToken(req: IncomingMessage, url: URL): string | undefined {
  const h = req.headers.authorization;
  if (h) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    return m ? m[1] : undefined;
  }
  const q = url.searchParams.get('token');
  if (q) return q;
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols) {
    for (const p of protocols.split(',')) {
      const s = p.trim();
      if (s.startsWith(BEARER_PROTOCOL_PREFIX)) return s.slice(BEARER_PROTOCOL_PREFIX.length);
    }
  }
  return undefined;
}

export function isDenial(x: Principal | Denial): x is Denial {
  return !(x instanceof Principal);
}

/** A whole HTTP response (status line, headers, JSON body) for refusing an upgrade on its raw socket. */
export function rawHttpResponse(status: number, reason: string, message: string): string {
  const text = { 401: 'Unauthorized', 403: 'Forbidden', 503: 'Service Unavailable' }[status] ?? 'Error';
  const body = JSON.stringify({ error: reason, message });
  const extra = status === 401 ? 'WWW-Authenticate: Bearer realm="framewire"\r\n' : '';
  return `HTTP/1.1 ${status} ${text}\r\n${extra}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
