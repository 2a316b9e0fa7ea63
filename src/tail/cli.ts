/**
 * `framewire tail [--streams a,b] [--labels] [--events] [--alerts] [--url ws://…]`: a live view of
 * the processor's WebSocket in the terminal, one line per label, event or alert. Without
 * --labels/--events/--alerts all three are shown; with some of them, only those. Reconnects by
 * itself; coloured when stdout is a terminal (NO_COLOR turns it off).
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { formatMessage, type Message } from './format.js';

export const TAIL_USAGE = 'framewire tail [--streams a,b] [--labels] [--events] [--alerts] [--url ws://host:port/ws]';

export function defaultTailUrl(env: NodeJS.ProcessEnv = process.env): string {
  return `ws://${env.FRAMEWIRE_HTTP ?? '127.0.0.1:8080'}/ws`;
}

export interface TailFlags {
  streams?: string;
  labels?: boolean;
  events?: boolean;
  alerts?: boolean;
  url?: string;
  tokenFile?: string;
}

/** Adds `tail` to the program; `done` receives the exit code. */
export function addTailCommand(program: Command, done: (code: number) => void): void {
  program
    .command('tail')
    .description('live labels, events and alerts from a processor\'s WebSocket, one line each (coloured on a terminal)')
    .option('--streams <a,b>', 'only these stream ids')
    .option('--labels', 'show label records (default: labels, events and alerts)')
    .option('--events', 'show events (dropped, change, stream)')
    .option('--alerts', 'show alert records')
    .option('--url <ws-url>', `the processor's WebSocket (default ${defaultTailUrl()}, from FRAMEWIRE_HTTP)`)
    .option('--token-file <file>', 'bearer token for a processor with http.auth (default: env FRAMEWIRE_TOKEN)')
    .action(async (values: TailFlags) => done(await tail(values)));
}

export async function tail(values: TailFlags, out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Promise<number> {
  const all = !values.labels && !values.events && !values.alerts;
  const show = { label: all || !!values.labels, event: all || !!values.events, alert: all || !!values.alerts };
  const streams = values.streams?.split(',').filter(Boolean) ?? [];
  const base = values.url ?? defaultTailUrl();
  let token: string | undefined;
  try {
    token = values.tokenFile ? readFileSync(values.tokenFile, 'utf8').trim() : process.env.FRAMEWIRE_TOKEN || undefined;
  } catch (err) {
    console.error(`framewire tail: cannot read --token-file: ${(err as Error).message}`);
    return 2;
  }
  let url: URL;
  try {
    url = new URL(base);
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('expected ws:// or wss://');
  } catch (err) {
    console.error(`framewire tail: bad --url ${base}: ${(err as Error).message}`);
    return 2;
  }
  if (streams.length) url.searchParams.set('streams', streams.join(','));
  if (!show.label) url.searchParams.set('labels', '0');
  const colour = !!out.isTTY && !process.env.NO_COLOR;

  return new Promise<number>((resolve) => {
    let stopping = false;
    let retryMs = 500;
    let ws: WebSocket | undefined;
    const stop = () => {
      stopping = true;
      ws?.close();
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const connect = () => {
      ws = new WebSocket(url, token ? { headers: { authorization: `Bearer ${token}` } } : undefined);
      ws.on('open', () => {
        retryMs = 500;
        console.error(`framewire tail: connected to ${url.href}`);
      });
      ws.on('message', (data) => {
        let m: Message;
        try {
          m = JSON.parse(String(data)) as Message;
        } catch {
          return;
        }
        const kind = m.type === 'label' ? 'label' : m.type === 'alert' ? 'alert' : 'event';
        if (!show[kind]) return;
        const line = formatMessage(m, colour);
        if (line !== undefined) out.write(line + '\n');
      });
      ws.on('error', () => undefined);
      ws.on('close', () => {
        if (stopping) return;
        console.error(`framewire tail: not connected to ${url.href}; retrying in ${(retryMs / 1000).toFixed(1)} s`);
        setTimeout(connect, retryMs);
        retryMs = Math.min(5000, retryMs * 2);
      });
    };
    connect();
  });
}
