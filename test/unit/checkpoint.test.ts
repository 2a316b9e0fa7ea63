import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartitionTracker, parseCommitMetadata, type SessionTracker } from '../../src/sources/kafka/checkpoint.js';
import type { ResumePoint } from '../../src/core/ack.js';

function setup(resume?: ResumePoint) {
  const p = new PartitionTracker('chunks', 0);
  const s = p.openSession('cam-1', 'sess', resume);
  return { p, s };
}

/** Chunks seq 0..n-1 at offsets 100.. fed to the session (received and handled). */
function feed(p: PartitionTracker, s: SessionTracker, from: number, n: number): void {
  for (let i = from; i < from + n; i++) {
    p.received(String(100 + i));
    s.chunkFed(i, String(100 + i));
    p.handled(String(100 + i));
  }
}

test('nothing is committed past a received record that is not handled', () => {
  const p = new PartitionTracker('chunks', 0);
  p.received('10');
  p.received('11');
  p.handled('11');
  assert.equal(p.commitPoint()!.offset, '10');
  p.handled('10');
  assert.equal(p.commitPoint()!.offset, '12');
});

test('the commit point stays at the chunk of the keyframe governing the oldest unfinished frame', () => {
  const { p, s } = setup();
  feed(p, s, 0, 4);
  // GOP of 4 frames: keyframes at index 0 (in chunk 0) and 4 (in chunk 2)
  for (let i = 0; i < 8; i++) s.frameFound(i, 1.4 + i * 0.04, i % 4 === 0, i < 4 ? Math.floor(i / 2) : 2 + Math.floor((i - 4) / 2), String(100 + (i < 4 ? Math.floor(i / 2) : 2 + Math.floor((i - 4) / 2))));
  assert.equal(p.commitPoint()!.offset, '100', 'frame 0 unfinished: restart from chunk 0');
  for (let i = 0; i < 4; i++) s.framePublished(i);
  assert.equal(p.commitPoint()!.offset, '102', 'frames 0-3 done: restart from the keyframe of frame 4, in chunk 2');
  const meta = parseCommitMetadata(p.commitPoint()!.metadata);
  assert.deepEqual(meta, [{ stream: 'cam-1', session: 'sess', seq: 2, index: 4, pts: 1.4 + 4 * 0.04, next: 4, basePts: 1.4 }]);
  const next = () => parseCommitMetadata(p.commitPoint()!.metadata)[0]!.next;
  // frames finishing out of order do not move the low-water mark past a gap
  s.framePublished(6);
  assert.equal(next(), 4);
  s.framesDropped(4, 5, 'deadline');
  assert.equal(next(), 7);
});

test('frames before the first keyframe are governed by where the session started', () => {
  const { p, s } = setup();
  feed(p, s, 0, 2);
  s.frameFound(0, 5, false, 0, '100'); // a camera that starts mid-GOP
  s.frameFound(1, 5.04, true, 1, '101');
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata)[0], { stream: 'cam-1', session: 'sess', seq: 0, index: 0, pts: null, next: 0, basePts: 5 });
  assert.equal(p.commitPoint()!.offset, '100');
  s.framesDropped(0, 0, 'decoder-reset');
  assert.equal(p.commitPoint()!.offset, '101');
});

test('an idle-ended session with every frame finished no longer holds the partition back, but can continue', () => {
  const { p, s } = setup();
  feed(p, s, 0, 1);
  s.frameFound(0, 2, true, 0, '100');
  s.frameFound(1, 2.04, false, 0, '100');
  s.framePublished(0);
  s.framePublished(1);
  assert.equal(p.commitPoint()!.offset, '100', 'a live session pins its keyframe chunk');
  s.ended('idle');
  assert.equal(p.commitPoint()!.offset, '101');
  p.prune();
  assert.equal(p.sessions.size, 0);
  const rp = { stream: 'cam-1', session: 'sess', seq: 1, index: 2, pts: null, next: 2, basePts: 2, ended: true };
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata), [rp], 'its continue point stays in the metadata');
  assert.deepEqual(p.resumeOf('cam-1', 'sess'), rp);
  // It comes back: a new tracker continues the numbering; the continue point is no longer listed.
  const again = p.openSession('cam-1', 'sess', p.resumeOf('cam-1', 'sess'));
  feed(p, again, 1, 1);
  again.frameFound(2, 2.08, false, 1, '101');
  assert.equal(again.unfinished, 1);
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata).map((r) => r.index), [2]);
});

