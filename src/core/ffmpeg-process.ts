/**
 * The one supervisor of ffmpeg children, for ingest and decode alike (mediasoup's Worker is the
 * model): it notices the exit and says why, keeps the last stderr lines, and stops a child with
 * SIGTERM and a grace period, then SIGKILL, so no child is ever left behind. The exit code and
 * signal come from the child process itself. ffmpeg is spawned directly, with no wrapper library
 * (fluent-ffmpeg, archived in 2025, probed ffmpeg's capabilities before a first start).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** How a child ended: its own end of input, an error exit, a signal, our stop, or no start at all. */
export type FfmpegExitReason = 'ended' | 'failed' | 'signalled' | 'stopped' | 'spawn-failed';

export interface FfmpegExit {
  reason: FfmpegExitReason;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** We asked it to stop or killed it (a non-zero exit is expected then). */
  requested: boolean;
  /** The last stderr lines, oldest first. */
  stderr: string[];
  /** The spawn error, or an error naming the exit code for an error exit. */
  error: Error | null;
}

export interface FfmpegProcessOptions {
  /** stderr lines kept for the exit report. */
  stderrLines?: number;
  /** After SIGTERM, the child has this long to finish (flush, write its trailer) before SIGKILL. */
  graceMs?: number;
  /** Each stderr line as it comes (not stored beyond `stderrLines`); returning false keeps it out of the exit report. */
  onStderr?(line: string): boolean | void;
  /** stderr ended (every line has been passed to `onStderr`). */
  onStderrEnd?(): void;
}

export const DEFAULT_STOP_GRACE_MS = 5000;

export class FfmpegProcess {
  readonly exited: Promise<FfmpegExit>;
  private child: ChildProcess | undefined;
  private code: number | null = null;
  private sig: NodeJS.Signals | null = null;
  private requested: 'none' | 'stop' | 'kill' = 'none';
  private graceTimer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly tail: string[] = [];
  private readonly graceMs: number;

  /**
   * Spawns `ffmpeg args…` directly (stdin, stdout and stderr piped), with no wrapper library in
   * between: nothing probes ffmpeg's capabilities before the first start.
   */
  static spawn(ffmpegPath: string, args: string[], opts: FfmpegProcessOptions = {}): FfmpegProcess {
    return new FfmpegProcess(ffmpegPath, args, opts);
  }

  /** stdin of a process started with `spawn`. */
  get stdin(): Writable {
    return this.child!.stdin!;
  }

  /** stdout of a process started with `spawn`. */
  get stdout(): Readable {
    return this.child!.stdout!;
  }

  private constructor(path: string, args: string[], opts: FfmpegProcessOptions) {
    const keep = opts.stderrLines ?? 8;
    this.graceMs = opts.graceMs ?? DEFAULT_STOP_GRACE_MS;
    const onLine = (line: string) => {
      if (opts.onStderr?.(line) === false) return;
      if (this.tail.length >= keep) this.tail.shift();
      this.tail.push(line);
    };
    this.exited = this.spawnDirect(path, args, onLine, opts.onStderrEnd);
  }

  private spawnDirect(path: string, args: string[], onLine: (line: string) => void, onEnd?: () => void): Promise<FfmpegExit> {
    const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      let from = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
        const line = partial + text.slice(from, nl);
        partial = '';
        from = nl + 1;
        if (line) onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      }
      partial += text.slice(from);
    });
    child.stderr!.on('end', () => {
      if (partial) onLine(partial);
      partial = '';
      onEnd?.();
    });
    // Errors on the pipes (EPIPE after the child died) are reported through the exit.
    child.stdin!.on('error', () => {});
    child.stdout!.on('error', () => {});
    return new Promise<FfmpegExit>((resolve) => {
      let spawnError: Error | null = null;
      child.once('error', (err) => {
        spawnError = err;
        // No 'close' follows a failed spawn.
        if (child.pid === undefined) this.finish(resolve, err);
      });
      // 'close': the child exited and its stdio ended, so every byte it wrote has been read.
      child.once('close', () => {
        this.finish(resolve, spawnError ?? (child.exitCode ? new Error(`ffmpeg exited with code ${child.exitCode}`) : null));
      });
    });
  }

  private finish(resolve: (exit: FfmpegExit) => void, error: Error | null): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.graceTimer);
    this.code = this.child?.exitCode ?? null;
    this.sig = this.child?.signalCode ?? null;
    resolve({ reason: this.reasonOf(error), code: this.code, signal: this.sig, requested: this.requested !== 'none', stderr: [...this.tail], error });
  }

  /** The child's pid once spawned. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get hasExited(): boolean {
    return this.done;
  }

  /** Graceful: SIGTERM (ffmpeg finishes its output and exits), SIGKILL after the grace period. Idempotent. */
  stop(graceMs = this.graceMs): Promise<FfmpegExit> {
    if (this.requested === 'none') {
      this.requested = 'stop';
      if (this.child) this.terminate(graceMs);
    }
    return this.exited;
  }

  /** At once. Idempotent; a no-op once the child has exited. */
  kill(): Promise<FfmpegExit> {
    this.requested = 'kill';
    this.signal('SIGKILL');
    return this.exited;
  }

  private terminate(graceMs: number): void {
    this.signal('SIGTERM');
    this.graceTimer = setTimeout(() => this.kill(), graceMs);
    this.graceTimer.unref();
  }

  private signal(sig: NodeJS.Signals): void {
    const c = this.child;
    if (c && c.pid !== undefined && c.exitCode === null && c.signalCode === null) c.kill(sig);
  }

  private reasonOf(error: Error | null): FfmpegExitReason {
    if (!this.child || this.child.pid === undefined) return 'spawn-failed';
    if (this.requested !== 'none') return 'stopped';
    if (this.sig) return 'signalled';
    return error || (this.code !== null && this.code !== 0) ? 'failed' : 'ended';
  }
}
