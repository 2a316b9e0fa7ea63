/**
 * The one supervisor of ffmpeg children, for ingest and decode alike (mediasoup's Worker is the
 * model): it notices the exit and says why, keeps the last stderr lines, and stops a child with
 * SIGTERM and a grace period, then SIGKILL, so no child is ever left behind. The exit code and
 * signal come from the child process itself, not from parsing fluent-ffmpeg's messages.
 */
import type { ChildProcess } from 'node:child_process';
import type ffmpeg from 'fluent-ffmpeg';

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
  /** fluent-ffmpeg's error, for a spawn failure or an error exit. */
  error: Error | null;
}

export interface FfmpegProcessOptions {
  /** stderr lines kept for the exit report. */
  stderrLines?: number;
  /** After SIGTERM, the child has this long to finish (flush, write its trailer) before SIGKILL. */
  graceMs?: number;
  /** Each stderr line as it comes (not stored beyond `stderrLines`). */
  onStderr?(line: string): void;
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

  constructor(command: ffmpeg.FfmpegCommand, opts: FfmpegProcessOptions = {}) {
    const keep = opts.stderrLines ?? 8;
    this.graceMs = opts.graceMs ?? DEFAULT_STOP_GRACE_MS;
    command.on('stderr', (line: string) => {
      if (this.tail.length >= keep) this.tail.shift();
      this.tail.push(line);
      opts.onStderr?.(line);
    });
    command.on('start', () => {
      this.child = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
      if (this.requested === 'kill') this.signal('SIGKILL');
      else if (this.requested === 'stop') this.terminate(this.graceMs);
    });
    this.exited = new Promise<FfmpegExit>((resolve) => {
      const finish = (error: Error | null) => {
        this.done = true;
        clearTimeout(this.graceTimer);
        // Node sets these before the child's 'exit' event, which comes before fluent-ffmpeg's.
        this.code = this.child?.exitCode ?? null;
        this.sig = this.child?.signalCode ?? null;
        resolve({ reason: this.reasonOf(error), code: this.code, signal: this.sig, requested: this.requested !== 'none', stderr: [...this.tail], error });
      };
      command.on('end', () => finish(null));
      command.on('error', (err: Error) => finish(err));
    });
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