test('an idle-ended session whose frames are still in flight reopens in place when its chunks come back', () => {
  const { p, s } = setup();
  feed(p, s, 0, 1);
  s.frameFound(0, 2, true, 0, '100');
  s.ended('idle');
  assert.equal(p.commitPoint()!.offset, '100', 'its unfinished frame still pins the chunk');
  assert.equal(p.resumeOf('cam-1', 'sess')!.seq, 1, 'it goes on at its next chunk');
  assert.equal(p.resumeOf('cam-1', 'sess')!.index, 1);
  assert.equal(p.openSession('cam-1', 'sess', p.resumeOf('cam-1', 'sess')), s, 'the same tracker, reopened');
  assert.equal(s.closed, false);
});

test('a session that ended with fw-eos or was replaced leaves no resume point once finished', () => {
  for (const how of ['eos', 'replaced'] as const) {
    const { p, s } = setup();
    feed(p, s, 0, 1);
    s.frameFound(0, 2, true, 0, '100');
    s.ended(how);
    assert.equal(parseCommitMetadata(p.commitPoint()!.metadata).length, 1, `${how}: pinned while frame 0 is unfinished`);
    s.framePublished(0);
    p.prune();
    assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata), [], how);
    assert.equal(p.commitPoint()!.offset, '101');
  }
});

test('a new session of a stream replaces the old one in the partition', () => {
  const { p, s } = setup();
  feed(p, s, 0, 1);
  s.frameFound(0, 2, true, 0, '100');
  const t = p.openSession('cam-1', 'other', undefined);
  assert.equal(s.endedHow, 'replaced');
  assert.notEqual(t, s);
});

test('a resumed session ignores frames finished before the restart, except as anchors', () => {
  const rp: ResumePoint = { stream: 'cam-1', session: 'sess', seq: 2, index: 4, pts: 1.56, next: 6, basePts: 1.4 };
  const { p, s } = setup(rp);
  feed(p, s, 2, 1);
  s.frameFound(4, 1.56, true, 2, '102');
  s.frameFound(5, 1.6, false, 2, '102');
  assert.equal(s.unfinished, 0, 'frames 4 and 5 were finished before the restart');
  s.frameFound(6, 1.64, false, 2, '102');
  assert.equal(s.unfinished, 1);
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata)[0], { ...rp, next: 6 });
  s.framePublished(6);
  assert.equal(parseCommitMetadata(p.commitPoint()!.metadata)[0]!.next, 7);
});

test('resume points the previous run committed are offered once, then owned by the new session', () => {
  const committed = new Map<string, ResumePoint>();
  const rp: ResumePoint = { stream: 'cam-1', session: 'sess', seq: 3, index: 9, pts: 2, next: 10, basePts: 1 };
  committed.set('cam-1\u0000sess', rp);
  const p = new PartitionTracker('chunks', 0, () => Promise.resolve(), committed);
  assert.deepEqual(p.resumeOf('cam-1', 'sess'), rp);
  p.openSession('cam-1', 'sess', rp);
  assert.equal(committed.size, 0);
});

test('version 2 metadata (before the demuxer) still resumes', () => {
  const v2 = JSON.stringify({
    v: 2,
    resume: [
      { kind: 'keyframe', stream: 'a', session: 's', seq: 2, offset: '102', keyIndex: 4, keyPts: 1.56, nextIndex: 6, basePts: 1.4 },
      { kind: 'continue', stream: 'b', session: 't', seq: 7, basePts: 3, lastIndex: 20, lastPts: 3.8, frameDur: 0.04 },
    ],
  });
  assert.deepEqual(parseCommitMetadata(v2), [
    { stream: 'a', session: 's', seq: 2, basePts: 1.4, index: 4, pts: 1.56, next: 6 },
    { stream: 'b', session: 't', seq: 7, basePts: 3, index: 21, pts: null, next: 21 },
  ]);
  assert.deepEqual(parseCommitMetadata('not json'), []);
  assert.deepEqual(parseCommitMetadata(JSON.stringify({ v: 9, resume: [] })), []);
});

test('the done ring grows past its size without losing unfinished frames', () => {
  const { p, s } = setup();
  feed(p, s, 0, 1);
  for (let i = 0; i < 3000; i++) s.frameFound(i, i * 0.04, i === 0, 0, '100');
  for (let i = 1; i < 3000; i++) s.framePublished(i);
  assert.equal(s.unfinished, 3000);
  s.framePublished(0);
  assert.equal(s.unfinished, 0);
  assert.equal(p.commitPoint()!.offset, '100');
});
