/**
 * `framewire` command line (docs/contracts.md): stack up|down|status, ingest, run.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FramewireError } from './core/errors.js';
import { log } from './core/log.js';
import { loadTopology } from './config/load.js';
import { Pipeline } from './topology/pipeline.js';
import { ingestCommand } from './ingest/cli.js';
import { tailCommand, TAIL_USAGE } from './tail/cli.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const USAGE = `usage:
  framewire stack up|down|status     start, stop or report the local Kafka + Triton stack
  framewire ingest --stream ID --input SRC [--brokers B] [--topic T] [--realtime] [--loop]
  framewire run [--topology FILE]    run the processor (default topology/local.yaml)
  ${TAIL_USAGE}
                                     live labels, events and alerts from a processor's WebSocket`;

function stackCommand(argv: string[]): number {
  const sub = argv[0];
  if (!sub || !['up', 'down', 'status'].includes(sub)) {
    console.error(USAGE);
    return 2;
  }
  const res = spawnSync('bash', [path.join(ROOT, 'scripts/stack.sh'), sub], { stdio: 'inherit' });
  return res.status ?? 1;
}

async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { topology: { type: 'string', short: 't' } }, strict: true });
  const file = values.topology ?? path.join('topology', 'local.yaml');
  let pipeline: Pipeline;
  try {
    pipeline = new Pipeline(loadTopology(file));
  } catch (err) {
    console.error(`framewire run: invalid topology\n${(err as Error).message}`);
    return 2;
  }
  let signals = 0;
  const stop = (sig: string) => {
    signals++;
    if (signals > 1) {
      log.warn('second signal: exiting now', { signal: sig });
      process.exit(130);
    }
    log.info('stopping: draining in-flight frames', { signal: sig });
    void pipeline.close();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await pipeline.start();
  } catch (err) {
    await pipeline.close(0).catch(() => {});
    if (err instanceof FramewireError && err.code === 'TOPOLOGY_INVALID') {
      console.error(`framewire run: invalid topology\n${file}: ${err.message}`);
      return 2;
    }
    console.error(`framewire run: ${(err as Error).message}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (signals > 0) {
        clearInterval(check);
        void pipeline.close().then(resolve);
      }
    }, 100);
  });
  log.info('stopped');
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'stack':
      return stackCommand(rest);
    case 'ingest':
      return ingestCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'tail':
      return tailCommand(rest);
    case undefined:
    case '-h':
    case '--help':
      console.log(USAGE);
      return cmd ? 0 : 2;
    default:
      console.error(`framewire: unknown command '${cmd}'\n${USAGE}`);
      return 2;
  }
}
