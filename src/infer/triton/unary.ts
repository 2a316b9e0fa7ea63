/**
 * ModelInfer without copying the tensor: a lean gRPC unary call over node:http2, wire-compatible
 * with Triton's `inference.GRPCInferenceService/ModelInfer` (same proto, same framing, same
 * status trailers), beside the grpc-js channel the control calls use.
 *
 * Why not grpc-js for this one method: grpc-js serialises a request into one protobuf buffer
 * (protobufjs copies every raw_input_contents into it), then frames it into a second buffer of
 * the same size (5-byte prefix + copy), so each request allocated and filled two tensor-sized
 * buffers, and its call machinery (resolving/retrying/load-balancing calls, filter promises) was
 * the largest share of the client's CPU at batch 1. Here a request is:
 *
 *   [gRPC prefix | cached fields | per-request fields | raw_input_contents tag+length]  (a few hundred bytes)
 *   [the caller's tensor buffer, as it is]                                              (never copied in JS)
 *
 * written to the HTTP/2 stream in one writev. The fixed part of the message (model, version,
 * inputs' names, datatypes, shapes and parameters, outputs) is encoded once per distinct value and
 * cached; `id` and request `parameters` (the per-batch timeout) are encoded per request. Protobuf
 * allows fields in any order and merges repeated fields, so the concatenation is a valid
 * ModelInferRequest; Triton parses it like any other.
 *
 * The caller's buffers must not change until the returned promise settles (it settles only after
 * the stream is closed, when the bytes have been sent or the stream abandoned).
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { FramewireError } from '../../core/errors.js';
import { toInferError } from './errors.js';
import type { InferRequest, InferResponse } from './types.js';

export type Serialize = (msg: unknown) => Buffer;
export type Deserialize = (buf: Buffer) => unknown;

const PATH = '/inference.GRPCInferenceService/ModelInfer';
/** raw_input_contents is field 7, length-delimited: tag (7 << 3) | 2. */
const RAW_INPUT_TAG = 0x3a;
/** Distinct fixed parts kept (models × batch shapes × shm slots); cleared when exceeded. */
const MAX_CACHED_HEADERS = 512;

/** gRPC status names, for messages like grpc-js's ("14 UNAVAILABLE: ..."). */
const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;
const INTERNAL = 13;
const CANCELLED = 1;

