/**
 * Webhook sink: one HTTP POST per alert record, in order, from a bounded queue (full: the oldest
 * is dropped and counted). Failures (network, timeout, non-2xx) are retried with exponential
 * backoff and full jitter up to `maxAttempts`; a 4xx other than 408/429 is not retried. Sending
 * runs beside the pipeline: `publishAlerts` only enqueues, so a receiver that is down never
 * slows it. With a secret, `X-Framewire-Signature: sha256=<hex>` is the HMAC-SHA256 of the body.
 * With `includeSnapshot`, a firing alert's POST waits (in order, up to `snapshotWaitMs` after
 * the alert was published) for its JPEG snapshot and carries it.
 */
import { createHmac } from 'node:crypto';
import { log } from '../../core/log.js';
import type { Metrics } from '../../telemetry/metrics.js';
import type { AlertBatch, AlertSnapshots, Sink, SnapshotOutcome } from '../../core/sink.js';
import type { WebhookSinkConfig } from './config.js';

export const SIGNATURE_HEADER = 'x-framewire-signature';

/** `sha256=<hex>` of the body under the secret (what a receiver recomputes to verify). */
export function signature(secret: string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * The body of a firing alert with its snapshot: the record's JSON text with `snapshot` (or, when
 * there is none, `snapshotMissing` and why) added as its last field.
 */
export function withSnapshot(json: string, outcome: SnapshotOutcome): string {
  const s = outcome.snapshot;
  const extra = s ? `"snapshot":${JSON.stringify({ contentType: s.contentType, width: s.width, height: s.height, frame: s.frame, jpeg: s.jpeg })}` : `"snapshotMissing":${JSON.stringify(outcome.missing)}`;
  return `${json.slice(0, -1)},${extra}}`;
}

interface Pending {
  id: string;
  body: string;
  /** A firing record whose POST waits for its snapshot until this (Unix ms); 0: it does not. */
  snapshotUntil: number;
}

export class WebhookSink implements Sink {
  readonly name = 'webhook';
  private readonly queue: Pending[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  /** The queue's head is being delivered (it stays at the head until done). */
  private sending = false;
  private readonly loop: Promise<void>;
  private abort = new AbortController();

  readonly sendsSnapshots: boolean;

  constructor(private readonly config: WebhookSinkConfig, private readonly metrics: Metrics, private readonly snapshots?: AlertSnapshots) {
    this.sendsSnapshots = config.includeSnapshot && snapshots !== undefined;
    this.loop = this.run();
  }

  /** Alerts waiting (not counting the one being delivered). */
  get queued(): number {
    return this.queue.length - (this.sending ? 1 : 0);
  }

  async publishLabels(): Promise<void> {}
  async publishEvents(): Promise<void> {}

  /** Enqueues the batch's records (their shared JSON text is the body). */
  async publishAlerts(batch: AlertBatch): Promise<void> {
    const json = batch.json;
    const until = this.sendsSnapshots ? Date.now() + this.config.snapshotWaitMs : 0;
    for (let i = 0; i < json.length; i++) {
      if (this.queued >= this.config.queueSize) {
        // The oldest waiting one goes; the one being delivered stays.
        this.queue.splice(this.sending ? 1 : 0, 1);
        this.metrics.webhookDropped.inc({ reason: 'queue-full' });
      }
      const r = batch.records[i]!;
      this.queue.push({ id: r.id, body: json[i]!, snapshotUntil: r.state === 'firing' ? until : 0 });
    }
    this.metrics.webhookQueue.set(this.queued);
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const next = this.queue[0];
      if (!next) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      this.sending = true;
      if (next.snapshotUntil > 0) {
        next.body = withSnapshot(next.body, await this.snapshots!.snapshotOf(next.id, next.snapshotUntil));
        next.snapshotUntil = 0;
      }
      const ok = await this.deliver(next);
      this.sending = false;
      this.queue.shift();
      this.metrics.webhookQueue.set(this.queue.length);
      if (ok) this.metrics.webhookSent.inc();
    }
  }

  private async deliver(p: Pending): Promise<boolean> {
    const c = this.config;
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-framewire-alert-id': p.id };
    if (c.secret) headers[SIGNATURE_HEADER] = signature(c.secret, p.body);
    for (let attempt = 1; ; attempt++) {
      let problem: string;
      let retriable = true;
      try {
        const res = await fetch(c.url, { method: 'POST', headers, body: p.body, signal: AbortSignal.any([AbortSignal.timeout(c.timeoutMs), this.abort.signal]) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        problem = `HTTP ${res.status}`;
        retriable = res.status >= 500 || res.status === 408 || res.status === 429;
      } catch (err) {
        problem = (err as Error).message;
      }
      if (this.closed) return false;
      this.metrics.webhookErrors.inc();
      if (!retriable || attempt >= c.maxAttempts) {
        this.metrics.webhookDropped.inc({ reason: retriable ? 'retries' : 'rejected' });
        log.warn('webhook gave up on an alert', { url: c.url, id: p.id, attempts: attempt, problem });
        return false;
      }
      log.once('warn', `webhook:${c.url}`, 'webhook delivery failed; retrying with backoff', { url: c.url, problem });
      // Full jitter: a random delay up to the exponential cap.
      const delay = Math.random() * Math.min(c.maxBackoffMs, c.backoffMs * 2 ** (attempt - 1));
      await new Promise<void>((r) => {
        const wake = () => (clearTimeout(t), r());
        const t = setTimeout(() => (this.abort.signal.removeEventListener('abort', wake), r()), delay);
        this.abort.signal.addEventListener('abort', wake, { once: true });
      });
      if (this.closed) return false;
    }
  }

  /** Gives the queue up to `graceMs` to empty, then stops (what is left is counted as dropped). */
  async close(graceMs = 2000): Promise<void> {
    const until = Date.now() + graceMs;
    while (this.queue.length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    this.closed = true;
    if (this.queue.length) this.metrics.webhookDropped.inc({ reason: 'shutdown' }, this.queue.length);
    this.queue.length = 0;
    this.abort.abort();
    const w = this.wake;
    this.wake = undefined;
    w?.();
    await this.loop;
  }
}
