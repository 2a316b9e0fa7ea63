/** `framewire explain`'s choice of record and what it prints (src/explain/explain.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainFrame, formatExplanation } from '../../src/explain/explain.js';
import type { DroppedEvent, LabelRecord } from '../../src/core/frame.js';

function label(session: string, frame: number, offset: number): LabelRecord {
  return { type: 'label', stream: 'cam-1', session, frame, ptsMs: frame * 40, captureTs: 1_764_120_000_000 + frame * 40, model: 'colour_probe', modelVersion: '1', labels: [{ label: 'red', score: 0.97 }], publishedTs: 1_764_120_000_000 + frame * 40 + 57, partition: 2, offset, topologyHash: 'sha256:0123456789abcdef', batchSize: 4, queueMs: 3.2, inferMs: 7.9 };
}
const drop = (session: string, from: number, to: number): DroppedEvent => ({ type: 'dropped', stream: 'cam-1', session, fromFrame: from, toFrame: to, reason: 'deadline', count: to - from + 1, partition: 2, offset: 90, toOffset: 91, topologyHash: 'sha256:0123456789abcdef' });

test('explain finds the frame in the session asked for, else in the latest session that has it', () => {
  const labels = [label('old', 5, 10), label('old', 6, 10), { ...label('x', 5, 11), stream: 'cam-2' }, label('new', 5, 40)];
  const latest = explainFrame(labels, [], 'cam-1', 5);
  assert.equal(latest.kind, 'label');
  assert.equal(latest.kind === 'label' && latest.record.offset, 40);
  assert.deepEqual(latest.sessions, ['old', 'new']);
  const old = explainFrame(labels, [], 'cam-1', 5, 'old');
  assert.equal(old.kind === 'label' && old.record.offset, 10);
  assert.equal(explainFrame(labels, [], 'cam-1', 6, 'new').kind, 'none');
  assert.equal(explainFrame(labels, [], 'cam-1', 7).kind, 'none');
});

test('a dropped frame is explained by the range that covers it; a republished label counts its copies', () => {
  const x = explainFrame([label('s', 1, 10)], [drop('s', 2, 8)], 'cam-1', 4);
  assert.equal(x.kind, 'dropped');
  const lines = formatExplanation(x as Exclude<typeof x, { kind: 'none' }>, 4);
  assert.match(lines[0]!, /^cam-1 session s frame 4: not labelled: dropped \(deadline\) with frames 2\.\.8$/);
  assert.match(lines.join('\n'), /partition 2 offsets 90\.\.91/);
  const twice = explainFrame([label('s', 1, 10), label('s', 1, 10)], [], 'cam-1', 1);
  assert.equal(twice.kind === 'label' && twice.copies, 2);
});

test('the explanation names the chunk, model version, batch, queueing and topology', () => {
  const x = explainFrame([label('s', 3, 1234)], [], 'cam-1', 3);
  const text = formatExplanation(x as Exclude<typeof x, { kind: 'none' }>, 3).join('\n');
  assert.match(text, /^cam-1 session s frame 3: labelled$/m);
  assert.match(text, /chunk +partition 2 offset 1234$/m);
  assert.match(text, /model +colour_probe version 1$/m);
  assert.match(text, /batch +4 item\(s\); queued 3\.2 ms from decoded to batched; Triton request 7\.9 ms$/m);
  assert.match(text, /capture → publish 57 ms/);
  assert.match(text, /topology +sha256:0123456789abcdef$/m);
});