/** An error shaped like grpc-js's ServiceError, so toInferError maps it the same way. */
function statusError(code: number, details: string): Error & { code: number; details: string } {
  const e = new Error(`${code} ${STATUS_NAMES[code] ?? 'UNKNOWN'}: ${details}`) as Error & { code: number; details: string };
  e.code = code;
  e.details = details;
  return e;
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** gRPC's timeout header: at most 8 digits, in the coarsest unit that keeps them. */
function grpcTimeout(ms: number): string {
  const m = Math.max(1, Math.ceil(ms));
  return m < 1e8 ? `${m}m` : `${Math.ceil(m / 1000)}S`;
}

/** Encodes ModelInferRequests as a small header plus the untouched tensor buffers. */
export class InferRequestEncoder {
  private readonly fixed = new Map<string, Buffer>();

  constructor(private readonly serialize: Serialize) {}

  /** Cached fixed fields currently held (tests). */
  get cachedHeaders(): number {
    return this.fixed.size;
  }

  /**
   * The gRPC-framed request as chunks: one small header (prefix, fields, the first tensor's tag
   * and length), then each tensor (with the next one's tag and length between them).
   */
  encode(req: InferRequest): Buffer[] {
    const key = `${req.model_name}\u0000${req.model_version ?? ''}\u0000${JSON.stringify(req.inputs)}\u0000${JSON.stringify(req.outputs ?? [])}`;
    let fixed = this.fixed.get(key);
    if (!fixed) {
      if (this.fixed.size >= MAX_CACHED_HEADERS) this.fixed.clear();
      fixed = this.serialize({ model_name: req.model_name, model_version: req.model_version ?? '', inputs: req.inputs, outputs: req.outputs ?? [] });
      this.fixed.set(key, fixed);
    }
    const perRequest = req.id || req.parameters ? this.serialize({ id: req.id ?? '', parameters: req.parameters ?? {} }) : undefined;
    const raw = req.raw_input_contents;
    let total = fixed.length + (perRequest?.length ?? 0);
    for (const t of raw) total += 1 + varintLength(t.length) + t.length;
    // Header: prefix + fixed + per-request + the first tensor's tag/length.
    const first = raw[0];
    const headLen = 5 + fixed.length + (perRequest?.length ?? 0) + (first ? 1 + varintLength(first.length) : 0);
    const head = Buffer.allocUnsafe(headLen);
    head[0] = 0; // not compressed
    head.writeUInt32BE(total, 1);
    let pos = 5 + fixed.copy(head, 5);
    if (perRequest) pos += perRequest.copy(head, pos);
    if (!first) return [head];
    head[pos++] = RAW_INPUT_TAG;
    writeVarint(head, pos, first.length);
    const chunks = [head, first];
    for (let i = 1; i < raw.length; i++) {
      const t = raw[i]!;
      const sep = Buffer.allocUnsafe(1 + varintLength(t.length));
      sep[0] = RAW_INPUT_TAG;
      writeVarint(sep, 1, t.length);
      chunks.push(sep, t);
    }
    return chunks;
  }
}

export interface UnaryInferOptions {
  /** host:port */
  url: string;
  serialize: Serialize;
  deserialize: Deserialize;
  /** Ping an HTTP/2 connection with requests in flight after this long without an answer (ms). */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** TLS instead of plaintext: the client's secure context, and the name to verify when not the host. */
  tls?: { context: tls.SecureContext; servername?: string };
}

interface Session {
  h2: http2.ClientHttp2Session;
  active: number;
  /** No longer given new requests (GOAWAY, error, close). */
  gone: boolean;
  lastRead: number;
  keepalive: NodeJS.Timeout | undefined;
}

/**
 * One HTTP/2 connection for ModelInfer, opened on first use and again after it fails (the pool's
 * health checks decide when an endpoint gets requests; a request to an unreachable Triton fails
 * at once as INFER_UNAVAILABLE). Not holding the process open while idle.
 */
export class UnaryInfer {
  readonly encoder: InferRequestEncoder;
  private session: Session | undefined;
  private closed = false;
  private readonly headers: http2.OutgoingHttpHeaders;
  private readonly keepaliveTimeMs: number;
  private readonly keepaliveTimeoutMs: number;

  constructor(private readonly o: UnaryInferOptions) {
    this.encoder = new InferRequestEncoder(o.serialize);
    this.keepaliveTimeMs = o.keepaliveTimeMs ?? 10_000;
    this.keepaliveTimeoutMs = o.keepaliveTimeoutMs ?? 5_000;
    this.headers = {
      ':method': 'POST',
      ':path': PATH,
      ':authority': o.url,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'framewire-infer',
    };
  }

  private connect(): Session {
    if (this.session && !this.session.gone) return this.session;
    const [host, port] = splitHostPort(this.o.url);
    const secure = this.o.tls;
    const h2 = http2.connect(`${secure ? 'https' : 'http'}://${this.o.url}`, {
      createConnection: secure
        ? () => {
            // An IP address is verified against the certificate's IP SANs; SNI takes only names.
            const servername = secure.servername ?? (net.isIP(host) ? undefined : host);
            const socket = tls.connect({ host, port, secureContext: secure.context, servername, ALPNProtocols: ['h2'] });
            socket.setNoDelay(true);
            return socket;
          }
        : () => net.connect({ host, port, noDelay: true }),
      settings: { enablePush: false, initialWindowSize: 1 << 24 },
      // Node's default 10 MB budget counts queued outgoing data: batches of large tensors in
      // flight would exceed it and get their streams refused.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
    });
    const s: Session = { h2, active: 0, gone: false, lastRead: Date.now(), keepalive: undefined };
    const drop = () => {
      s.gone = true;
      if (s.keepalive) clearInterval(s.keepalive);
      s.keepalive = undefined;
      if (this.session === s) this.session = undefined;
    };
    h2.on('error', drop); // each stream reports its own failure
    h2.on('goaway', drop); // streams already sent complete; new ones go to a new connection
    h2.on('close', drop);
    h2.once('remoteSettings', () => h2.setLocalWindowSize(1 << 24));
    h2.unref();
    this.session = s;
    return s;
  }

  private startKeepalive(s: Session): void {
    if (s.keepalive || this.keepaliveTimeMs <= 0) return;
    s.keepalive = setInterval(() => {
      if (s.active === 0 || Date.now() - s.lastRead < this.keepaliveTimeMs) return;
      let answered = false;
      const t = setTimeout(() => {
        if (!answered) s.h2.destroy(new Error(`no keepalive ping answer from ${this.o.url} within ${this.keepaliveTimeoutMs} ms`));
      }, this.keepaliveTimeoutMs);
      t.unref();
      try {
        s.h2.ping((err) => {
          answered = true;
          clearTimeout(t);
          if (!err) s.lastRead = Date.now();
        });
      } catch {
        /* destroyed meanwhile */
      }
    }, this.keepaliveTimeMs);
    s.keepalive.unref();
  }

  /** One ModelInfer. Failures are FramewireErrors mapped from gRPC status codes like grpc-js's. */
  infer(req: InferRequest, deadlineMs: number): Promise<InferResponse> {
    if (this.closed) return Promise.reject(new FramewireError('INFER_UNAVAILABLE', 'infer', 'Triton client is closed', { retriable: false }));
    const chunks = this.encoder.encode(req);
    return new Promise<InferResponse>((resolve, reject) => {
      const fail = (code: number, details: string) => reject(toInferError(statusError(code, details), 'ModelInfer'));
      let s: Session;
      let stream: http2.ClientHttp2Stream;
      try {
        s = this.connect();
        stream = s.h2.request({ ...this.headers, 'grpc-timeout': grpcTimeout(deadlineMs) }, { endStream: false });
      } catch (err) {
        if (this.session) {
          this.session.gone = true;
          this.session = undefined;
        }
        fail(UNAVAILABLE, `cannot start a request to ${this.o.url}: ${(err as Error).message}`);
        return;
      }
      if (s.active++ === 0) s.h2.ref();
      this.startKeepalive(s);
      const data: Buffer[] = [];
      let status: number | undefined;
      let message = '';
      let httpStatus = 0;
      let streamError: (Error & { code?: string }) | undefined;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, deadlineMs);
      const takeStatus = (h: http2.IncomingHttpHeaders) => {
        const g = h['grpc-status'];
        if (g !== undefined) {
          status = Number(g);
          const m = h['grpc-message'];
          if (typeof m === 'string') {
            try {
              message = decodeURIComponent(m);
            } catch {
              message = m;
            }
          }
        }
      };
      stream.on('response', (h) => {
        httpStatus = Number(h[':status']);
        s.lastRead = Date.now();
        takeStatus(h); // trailers-only response (an error before any message)
      });
      stream.on('data', (d: Buffer) => {
        s.lastRead = Date.now();
        data.push(d);
      });
      stream.on('trailers', takeStatus);
      stream.on('error', (err) => (streamError = err));
      stream.on('close', () => {
        clearTimeout(timer);
        if (--s.active === 0 && !s.h2.destroyed) s.h2.unref();
        if (timedOut) return fail(DEADLINE_EXCEEDED, `deadline of ${deadlineMs} ms exceeded`);
        if (status === undefined) {
          if (streamError) {
            // Connection refused/reset, GOAWAY, RST_STREAM: Triton unreachable or gone (what grpc-js reports as UNAVAILABLE).
            const code = stream.rstCode === http2.constants.NGHTTP2_CANCEL ? CANCELLED : UNAVAILABLE;
            return fail(code, `${streamError.code ?? ''} ${streamError.message}`.trim());
          }
          if (httpStatus !== 200 && httpStatus !== 0) return fail(httpStatus === 503 || httpStatus === 502 || httpStatus === 504 || httpStatus === 429 ? UNAVAILABLE : INTERNAL, `HTTP status ${httpStatus}`);
          return fail(UNAVAILABLE, `stream closed without a gRPC status (rst code ${stream.rstCode})`);
        }
        if (status !== 0) return fail(status, message);
        const body = data.length === 1 ? data[0]! : Buffer.concat(data);
        if (body.length < 5) return fail(INTERNAL, 'response without a message');
        if (body[0] !== 0) return fail(INTERNAL, 'compressed response (not requested)');
        const len = body.readUInt32BE(1);
        if (body.length < 5 + len) return fail(INTERNAL, `truncated response: ${body.length - 5} of ${len} bytes`);
        try {
          resolve(this.o.deserialize(body.subarray(5, 5 + len)) as InferResponse);
        } catch (err) {
          fail(INTERNAL, `cannot parse ModelInferResponse: ${(err as Error).message}`);
        }
      });
      // Header and tensors in one writev; the tensors are referenced, not copied.
      stream.cork();
      for (const c of chunks) stream.write(c);
      stream.end();
      stream.uncork();
    });
  }

  /** New requests are refused; ones in flight complete. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    if (s) {
      s.gone = true;
      if (s.keepalive) clearInterval(s.keepalive);
      s.h2.close();
    }
  }
}

function splitHostPort(url: string): [string, number] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(url);
  if (!m) return [url, 80];
  return [m[1]!, Number(m[2])];
}
