import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PartitionTracker, SessionTracker, parseCommitMetadata } from '../../src/sources/kafka/checkpoint.js';

function setup() {
  const p = new PartitionTracker('chunks', 0);
  const s = new SessionTracker('cam-1', 'sess', p);
  p.sessions.add(s);
  s.decoderStarted();
  return { p, s };
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

test('the commit point stays at the chunk of the keyframe of the oldest unfinished frame', () => {
  const { p, s } = setup();
  // chunks 0..3 at offsets 100..103, 1000 bytes each
  for (let i = 0; i < 4; i++) {
    p.received(String(100 + i));
    s.chunkFed(i, String(100 + i), 1000);
    p.handled(String(100 + i));
  }
  // GOP of 4 frames: keyframes at index 0 (byte 10, chunk 0) and 4 (byte 2500, chunk 2)
  for (let i = 0; i < 8; i++) s.frameDecoded(i, 1.4 + i * 0.04, i === 0 ? 10 : i === 4 ? 2500 : 10 + i * 300, i % 4 === 0);
  assert.equal(p.commitPoint()!.offset, '100', 'frame 0 unfinished: restart from chunk 0');
  for (let i = 0; i < 4; i++) s.framePublished(i);
  assert.equal(p.commitPoint()!.offset, '102', 'frames 0-3 done: restart from the keyframe of frame 4, in chunk 2');
  const meta = parseCommitMetadata(p.commitPoint()!.metadata);
  assert.deepEqual(meta, [{ kind: 'keyframe', stream: 'cam-1', session: 'sess', seq: 2, offset: '102', keyIndex: 4, keyPts: 1.4 + 4 * 0.04, nextIndex: 4, basePts: 1.4 }]);
  const nextIndex = () => (parseCommitMetadata(p.commitPoint()!.metadata)[0] as { nextIndex: number }).nextIndex;
  // frames finishing out of order do not move the low-water mark past a gap
  s.framePublished(6);
  assert.equal(nextIndex(), 4);
  s.framesDropped(4, 5, 'deadline');
  assert.equal(nextIndex(), 7);
});

test('an ended session with every frame finished no longer holds the partition back, but can continue', () => {
  const { p, s } = setup();
  p.received('5');
  s.chunkFed(0, '5', 100);
  p.handled('5');
  s.frameDecoded(0, 2, 0, true);
  s.frameDecoded(1, 2.04, 50, false);
  s.framePublished(0);
  s.framePublished(1);
  assert.equal(p.commitPoint()!.offset, '5', 'a live session pins its keyframe chunk');
  s.ending = { lastIndex: 1, lastPts: 2.04, frameDur: 0.04 };
  s.closed = true; // its decoder ended (idle)
  assert.equal(p.commitPoint()!.offset, '6');
  p.prune();
  assert.equal(p.sessions.size, 0);
  // The session may come back after a restart: its continue point travels with the commit.
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata), [
    { kind: 'continue', stream: 'cam-1', session: 'sess', seq: 1, basePts: 2, lastIndex: 1, lastPts: 2.04, frameDur: 0.04 },
  ]);
  p.forgetEnded('cam-1');
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata), []);
});

test('a replaced session leaves no continue point', () => {
  const { p, s } = setup();
  s.chunkFed(0, '0', 10);
  s.frameDecoded(0, 0, 0, true);
  s.framePublished(0);
  s.ending = { lastIndex: 0, lastPts: 0, frameDur: 0.04 };
  s.closed = true;
  s.replaced = true;
  p.prune();
  assert.deepEqual(parseCommitMetadata(p.commitPoint()?.metadata), []);
});

test('a resumed session skips finished frames and keeps the saved keyframe', () => {
  const p = new PartitionTracker('chunks', 0);
  const s = new SessionTracker('cam-1', 'sess', p, { kind: 'keyframe', stream: 'cam-1', session: 'sess', seq: 2, offset: '102', keyIndex: 4, keyPts: 1.56, nextIndex: 6, basePts: 1.4 });
  p.sessions.add(s);
  assert.equal(s.basePts, 1.4);
  s.decoderStarted();
  s.chunkFed(2, '102', 1000);
  s.frameDecoded(4, 1.56, 0, true); // below nextIndex: only the keyframe registers
  s.frameDecoded(6, 1.64, 300, false);
  assert.equal(s.unfinished, 1);
  s.framePublished(6);
  assert.equal(s.unfinished, 0);
});

test('frame windows wider than the initial ring grow it', () => {
  const { s } = setup();
  s.chunkFed(0, '0', 10);
  for (let i = 0; i < 5000; i++) s.frameDecoded(i, i / 25, 0, i === 0);
  assert.equal(s.unfinished, 5000);
  for (let i = 4999; i >= 0; i--) s.framePublished(i);
  assert.equal(s.unfinished, 0);
});

test('garbage metadata yields no resume points', () => {
  assert.deepEqual(parseCommitMetadata('not json'), []);
  assert.deepEqual(parseCommitMetadata(null), []);
  assert.deepEqual(parseCommitMetadata('{"v":1,"resume":[{"stream":"a"}]}'), []);
  assert.deepEqual(parseCommitMetadata('{"v":2,"resume":[{"stream":"a"}]}'), []);
});

test('chunks skipped by load shedding pin the commit until their drop report is published, then continue after them', () => {
  const p = new PartitionTracker('chunks', 0);
  // A session whose first chunks arrive too late: skipped before any decoder started.
  const s = new SessionTracker('cam-1', 'late', p);
  p.sessions.add(s);
  s.closed = true; // skipping: nothing pins unless frames are unfinished
  s.basePts = 1.4;
  p.received('20');
  s.chunkSkipped(0, '20', 0, 9, 1.36, 0.04); // frames 0..9, numbered from the frame step
  p.handled('20');
  p.received('21');
  s.chunkSkipped(1, '21', 10, 19, 1.76, 0.04);
  p.handled('21');
  s.ending = { lastIndex: 19, lastPts: 2.16, frameDur: 0.04 };
  assert.equal(p.commitPoint()!.offset, '20', 'the first skipped chunk is needed until its frames are reported');
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata), [
    { kind: 'continue', stream: 'cam-1', session: 'late', seq: 0, basePts: 1.4, lastIndex: -1, lastPts: 1.36, frameDur: 0.04 },
  ]);
  s.framesDropped(0, 9, 'overload');
  assert.equal(p.commitPoint()!.offset, '21');
  assert.equal((parseCommitMetadata(p.commitPoint()!.metadata)[0] as { seq: number }).seq, 1);
  s.framesDropped(10, 19, 'overload');
  assert.equal(p.commitPoint()!.offset, '22', 'all reported: nothing pinned');
  p.prune();
  assert.deepEqual(parseCommitMetadata(p.commitPoint()!.metadata), [
    { kind: 'continue', stream: 'cam-1', session: 'late', seq: 2, basePts: 1.4, lastIndex: 19, lastPts: 2.16, frameDur: 0.04 },
  ]);
});
