/**
 * `framewire shadow report`: the latest agreement report of every lane with a shadow model, read
 * from the events topic (`shadow` records, docs/contracts.md), as a table in the terminal, and
 * the automatic promotions (`promotion` records) in the time read. Exit
 * 0 with a report, 1 when none was found in the time read (or Kafka failed), 2 bad arguments.
 */
import type { Command } from 'commander';
import { Kafka, logLevel } from 'kafkajs';
import { readTopicToEnd } from '../kafka/topic-reader.js';
import type { ShadowSummary } from '../infer/shadow.js';
import type { PromotionEvent } from '../core/events.js';
import { addTopicReaderOptions, topicReaderOptions, type TopicReaderFlags } from '../ingest/security.js';

interface ReportFlags extends TopicReaderFlags {
  eventsTopic?: string;
}

export function addShadowCommand(program: Command, done: (code: number) => void): void {
  const shadow = program.command('shadow').description('shadow models: how a candidate model agrees with the one in production');
  const cmd = shadow
    .command('report')
    .description("each lane's latest shadow report: top-1 agreement, mean |Δscore|, confusion over the top labels, latency of both models")
    .option('--events-topic <topic>', 'events topic (env FRAMEWIRE_EVENTS_TOPIC, default video.events)');
  addTopicReaderOptions(cmd, 'read the records of the last <ms> (default 600000)').action(async (values: ReportFlags) => done(await report(values)));
}

function usageError(message: string): number {
  process.stderr.write(`framewire shadow report: ${message}\n(add --help for usage)\n`);
  return 2;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** The report as terminal lines. */
export function formatShadowReport(s: ShadowSummary): string[] {
  const lines = [
    `${s.model} v${s.modelVersion} ← shadow ${s.shadow} v${s.shadowVersion}, report of ${new Date(s.ts).toISOString()}`,
    `  frames compared ${s.frames}, top-1 agreement ${pct(s.agreement)}, mean |Δ score of the primary's top label| ${s.meanAbsDelta.toFixed(4)}`,
    `  latency per request: primary ${s.latencyMs.primary.toFixed(1)} ms, shadow ${s.latencyMs.shadow.toFixed(1)} ms; sampled but not compared: ${s.skipped} skipped under load, ${s.failed} failed`,
  ];
  const rows = Object.keys(s.confusion);
  const cols = [...new Set(rows.flatMap((r) => Object.keys(s.confusion[r]!)))];
  const w = Math.max(8, ...rows.map((r) => r.length), ...cols.map((c) => c.length));
  lines.push(`  confusion (rows: primary top-1, columns: shadow top-1):`);
  lines.push(`  ${''.padEnd(w)} ${cols.map((c) => c.padStart(w)).join(' ')}`);
  for (const r of rows) lines.push(`  ${r.padEnd(w)} ${cols.map((c) => String(s.confusion[r]![c] ?? 0).padStart(w)).join(' ')}`);
  lines.push(`  per stream:`);
  for (const [stream, v] of Object.entries(s.streams).sort()) lines.push(`    ${stream}: ${v.frames} frames, ${pct(v.agreement)} agreement`);
  return lines;
}

/** A `promotion` event as one terminal line. */
export function formatPromotion(p: PromotionEvent): string {
  return `promoted at ${new Date(p.ts).toISOString()}: ${p.model} v${p.modelVersion} replaced ${p.from} v${p.fromVersion} (agreement ${pct(p.agreement)} over ${p.frames} frames; promoteWhen ${pct(p.promoteWhen.agreement)} over ${p.promoteWhen.frames})`;
}

export async function report(values: ReportFlags): Promise<number> {
  const opts = topicReaderOptions(values);
  if (typeof opts === 'string') return usageError(opts);
  const { brokers, security } = opts;
  const topic = values.eventsTopic ?? (process.env.FRAMEWIRE_EVENTS_TOPIC || 'video.events');
  const kafka = new Kafka({ clientId: 'framewire-shadow-report', brokers, logLevel: logLevel.NOTHING, ...security });
  const admin = kafka.admin();
  const latest = new Map<string, ShadowSummary>();
  const promotions: PromotionEvent[] = [];
  const key = Buffer.from('*', 'utf8');
  try {
    await admin.connect();
    await readTopicToEnd(kafka, admin, topic, { sinceMs: Date.now() - Number(values.sinceMs ?? 600_000), timeoutMs: Number(values.timeoutMs ?? 30_000), groupPrefix: 'framewire-shadow-report' }, (_p, m) => {
      if (!m.key?.equals(key) || !m.value) return;
      try {
        const v = JSON.parse(m.value.toString('utf8')) as ShadowSummary | PromotionEvent;
        if (v.type === 'promotion') promotions.push(v);
        if (v.type !== 'shadow') return;
        const id = `${v.model}\u0000${v.shadow}`;
        const prev = latest.get(id);
        if (!prev || v.ts >= prev.ts) latest.set(id, v);
      } catch {
        /* not a framewire record */
      }
    });
  } catch (err) {
    process.stderr.write(`framewire shadow report: reading '${topic}' failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  if (latest.size === 0) {
    process.stderr.write(`framewire shadow report: no shadow report on '${topic}' in the time read (is a model's shadow set, and has its first report interval passed?)\n`);
    return 1;
  }
  for (const s of latest.values()) process.stdout.write(`${formatShadowReport(s).join('\n')}\n`);
  for (const p of promotions.sort((a, b) => a.ts - b.ts)) process.stdout.write(`${formatPromotion(p)}\n`);
  return 0;
}
