/**
 * Minimal structured logger: one JSON line per event on stderr (pino-style fields).
 * Never used per frame; per-stream problems go through `once` so a bad stream cannot flood the log.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const threshold = LEVELS[(process.env.FRAMEWIRE_LOG_LEVEL as Level) ?? 'info'] ?? LEVELS.info;

/** How deep a chain of causes is followed. */
const MAX_CAUSES = 3;

/** An error as a log field: message and code, a FramewireError's stage and retriable, its causes. */
function errorField(err: Error, depth = 0): Record<string, unknown> {
  const e = err as Error & { code?: unknown; stage?: unknown; retriable?: unknown };
  const out: Record<string, unknown> = { message: e.message };
  if (e.code !== undefined) out.code = e.code;
  if (e.stage !== undefined) out.stage = e.stage;
  if (e.retriable !== undefined) out.retriable = e.retriable;
  if (e.cause !== undefined && depth < MAX_CAUSES) out.cause = e.cause instanceof Error ? errorField(e.cause, depth + 1) : String(e.cause);
  return out;
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (LEVELS[level] < threshold) return;
  const rec: Record<string, unknown> = { level, time: Date.now(), msg };
  if (fields) {
    for (const [k, v] of Object.entries(fields)) rec[k] = v instanceof Error ? errorField(v) : v;
  }
  process.stderr.write(JSON.stringify(rec) + '\n');
}

const seen = new Set<string>();

export const log = {
  debug: (msg: string, f?: Record<string, unknown>) => write('debug', msg, f),
  info: (msg: string, f?: Record<string, unknown>) => write('info', msg, f),
  warn: (msg: string, f?: Record<string, unknown>) => write('warn', msg, f),
  error: (msg: string, f?: Record<string, unknown>) => write('error', msg, f),
  /** Logs the first occurrence of `key` only (bounded: forgets everything past 10k keys). */
  once(level: Level, key: string, msg: string, f?: Record<string, unknown>): void {
    if (seen.has(key)) return;
    if (seen.size > 10_000) seen.clear();
    seen.add(key);
    write(level, msg, f);
  },
};
