/**
 * Clean starts and stops of a running topology (`framewire run`):
 *  - start-up steps that wait for a dependency share one deadline (`startupTimeoutMs`): a Kafka or
 *    Triton that is not reachable by then fails the start with STARTUP_TIMEOUT, naming it;
 *  - a failed start closes what it opened (no consumer-group membership is left) and exits
 *    non-zero with one line;
 *  - SIGTERM/SIGINT drains; the process is gone within `shutdown.drainTimeoutMs` + 5 s whatever
 *    its dependencies do; a second signal exits at once.
 */
import { FramewireError, isRetriable } from '../core/errors.js';
import { log } from '../core/log.js';
import { abortReason, isAbort, raceAbort, retry } from '../core/retry.js';

/** Past the drain deadline, closing connections gets this long before the process exits anyway. */
export const FORCE_EXIT_MARGIN_MS = 4500;

/**
 * Bounds of the shutdown steps after the drain, ms (topology/running.ts): with Kafka or Triton
 * down, a commit or a disconnect may never answer. The source's is the longest: its last commit
 * and leaving the group spare the next member a session timeout. When every step runs out, the
 * force exit (FORCE_EXIT_MARGIN_MS) cuts the last ones short; the process still goes.
 */
export const SHUTDOWN_STEP_MS = { decoders: 1000, source: 2000, monitor: 500, sinks: 500, kafka: 1000, triton: 500, http: 500 } as const;

/** A failed start closes what it opened, each step bounded so the exit stays prompt, ms. */
export const FAILED_START_STEP_MS = 500;

/** The start-up deadline shared by every step that waits on a dependency. */
export class Startup {
  private readonly deadline: AbortSignal;
  private readonly signal: AbortSignal;

  constructor(private readonly timeoutMs: number, cancel: AbortSignal) {
    this.deadline = AbortSignal.timeout(timeoutMs);
    this.signal = AbortSignal.any([this.deadline, cancel]);
  }

  /**
   * Runs `fn` until it succeeds, retrying (backoff with jitter) while its error is retriable (a
   * dependency not reachable yet); past the deadline, throws STARTUP_TIMEOUT naming `what`.
   */
  async until<T>(what: string, fn: () => Promise<T>, retriable: (err: unknown) => boolean = isRetriable): Promise<T> {
    let last: unknown;
    try {
      return await retry(fn, {
        attempts: Infinity,
        baseMs: 250,
        maxMs: 2000,
        signal: this.signal,
        retriable: (err) => {
          last = err;
          return retriable(err);
        },
        onRetry: (err, attempt) => {
          if (attempt === 0) log.warn(`waiting for ${what}`, { err, startupTimeoutMs: this.timeoutMs });
        },
      });
    } catch (err) {
      if (isAbort(err) && this.deadline.aborted) {
        const detail = last instanceof Error ? `: ${last.message}` : '';
        throw new FramewireError('STARTUP_TIMEOUT', 'stack', `${what} not reachable within startupTimeoutMs (${this.timeoutMs} ms)${detail}`, { cause: last });
      }
      throw err;
    }
  }

  /** `p` (a step with its own retries), or STARTUP_TIMEOUT naming `what` once the deadline passes. */
  async within<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await raceAbort(p, this.signal);
    } catch (err) {
      if (isAbort(err) && this.deadline.aborted) {
        throw new FramewireError('STARTUP_TIMEOUT', 'stack', `${what} not reachable within startupTimeoutMs (${this.timeoutMs} ms)`);
      }
      throw err;
    }
  }

  /** Throws when the start was cancelled (a signal) or its deadline passed, between steps. */
  check(): void {
    if (this.signal.aborted) throw abortReason(this.signal);
  }
}

/** Runs `p` for at most `ms`; logs and goes on when it takes longer (closing a dead connection). */
export async function bounded(p: Promise<unknown> | undefined, ms: number, what: string): Promise<void> {
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    p.then(
      () => false,
      (err: unknown) => {
        log.warn(`${what} failed`, { err });
        return false;
      },
    ),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms))),
  ]);
  clearTimeout(timer);
  if (late) log.warn(`${what} did not finish in ${ms} ms; going on`);
}

export interface Runnable {
  start(): Promise<void>;
  close(drainTimeoutMs?: number): Promise<void>;
}

/**
 * A topology as a Runnable: built (Triton and Kafka waited for) and started by `start`; a close
 * during the build cancels it.
 */
export function topologyRunnable<G extends Runnable>(t: unknown, build: (t: never, abort: AbortController) => Promise<G>): Runnable & { graph(): G | undefined } {
  const abort = new AbortController();
  let graph: G | undefined;
  return {
    graph: () => graph,
    start: async () => {
      graph = await build(t as never, abort);
      await graph.start();
    },
    close: async (ms?: number) => {
      if (graph) return graph.close(ms);
      abort.abort();
    },
  };
}

/**
 * start → wait for SIGTERM/SIGINT → close, with the exit guarantees above. Returns the exit code:
 * 0 after a signal, 2 for an invalid topology found at start (a model Triton does not have), 1
 * for any other failed start.
 */
export async function runUntilSignal(pipeline: Runnable, o: { drainTimeoutMs: number; file: string }): Promise<number> {
  let stopRequested!: () => void;
  const stop = new Promise<void>((r) => (stopRequested = r));
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      log.warn('second signal: exiting now', { signal: sig });
      process.exit(130);
    }
    log.info('stopping: draining in-flight frames', { signal: sig, drainTimeoutMs: o.drainTimeoutMs });
    forceExitAfter(o.drainTimeoutMs + FORCE_EXIT_MARGIN_MS, 1, 'shutdown did not finish in time');
    stopRequested();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let failure: unknown;
  const started = pipeline.start().then(
    () => true,
    (err: unknown) => {
      failure = err;
      return false;
    },
  );
  const ok = await Promise.race([started, stop.then(() => undefined)]);
  if (ok === false) {
    forceExitAfter(FORCE_EXIT_MARGIN_MS, 1, 'closing after a failed start took too long');
    await pipeline.close(0).catch(() => undefined);
    const err = failure as Error;
    if (err instanceof FramewireError && err.code === 'TOPOLOGY_INVALID') {
      console.error(`framewire run: invalid topology\n${o.file}: ${err.message}`);
      return exitSoon(2);
    }
    const code = err instanceof FramewireError ? ` [${err.code}]` : '';
    console.error(`framewire run: cannot start${code}: ${err?.message ?? String(err)}`);
    return exitSoon(1);
  }
  await stop;
  // A signal during start: close cancels what is still starting.
  await pipeline.close();
  await bounded(started, 1000, 'cancelling the start');
  log.info('stopped');
  return exitSoon(0);
}

/** Exits with `code` after `ms` unless the process has gone by then. */
function forceExitAfter(ms: number, code: number, why: string): void {
  setTimeout(() => {
    console.error(`framewire run: ${why} (${ms} ms); exiting`);
    process.exit(code);
  }, ms).unref();
}

/**
 * The exit code, and a backstop: the process normally exits by itself once everything is closed;
 * if a handle is left (a socket of a dead broker), it exits a second later anyway.
 */
function exitSoon(code: number): number {
  setTimeout(() => process.exit(code), 1000).unref();
  return code;
}
