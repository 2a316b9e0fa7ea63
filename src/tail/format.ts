/**
 * One human-readable line per WebSocket message (label, event, alert) for `framewire tail`,
 * coloured with ANSI codes when asked (stdout is a terminal).
 */
const CODES = { dim: 2, bold: 1, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, white: 37, black: 90 } as const;
type Style = keyof typeof CODES;

/** Label names that are colours are shown in their colour. */
const LABEL_STYLE: Record<string, Style> = { red: 'red', green: 'green', blue: 'blue', yellow: 'yellow', cyan: 'cyan', magenta: 'magenta', white: 'white', black: 'black' };

export type Message = Record<string, unknown> & { type?: string; stream?: string };

export function formatMessage(m: Message, colour: boolean): string | undefined {
  const paint = (style: Style | undefined, s: string): string => (colour && style ? `\x1b[${CODES[style]}m${s}\x1b[0m` : s);
  const time = (ts: unknown): string => paint('dim', new Date(typeof ts === 'number' ? ts : Date.now()).toISOString().slice(11, 23));
  const stream = paint('bold', String(m.stream ?? '?'));
  switch (m.type) {
    case 'label': {
      const labels = (m.labels as { label: string; score: number }[] | undefined) ?? [];
      const [top, ...rest] = labels;
      const latency = typeof m.publishedTs === 'number' && typeof m.captureTs === 'number' ? `${m.publishedTs - m.captureTs} ms` : '';
      const main = top ? `${paint(LABEL_STYLE[top.label], top.label)} ${top.score.toFixed(2)}` : '(no label)';
      const others = rest.length ? paint('dim', ` (${rest.map((l) => `${l.label} ${l.score.toFixed(2)}`).join(', ')})`) : '';
      return `${time(m.captureTs)} ${stream} #${m.frame} ${main}${others} ${paint('dim', `${m.model} ${latency}`)}`;
    }
    case 'dropped':
      return `${time(undefined)} ${stream} ${paint('yellow', 'dropped')} #${m.fromFrame}..${m.toFrame} (${m.count}) ${m.reason}`;
    case 'change':
      return `${time(m.captureTs)} ${stream} ${paint('cyan', 'change')} ${m.from} → ${paint(LABEL_STYLE[String(m.to)], String(m.to))} at #${m.atFrame}`;
    case 'stream': {
      const style: Style = m.state === 'stalled' ? 'yellow' : m.state === 'ended' ? 'dim' : 'green';
      return `${time(m.ts)} ${stream} ${paint(style, `stream ${m.state}`)}${m.how ? ` (${m.how})` : ''} session ${m.session}`;
    }
    case 'alert': {
      const firing = m.state === 'firing';
      const what = m.label !== undefined ? `${m.label} ${typeof m.score === 'number' ? m.score.toFixed(2) : ''}` : 'stalled';
      return `${time(m.captureTs)} ${stream} ${paint(firing ? 'red' : 'green', `ALERT ${String(m.state).toUpperCase()}`)} ${paint('bold', String(m.rule))} [${m.severity}] ${what} frames #${m.fromFrame}..#${m.atFrame} id ${m.id}`;
    }
    case 'subscribed':
    case 'stats':
    case 'pipeline':
    case 'thumb':
    case 'hello':
      return undefined;
    default:
      return `${time(undefined)} ${stream} ${m.type}: ${JSON.stringify(m)}`;
  }
}
