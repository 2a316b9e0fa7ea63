/** Shared by the benchmarks: process figures from /proc, readiness polling, percentiles. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Waits until the processor's /readyz answers 200. */
export async function waitReady(port: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`processor on port ${port} not ready after ${timeoutMs / 1000} s`);
}

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** The q-quantile (0..1) of an ascending array. */
export function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
}

/**
 * Deletes a run's topics (`<prefix>.chunks/.dlq/.labels/.events`) and consumer groups, so runs do
 * not pile partitions and segments up in the local broker (hundreds of leftover partitions were
 * measured to slow it down and push later runs' drop rates up).
 */
export async function removeRunTopics(prefix: string, groups: string[]): Promise<void> {
  const kafka = new kafkajs.Kafka({ clientId: 'bench-cleanup', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const topics = ['chunks', 'dlq', 'labels', 'events'].map((t) => `${prefix}.${t}`).filter((t) => existing.has(t));
    if (topics.length) await admin.deleteTopics({ topics });
    await admin.deleteGroups(groups).catch(() => {});
  } catch (err) {
    console.error(`could not delete the topics of ${prefix}: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
