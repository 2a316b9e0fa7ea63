/**
 * `framewire plan`: how many more streams of a given size, rate and model a live processor can
 * take, and at what sampling rate, from its measured costs (GET /metrics; plan.ts does the
 * arithmetic). Exit 0 with a plan, 1 when the processor cannot be read or has not measured what
 * the plan needs, 2 on bad arguments.
 */
import type { Command } from 'commander';
import { formatPlan, measuredFrom, plan } from './plan.js';

interface PlanFlags {
  metrics: string;
  size: string;
  fps: string;
  model: string;
  like: string;
  gop?: string;
  decodeMs?: string;
  highWater: string;
  minFps: string;
  token?: string;
}

const SIZE = /^(\d+)x(\d+)$/;

export function addPlanCommand(program: Command, done: (code: number) => void): void {
  program
    .command('plan')
    .description("how many more streams of a size, rate and model a live processor can take, and at what sampling rate, from its measured costs (its /metrics)")
    .requiredOption('--model <name>', 'the model lane the streams would go to')
    .option('--metrics <url>', "the processor's metrics endpoint", 'http://127.0.0.1:8080/metrics')
    .option('--size <WxH>', 'the new streams\' picture size', '640x360')
    .option('--fps <n>', 'their frame rate', '25')
    .option('--gop <s>', 'their keyframe interval, seconds (default: 1)')
    .option('--like <WxH>', 'picture size of the streams the processor runs now (the measured decode cost is theirs)', '640x360')
    .option('--decode-ms <ms>', "the new streams' decoder CPU per frame, ms (default: the measured mean, scaled by pixels from --like)")
    .option('--high-water <load>', 'estimated load not to go past (priority.degrade.highWater)', '0.85')
    .option('--min-fps <n>', 'lowest sampling rate to consider (priority.degrade.minFps)', '1')
    .option('--token <token>', 'bearer token for the metrics endpoint (http.auth)')
    .action(async (v: PlanFlags) => done(await run(v)));
}

function usage(message: string): number {
  process.stderr.write(`framewire plan: ${message}\n(add --help for usage)\n`);
  return 2;
}

async function run(v: PlanFlags): Promise<number> {
  const size = SIZE.exec(v.size);
  const like = SIZE.exec(v.like);
  const num = (s: string | undefined, d: number) => (s === undefined ? d : Number(s));
  const fps = num(v.fps, Number.NaN);
  const gopS = num(v.gop, 1);
  const highWater = num(v.highWater, Number.NaN);
  const minFps = num(v.minFps, Number.NaN);
  const decodeMs = v.decodeMs === undefined ? undefined : Number(v.decodeMs);
  if (!size) return usage(`--size ${v.size}: expected WxH, e.g. 1280x720`);
  if (!like) return usage(`--like ${v.like}: expected WxH`);
  for (const [name, x] of [['--fps', fps], ['--gop', gopS], ['--high-water', highWater], ['--min-fps', minFps], ['--decode-ms', decodeMs ?? 1]] as const) {
    if (!(x > 0) || !Number.isFinite(x)) return usage(`${name}: expected a positive number`);
  }
  let text: string;
  try {
    const res = await fetch(v.metrics, { headers: v.token ? { authorization: `Bearer ${v.token}` } : {}, signal: AbortSignal.timeout(5000) });
    if (!res.ok) {
      process.stderr.write(`framewire plan: ${v.metrics} answered ${res.status}\n`);
      return 1;
    }
    text = await res.text();
  } catch (err) {
    process.stderr.write(`framewire plan: cannot read ${v.metrics}: ${(err as Error).message}\n`);
    return 1;
  }
  const measured = measuredFrom(text);
  if (typeof measured === 'string') {
    process.stderr.write(`framewire plan: ${measured}\n`);
    return 1;
  }
  const candidate = { width: Number(size[1]), height: Number(size[2]), fps, model: v.model, decodeMs, like: { width: Number(like[1]), height: Number(like[2]) }, gopMs: gopS * 1000, highWater, minFps };
  const p = plan(measured, candidate);
  if (typeof p === 'string') {
    process.stderr.write(`framewire plan: ${p}\n`);
    return 1;
  }
  process.stdout.write(formatPlan(v.metrics, measured, candidate, p).join('\n') + '\n');
  return 0;
}
