/**
 * End to end: `framewire run --topology FILE` with an invalid topology exits 2 quickly and its
 * stderr names the file and the field (docs/contracts.md, command line: "An invalid topology …
 * exits 2"; 1 is a failed start of a valid one, so any non-zero code would hide a misclassified error). The unknown-model case is
 * only detectable by asking the real Triton.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Processor, fmtStatus, stopAllProcessors } from '../helpers/processes.js';
import { BROKERS, MODEL, TRITON_URL, ensureStack, freePort, randomId } from '../helpers/stack.js';
import { deleteTopics, removeDir, writeTempFile } from '../helpers/topics.js';

/** A valid topology; `edit` replaces one part to make it invalid. */
function topologyText(port: number, id: string, edit: { latency?: string; decode?: string; models?: string | null }): string {
  const lines = [
    `name: e2e-${id}`,
    `kafka: { brokers: ["${BROKERS.join('", "')}"], clientId: e2e-${id} }`,
    `http: { listen: "127.0.0.1:${port}" }`,
    edit.latency ?? 'latency: { budgetMs: 250 }',
    'sources:',
    `  - { type: kafka, topic: e2e.${id}.chunks, group: fw-e2e-${id}, partitions: 1, dlqTopic: e2e.${id}.dlq }`,
    edit.decode ?? 'decode: { idleTimeoutMs: 1500 }',
    `triton: { url: "${TRITON_URL}", timeoutMs: 5000 }`,
    ...(edit.models === null ? [] : [edit.models ?? `models: [ { name: ${MODEL}, topK: 3 } ]`]),
    'sinks:',
    `  - { type: kafka, topic: e2e.${id}.labels, eventsTopic: e2e.${id}.events, partitions: 1 }`,
  ];
  return lines.join('\n') + '\n';
}

interface Case {
  name: string;
  edit: { latency?: string; decode?: string; models?: string | null };
  /** Substrings stderr must contain besides the file name. */
  mentions: string[];
  /** Point the command at a file that does not exist. */
  noFile?: boolean;
}

const CASES: Case[] = [
  { name: 'a missing field (no models)', edit: { models: null }, mentions: ['models'] },
  { name: 'a wrong type (latency.budgetMs: "fast")', edit: { latency: 'latency: { budgetMs: "fast" }' }, mentions: ['latency.budgetMs'] },
  { name: 'an unknown field (decode.idleTimeutMs)', edit: { decode: 'decode: { idleTimeutMs: 1500 }' }, mentions: ['decode', 'idleTimeutMs'] },
  { name: 'an unknown model (Triton says no)', edit: { models: 'models: [ { name: nope } ]' }, mentions: ['models[0].name', 'nope'] },
  { name: 'clip windows for a model without a time axis', edit: { models: `models: [ { name: ${MODEL}, clip: { stride: 2 } } ]` }, mentions: ['models[0].clip', 'time axis'] },
  { name: "a clip window length the model's time axis does not take", edit: { models: 'models: [ { name: colour_clip, clip: { frames: 5 } } ]' }, mentions: ['models[0]', 'colour_clip', 'takes 8 frames'] },
  { name: 'a nonexistent file', edit: {}, mentions: [], noFile: true },
];

/** Exits within this; the unknown-model case includes connecting to Triton. */
const QUICK_MS = 15_000;

describe('topology errors: exit 2 naming the file and the field', { concurrency: true, timeout: 90_000 }, () => {
  const dirs: string[] = [];
  const topics: string[] = [];

  before(() => ensureStack());

  after(async () => {
    await stopAllProcessors(1000);
    await deleteTopics(topics); // none should exist: nothing starts before the topology is accepted
    for (const d of dirs) removeDir(d);
  });

  for (const c of CASES) {
    test(c.name, async () => {
      const id = randomId();
      topics.push(...['chunks', 'dlq', 'labels', 'events'].map((t) => `e2e.${id}.${t}`));
      const { file, dir } = writeTempFile(topologyText(await freePort(), id, c.edit), `topology-${id}.yaml`);
      dirs.push(dir);
      const target = c.noFile ? path.join(dir, 'does-not-exist.yaml') : file;

      const t0 = Date.now();
      const proc = Processor.run(target, c.name);
      const timer = setTimeout(() => proc.child.kill('SIGKILL'), QUICK_MS);
      const status = await proc.exited;
      clearTimeout(timer);
      const ms = Date.now() - t0;
      const stderr = proc.stderr;
      console.log(`${c.name}: ${fmtStatus(status)} after ${ms} ms; stderr: ${JSON.stringify(stderr.trim().slice(0, 600))}`);

      assert.ok(ms < QUICK_MS, `did not exit within ${QUICK_MS} ms`);
      assert.equal(status.signal, null, `killed by ${status.signal}`);
      assert.equal(status.code, 2, 'an invalid topology exits 2 (docs/contracts.md)');
      assert.ok(stderr.includes(target), `stderr does not name the file ${target}:\n${stderr}`);
      for (const m of c.mentions) assert.ok(stderr.includes(m), `stderr does not mention '${m}':\n${stderr}`);
      // Names the problem on a line with the file and the field (not just somewhere in a log).
      if (c.mentions.length) {
        const line = stderr.split('\n').find((l) => l.includes(target) && l.includes(c.mentions[0]!));
        assert.ok(line, `no stderr line names both the file and '${c.mentions[0]}':\n${stderr}`);
      }
    });
  }
});
