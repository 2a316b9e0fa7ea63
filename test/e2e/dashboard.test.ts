/**
 * The dashboard in a real browser: Debian's headless Chromium driven by playwright-core loads
 * GET / while two cameras run. Within 5 s both streams are shown; their label text follows the
 * colours; every thumbnail <img> has loaded; the card of the camera showing red is highlighted
 * when its rule fires; the filter box hides the other stream and is kept in the URL; the console
 * has no errors. The screenshot is saved as dist/test-output/dashboard.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { colourVideo, type Segment } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ROOT, ensureStack } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';

const FPS = 25;
export const OUTPUT_DIR = path.join(ROOT, 'dist/test-output');
/** How this machine's Chromium runs headless (no sandbox as root, no background networking). */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('dashboard in headless Chromium', { timeout: 120_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let browser: Browser | undefined;

  before(async () => {
    ensureStack();
    // With a shadow model (the model itself: the only other UINT8 one here is open_nsfw, at
    // another input size): its agreement report is a row of the pipeline panel.
    topo = await newTopology({ mode: 'replay', idleTimeoutMs: 5000, modelFields: 'shadow: { name: colour_probe, sample: 1, reportIntervalMs: 500 }', extra: `alerts:\n  - { name: red-on-air, label: red, forMs: 400, clearMs: 400 }` });
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    browser = await chromium.launch({ executablePath: process.env.FRAMEWIRE_CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('two streams shown with changing labels, thumbnails and a firing alert; no console errors', async () => {
    await withLogs(() => [proc], async () => {
      const a = `${topo.name}-a`;
      const b = `${topo.name}-b`;
      const cycle = (colours: Segment['colour'][]): Segment[] => colours.map((colour) => ({ colour, frames: 30 }));
      // 12 s each; `a` shows red from 2.4 s to 6 s.
      const va = colourVideo(320, 240, FPS, cycle(['blue', 'green', 'yellow', 'red', 'red', 'red', 'cyan', 'white', 'blue', 'green']));
      const vb = colourVideo(320, 240, FPS, cycle(['green', 'blue', 'cyan', 'yellow', 'magenta', 'white', 'green', 'blue', 'cyan', 'yellow']));
      const [ta, tb] = [va, vb].map((v) => encodeVideo(v.graph, FPS));

      const page = await browser!.newPage({ viewport: { width: 1280, height: 800 } });
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.goto(`${topo.httpBase}/`);
      await page.waitForSelector('#conn.up', { timeout: 10_000 });

      const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const epochMs = Date.now() + 300;
      const t0 = Date.now();
      const sending = Promise.all([
        sendVideo(producer, ta!, { topic: topo.chunks, stream: a, session: randomBytes(4).toString('hex'), epochMs, paced: true, eos: true }),
        sendVideo(producer, tb!, { topic: topo.chunks, stream: b, session: randomBytes(4).toString('hex'), epochMs, paced: true, eos: true }),
      ]);
      try {
        const card = (s: string) => `article.card[data-stream="${s}"]`;
        await page.waitForSelector(`${card(a)} .label:not(:text-is("–"))`, { timeout: 5000 });
        await page.waitForSelector(`${card(b)} .label:not(:text-is("–"))`, { timeout: 5000 });
        console.log(`both streams shown with a label ${Date.now() - t0} ms after the cameras started`);

        // Label text over the run: it follows the colours.
        const seen = { [a]: new Set<string>(), [b]: new Set<string>() };
        let alertSeenAt = 0;
        while (Date.now() - t0 < 11_000) {
          for (const s of [a, b]) seen[s]!.add(await page.locator(`${card(s)} .label`).innerText());
          if (!alertSeenAt && (await page.locator(`${card(a)}.alerting`).count()) > 0) alertSeenAt = Date.now();
          await page.waitForTimeout(200);
        }
        console.log(`labels shown: a ${[...seen[a]!].join(',')}; b ${[...seen[b]!].join(',')}; alert highlighted ${alertSeenAt ? `${alertSeenAt - t0} ms after start` : 'never'}`);
        assert.ok(seen[a]!.size >= 4 && seen[b]!.size >= 4, 'label text changes as the colours change');
        assert.ok(seen[a]!.has('red') && !seen[b]!.has('red'));
        assert.ok(alertSeenAt > 0, 'the card of the red camera was highlighted while its alert fired');
        assert.equal(await page.locator(`${card(b)}.alerting`).count(), 0);
        const timeline = await page.locator('#timeline').innerText();
        assert.match(timeline, new RegExp(`${a} alert red-on-air firing`));
        assert.match(timeline, /→/, 'change events in the timeline');

        const thumbs = await page.$$eval('article.card img.thumb', (imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth));
        assert.equal(thumbs.length, 2);
        assert.ok(thumbs.every((w) => w > 0), `every thumbnail loaded: naturalWidth ${thumbs.join(', ')}`);
        const pipeline = await page.locator('#pipeline').innerText();
        assert.match(pipeline, /colour_probe batch/);
        assert.match(pipeline, /colour_probe shadow\s+colour_probe: 100\.0 % agree over \d+ frames · \|Δ\| \d\.\d{4}/);

        mkdirSync(OUTPUT_DIR, { recursive: true });
        const shot = path.join(OUTPUT_DIR, 'dashboard.png');
        await page.screenshot({ path: shot, fullPage: true });
        console.log(`screenshot: ${shot}`);

        // The filter hides the other stream and is kept in the URL.
        await page.fill('#filter', `${topo.name}-b`);
        await page.waitForSelector(`${card(a)}.hidden`, { state: 'attached', timeout: 2000 });
        assert.equal(new URL(page.url()).searchParams.get('q'), `${topo.name}-b`);
        await page.reload();
        await page.waitForSelector('#conn.up');
        assert.equal(await page.inputValue('#filter'), `${topo.name}-b`);
      } finally {
        await sending;
        await producer.disconnect();
      }
      assert.deepEqual(problems, []);
    });
  });
});
