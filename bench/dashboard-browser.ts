/**
 * Can the dashboard page keep up with 64 streams? (prints a table; not a test)
 *
 *   node dist/bench/dashboard-browser.js [--streams 64] [--fps 25] [--seconds 15]
 *
 * A feed server speaking the processor's WebSocket protocol (docs/contracts.md) serves the real
 * page (src/dashboard/public) and sends, per stream, a label message at `--fps`, and once a second
 * a `stats` message, a `thumb` (a 112×112 JPEG from our encoder) and a change event; one
 * `pipeline` message a second. Headless Chromium (Debian's, via playwright-core) loads the page;
 * measured in the page: long tasks (> 50 ms), animation-frame intervals, and at the end whether
 * every card shows the last label sent (the page has not fallen behind).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';
import { chromium } from 'playwright-core';
import { DashboardFiles } from '../src/dashboard/static.js';
import { JpegEncoder } from '../src/dashboard/jpeg.js';
import { quantile } from './lib.js';

const { values } = parseArgs({ options: { streams: { type: 'string', default: '64' }, fps: { type: 'string', default: '25' }, seconds: { type: 'string', default: '15' } } });
const N = Number(values.streams);
const FPS = Number(values.fps);
const SECONDS = Number(values.seconds);
const COLOURS = ['red', 'green', 'blue', 'yellow', 'cyan', 'magenta', 'white', 'black'];
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function main(): Promise<void> {
  const files = new DashboardFiles();
  const server = http.createServer((req, res) => {
    if (!files.handle((req.url ?? '/').split('?')[0]!, req, res)) (res.writeHead(404), res.end());
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  const clients = new Set<WebSocket>();
  wss.on('connection', (ws) => (clients.add(ws), ws.on('close', () => clients.delete(ws))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  const enc = new JpegEncoder(70);
  const thumbs = COLOURS.map((_, i) => {
    const rgb = new Uint8Array(112 * 112 * 3);
    for (let p = 0; p < rgb.length; p += 3) rgb.set([(i & 1) * 255, ((i >> 1) & 1) * 255, ((i >> 2) & 1) * 255], p);
    return enc.encode(rgb, 112, 112).toString('base64');
  });
  const streams = Array.from({ length: N }, (_, i) => `cam-${String(i).padStart(2, '0')}`);
  const last = new Map<string, string>();
  let frame = 0;
  let sent = 0;
  let bytes = 0;
  const send = (m: object) => {
    const text = JSON.stringify(m);
    for (const c of clients) c.send(text);
    sent++;
    bytes += text.length;
  };
  const labelTimer = setInterval(() => {
    frame++;
    const now = Date.now();
    for (const [i, stream] of streams.entries()) {
      // Each stream changes colour every 2 s, streams out of phase.
      const label = COLOURS[Math.floor((frame / FPS + i / 8) / 2) % COLOURS.length]!;
      last.set(stream, label);
      send({ type: 'label', stream, session: 's', frame, ptsMs: frame * 40, captureTs: now - 30, model: 'colour_probe', labels: [{ label, score: 0.98 }, { label: 'black', score: 0.01 }], publishedTs: now });
    }
  }, 1000 / FPS);
  const secondTimer = setInterval(() => {
    const now = Date.now();
    for (const [i, stream] of streams.entries()) {
      const label = last.get(stream) ?? 'red';
      send({ type: 'stats', stream, session: 's', model: 'colour_probe', health: 'live', sinceChunkMs: 12, sinceFrameMs: 20, decoder: 'running', labelledPerSec: FPS, droppedPerSec: i % 5 ? {} : { deadline: 1.2 }, p50Ms: 30 + (i % 7), p99Ms: 80 + (i % 13), top: { label, score: 0.98, frame, captureTs: now }, smoothed: label, ts: now });
      send({ type: 'thumb', stream, session: 's', frame, captureTs: now, width: 112, height: 112, jpeg: thumbs[COLOURS.indexOf(label)]! });
      send({ type: 'change', stream, session: 's', model: 'colour_probe', from: 'x', to: label, atFrame: frame, captureTs: now });
    }
    send({ type: 'pipeline', ts: now, name: 'bench', models: [{ model: 'colour_probe', batchMean: 12, batches: 130, queueMs: 0.8, computeMs: 2.1, queuedFrames: 3 }], decoders: N, lag: 0, streams: N });
  }, 1000);

  const browser = await chromium.launch({ executablePath: process.env.FRAMEWIRE_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#conn.up');
    await page.evaluate(() => {
      const w = window as unknown as { fw: { long: number[]; frames: number[] } };
      w.fw = { long: [], frames: [] };
      new PerformanceObserver((l) => l.getEntries().forEach((e) => w.fw.long.push(e.duration))).observe({ type: 'longtask', buffered: false });
      let prev = performance.now();
      const tick = (t: number) => {
        w.fw.frames.push(t - prev);
        prev = t;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const sent0 = sent;
    const bytes0 = bytes;
    const cpu0 = await page.evaluate(() => performance.now());
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    clearInterval(labelTimer);
    const expected = new Map(last);
    await new Promise((r) => setTimeout(r, 500)); // cards redraw at most every 250 ms
    const shown = await page.$$eval('article.card', (cards) => cards.map((c) => [(c as HTMLElement).dataset.stream!, c.querySelector('.label')!.textContent!]));
    const behind = shown.filter(([s, l]) => expected.get(s) !== l);
    const { long, frames } = await page.evaluate(() => (window as unknown as { fw: { long: number[]; frames: number[] } }).fw);
    const wall = (await page.evaluate(() => performance.now())) - cpu0;
    const sorted = frames.slice().sort((a, b) => a - b);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`\nDashboard page with ${N} streams, labels at ${FPS} fps each (${((sent - sent0) / SECONDS).toFixed(0)} messages/s, ${((bytes - bytes0) / SECONDS / 1024).toFixed(0)} KiB/s), ${SECONDS} s, headless Chromium, load average ${load}\n`);
    console.log('| cards shown | cards showing the last label | long tasks (> 50 ms) | animation frame interval p50 / p99 / max | frames drawn | console errors |');
    console.log('| --: | --: | --- | --- | --: | --: |');
    console.log(
      `| ${shown.length} | ${shown.length - behind.length} | ${long.length} (${(long.reduce((a, b) => a + b, 0) / 10 / (wall / 1000)).toFixed(1)} % of the time, longest ${Math.round(Math.max(0, ...long))} ms) | ${quantile(sorted, 0.5).toFixed(0)} / ${quantile(sorted, 0.99).toFixed(0)} / ${Math.round(sorted.at(-1) ?? 0)} ms | ${frames.length} | ${errors.length} |`,
    );
    if (behind.length) console.log(`behind: ${behind.slice(0, 5).map(([s, l]) => `${s} shows ${l}, last sent ${expected.get(s)}`).join('; ')}`);
  } finally {
    clearInterval(labelTimer);
    clearInterval(secondTimer);
    await browser.close();
    for (const c of clients) c.terminate();
    server.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
