/**
 * The one retry loop of the code base: a bounded number of attempts, exponential backoff with
 * full jitter (AWS's "full jitter": a uniform wait in [0, min(max, base·2^attempt)]), and an
 * AbortSignal that ends the wait at once (shutdown). Whether an error is worth another attempt
 * is read from `retriable` (FramewireError, and kafkajs errors which carry the same flag);
 * nothing parses messages.
 */
import { FramewireError } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, the first one included; Infinity retries until it succeeds or is aborted. */
  attempts: number;
  /** Upper bound of the first wait, ms. */
  baseMs: number;
  /** Upper bound of any wait, ms. */
  maxMs: number;
  /** Aborting rejects at once with the signal's reason (the attempt under way is not awaited). */
  signal?: AbortSignal;
  /** Whether `err` is worth another attempt; default `isRetriableError`. */
  retriable?: (err: unknown) => boolean;
  /** Told before each wait (logging, metrics); `attempt` is the 0-based attempt that failed. */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
  /** Uniform [0, 1) source; tests pass a fixed one. */
  random?: () => number;
}

/**
 * The longest wait between two attempts of a request that fails because a broker or server is
 * unreachable (publishing labels and drops, dead-lettering, the Kafka clients' reconnects): once
 * it is back, the next attempt is at most this far away. A live stream has to be labelled within
 * its budget again soon after an outage ends (issue #20: 2 s); a longer backoff would spend that
 * waiting. An attempt against a broker that is down costs one refused connection.
 */
export const OUTAGE_RETRY_MAX_MS = 1000;

/** The first wait of such a request, ms: a broker that dropped one connection is usually back at once. */
export const OUTAGE_RETRY_BASE_MS = 100;

/** `retriable === true` on the error (FramewireError, KafkaJSError); anything else is final. */
export function isRetriableError(err: unknown): boolean {
  if (err instanceof FramewireError) return err.retriable;
  return typeof err === 'object' && err !== null && (err as { retriable?: unknown }).retriable === true;
}

/** The wait before attempt `attempt + 1`: uniform in [0, min(maxMs, baseMs·2^attempt)]. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return random() * cap;
}

/** The error an aborted wait rejects with: the signal's reason, or an AbortError. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('aborted', 'AbortError');
}

/** An abort (AbortController.abort()) or a timeout signal (AbortSignal.timeout) ended the wait. */
export function isAbort(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return name === 'AbortError' || name === 'TimeoutError';
}

/** Waits `ms`; rejects with the abort reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `fn` until it resolves, an error is not retriable, the attempts are used up (the last
 * error is thrown) or `signal` aborts (its reason is thrown, also while an attempt is under way).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const retriable = o.retriable ?? isRetriableError;
  const signal = o.signal;
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw abortReason(signal);
    try {
      return signal ? await raceAbort(fn(attempt), signal) : await fn(attempt);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (attempt + 1 >= o.attempts || !retriable(err)) throw err;
      const wait = backoffMs(attempt, o.baseMs, o.maxMs, o.random);
      o.onRetry?.(err, attempt, wait);
      await sleep(wait, signal);
    }
  }
}

/** `p`, or the abort reason as soon as the signal aborts (p's own outcome is then ignored). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      p.catch(() => undefined);
      reject(abortReason(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
