/**
 * The real `framewire run` processor as a child process of the test, observed only through its
 * contracts (docs/contracts.md): exit codes, stderr, /metrics, /healthz, /readyz. Every process
 * group a test starts is stopped, even when the test runner itself exits.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './stack.js';
import { sleep } from './wait.js';

const live = new Set<Processor>();
// Last resort: a test runner that exits (or crashes) never leaves a processor behind.
process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

/**
 * A one-shot command (`framewire explain …`, `clip …`, `shadow report …`) run to its end: its
 * exit code (-1 when it was killed by the timeout or a signal), stdout and stderr.
 */
export function framewireCommand(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/framewire.js'), ...args], { cwd: ROOT, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** `node bin/framewire.js <args>` as a child of the test, with stdout/stderr captured. */
export class Processor {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  readonly startedAt = Date.now();
  stdout = '';
  stderr = '';
  status: ExitStatus | undefined;

  /** `env`: variables set for the child on top of the test's own (e.g. topology/local.yaml's FRAMEWIRE_*). */
  constructor(args: string[], readonly label = 'processor', env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [path.join(ROOT, 'bin/framewire.js'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    live.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout = cap(this.stdout + d)));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = cap(this.stderr + d)));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.status = { code, signal };
        live.delete(this);
        resolve(this.status);
      });
      this.child.once('error', () => {
        this.status = { code: null, signal: null };
        live.delete(this);
        resolve(this.status);
      });
    });
  }

  static run(topologyFile: string, label?: string, env?: NodeJS.ProcessEnv): Processor {
    return new Processor(['run', '--topology', topologyFile], label, env);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /** Polls /readyz until 200; throws (with the stderr tail) when it exits or time runs out. */
  async waitReady(httpBase: string, timeoutMs = 40_000): Promise<number> {
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < timeoutMs) {
      if (!this.running) throw new Error(`${this.label} exited (${fmtStatus(this.status!)}) before it was ready\n${this.tail()}`);
      try {
        const res = await httpGet(`${httpBase}/readyz`, 1000);
        if (res.status === 200) return Date.now() - t0;
        last = `${res.status} ${res.body}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(200);
    }
    throw new Error(`${this.label} not ready after ${timeoutMs} ms (last /readyz: ${last})\n${this.tail()}`);
  }

  /** SIGTERM (drains) and waits; SIGKILL if it has not exited after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<ExitStatus> {
    if (!this.running) return this.status!;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL, as a crash. */
  async kill(): Promise<ExitStatus> {
    if (!this.running) return this.status!;
    this.child.kill('SIGKILL');
    return this.exited;
  }

  /** The last `lines` lines of stderr (JSON log lines), for failure messages. */
  tail(lines = 40): string {
    const all = this.stderr.trimEnd().split('\n');
    return `--- ${this.label} (pid ${this.child.pid}) stderr, last ${Math.min(lines, all.length)} of ${all.length} lines ---\n${all.slice(-lines).join('\n')}`;
  }

  /** stderr parsed as JSON log lines (non-JSON lines are skipped). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* partial line */
      }
    }
    return out;
  }
}

function cap(s: string, max = 4 << 20): string {
  return s.length > max ? s.slice(s.length - max) : s;
}

export function fmtStatus(s: ExitStatus): string {
  return s.signal ? `signal ${s.signal}` : `code ${s.code}`;
}

/**
 * Stops every processor this file started that is still running (for `after` hooks): SIGTERM,
 * then SIGKILL after `graceMs`.
 */
export async function stopAllProcessors(graceMs = 15_000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** Runs `fn`; if it throws, prints the processors' stderr tails first (then rethrows). */
export async function withLogs<T>(procs: () => (Processor | undefined)[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    for (const p of procs()) if (p) console.error(p.tail(60));
    throw err;
  }
}

/** Direct children of a process (e.g. a processor's ffmpeg decoders), with their command lines. */
export function childProcesses(pid: number): { pid: number; cmd: string }[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-a', '-P', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const i = l.indexOf(' ');
      return { pid: Number(l.slice(0, i)), cmd: l.slice(i + 1) };
    });
}

/** Processes whose command line matches `pattern` (pgrep -f). */
export function pgrep(pattern: string): { pid: number; cmd: string }[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-a', '-f', pattern], { encoding: 'utf8' });
  } catch {
    return [];
  }
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const i = l.indexOf(' ');
      return { pid: Number(l.slice(0, i)), cmd: l.slice(i + 1) };
    })
    .filter((p) => p.pid !== process.pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

/** GET /metrics as Prometheus text. */
export async function scrapeMetrics(httpBase: string): Promise<string> {
  const res = await httpGet(`${httpBase}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  return res.body;
}

/**
 * Sum of the samples of `name` whose labels include all of `labels` (0 when none).
 * E.g. metricValue(text, 'framewire_chunks_dead_lettered_total', { reason: 'missing-header' }).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/** CPU clock ticks (user + system) a process has used, from /proc; -1 when it is gone. */
export function cpuTicks(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return -1;
  }
}
