/**
 * A ModelStreamInfer stream: many requests in flight on one HTTP/2 stream, responses matched to
 * requests by id. Triton reports a failed request in-band (`error_message`, stream stays open);
 * those become FramewireErrors for that request. A broken stream rejects every pending request.
 */
import type * as grpc from '@grpc/grpc-js';
import { FramewireError } from '../../core/errors.js';
import { toInferError } from './errors.js';
import type { InferRequest, InferResponse, StreamInferResponse } from './types.js';

export type DuplexCall = grpc.ClientDuplexStream<InferRequest, StreamInferResponse>;

interface Pending {
  resolve: (res: InferResponse) => void;
  reject: (err: FramewireError) => void;
  /** Date.now() after which the request is abandoned (late responses are ignored). */
  expiresAt: number;
}

/** How often pending requests are checked against their deadlines (one timer, not one per request). */
const SWEEP_MS = 20;

export class InferStream {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;
  private broken: FramewireError | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly call: DuplexCall) {
    call.on('data', (msg: StreamInferResponse) => this.onResponse(msg));
    call.on('error', (err: grpc.ServiceError) => this.fail(toInferError(err, 'ModelStreamInfer')));
    call.on('end', () => this.fail(new FramewireError('INFER_UNAVAILABLE', 'infer', 'Triton ModelStreamInfer: stream ended by the server', { retriable: true })));
  }

  /** Requests sent and not yet answered. */
  get outstanding(): number {
    return this.pending.size;
  }

  /**
   * Sends one request. Its `id` matches the response; an empty id is replaced by a unique one.
   * Rejects with INFER_DEADLINE_EXCEEDED (retriable) when no response arrives within `deadlineMs`.
   */
  infer(req: InferRequest, deadlineMs: number): Promise<InferResponse> {
    if (this.broken) return Promise.reject(this.broken);
    if (!req.id) req.id = `fw-s${++this.seq}`;
    const id = req.id;
    if (this.pending.has(id)) {
      return Promise.reject(new FramewireError('INFER_INVALID_ARGUMENT', 'infer', `Triton ModelStreamInfer: request id '${id}' is already in flight on this stream`));
    }
    return new Promise<InferResponse>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, expiresAt: Date.now() + deadlineMs });
      if (!this.sweeper) this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      this.call.write(req);
    });
  }

  /** Half-closes: no more requests; pending ones still complete. Idempotent. */
  end(): void {
    if (!this.broken) this.call.end();
  }

  /**
   * Gives up on the stream: pending requests reject with INFER_FAILED at once and later responses
   * are ignored. Half-closes rather than cancels: with grpc-js, a cancelled stream Triton is still
   * answering keeps the connection's keepalive timer (and so the process) alive. Idempotent.
   */
  close(): void {
    if (this.broken) return;
    this.fail(new FramewireError('INFER_FAILED', 'infer', 'Triton ModelStreamInfer: stream closed by the client', { retriable: false }));
    this.call.end();
  }

  private onResponse(msg: StreamInferResponse): void {
    const id = msg.infer_response?.id ?? '';
    let p = this.pending.get(id);
    // An error that names no request can only belong to the sole pending one.
    if (!p && msg.error_message && this.pending.size === 1) {
      const [only] = this.pending.entries();
      p = only![1];
      this.pending.delete(only![0]);
    } else if (p) {
      this.pending.delete(id);
    }
    if (!p) return; // late (already timed out) or unknown
    if (p.expiresAt < Date.now()) {
      // Past its deadline before the sweeper noticed: late is late, whatever the response says.
      p.reject(new FramewireError('INFER_DEADLINE_EXCEEDED', 'infer', `Triton ModelStreamInfer request '${id}': response after its deadline`, { retriable: true }));
    } else if (msg.error_message) {
      // Triton gives no status code in-band; a rejected request is not retried on the same terms.
      p.reject(new FramewireError('INFER_FAILED', 'infer', `Triton ModelStreamInfer request '${id}': ${msg.error_message}`, { retriable: false }));
    } else {
      p.resolve(msg.infer_response!);
    }
    if (this.pending.size === 0) this.stopSweeper();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.expiresAt > now) continue;
      this.pending.delete(id);
      p.reject(new FramewireError('INFER_DEADLINE_EXCEEDED', 'infer', `Triton ModelStreamInfer request '${id}': no response within its deadline`, { retriable: true }));
    }
    if (this.pending.size === 0) this.stopSweeper();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private fail(err: FramewireError): void {
    if (this.broken) return;
    // Responses still arriving after a local failure are dropped (nothing is pending).
    this.broken = err;
    this.stopSweeper();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
  }
}
