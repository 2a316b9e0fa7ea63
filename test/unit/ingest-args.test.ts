/** `framewire ingest`'s pure option building (src/ingest/ingest.ts): --loop per input kind, the B-frame warning. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { FramewireError } from '../../src/core/errors.js';
import { addIngestCommand } from '../../src/ingest/cli.js';
import { LAVFI_LOOP_MAX_BYTES, bFramesWarning, lavfiFrameBytes, loopArgs, parseRate, runIngest } from '../../src/ingest/ingest.js';

test('--loop: a file or URL is read again (-stream_loop); a lavfi graph goes through the loop filter', () => {
  for (const input of ['clip.mp4', '-odd.ts', 'http://host/clip.ts', 'rtsp://cam/stream']) {
    assert.deepEqual(loopArgs(input, { realtime: true }), { inputOptions: ['-stream_loop', '-1'] }, input);
  }
  // The demo's colour camera: 640x360, 200 frames, paced.
  const frame = lavfiFrameBytes(640, 360);
  assert.equal(frame, 345_600);
  const paced = loopArgs('lavfi:color=c=red:s=640x360:r=25:d=2', { realtime: true, frameBytes: frame });
  assert.deepEqual(paced.inputOptions, [], 'no -stream_loop: the lavfi device cannot seek');
  assert.equal(paced.loopFrames, Math.floor(LAVFI_LOOP_MAX_BYTES / frame));
  assert.ok(paced.loopFrames! >= 200 * 7, 'the demo graph fits many times over');
  // pts continue (the loop filter offsets each pass); paced by the realtime filter once -re's input has ended.
  assert.equal(paced.videoFilter, `format=yuv420p,loop=loop=-1:size=${paced.loopFrames}:start=0,realtime`);
  assert.equal(loopArgs('lavfi:testsrc2', { realtime: false, frameBytes: frame }).videoFilter, `format=yuv420p,loop=loop=-1:size=${paced.loopFrames}:start=0`);
});

test('--loop on lavfi: the kept frames are bounded by memory and by the filter\'s limit', () => {
  assert.equal(lavfiFrameBytes(1920, 1080), 3_110_400);
  assert.equal(loopArgs('lavfi:x', { realtime: true, frameBytes: lavfiFrameBytes(1920, 1080) }).loopFrames, 172);
  assert.equal(lavfiFrameBytes(161, 121), 161 * 121 + 2 * 81 * 61, 'odd sizes: chroma rounded up');
  assert.equal(loopArgs('lavfi:x', { realtime: true, frameBytes: lavfiFrameBytes(16, 16) }).loopFrames, 32767);
  assert.equal(loopArgs('lavfi:x', { realtime: true, frameBytes: LAVFI_LOOP_MAX_BYTES * 2 }).loopFrames, 1);
  assert.throws(() => loopArgs('lavfi:x', { realtime: true }), RangeError);
});

test('the B-frame warning says the reorder delay in frames and ms, and what to do', () => {
  assert.equal(
    bFramesWarning(2, 25),
    'ingest: the source has B-frames, has_b_frames=2: ~80 ms of reorder delay at 25 fps in every decoder of the stream; use --codec x264 to re-encode without B-frames',
  );
  assert.match(bFramesWarning(1, 30000 / 1001), /has_b_frames=1: ~33 ms of reorder delay at 29\.97 fps/);
  assert.match(bFramesWarning(3, undefined), /has_b_frames=3: 3 frames of reorder delay in every decoder/);
  assert.match(bFramesWarning(1, undefined), /: 1 frame of reorder delay/);
});

test('ffprobe rates', () => {
  assert.equal(parseRate('25/1'), 25);
  assert.equal(parseRate('30000/1001'), 30000 / 1001);
  assert.equal(parseRate('0/0'), undefined);
  assert.equal(parseRate('25/0'), undefined);
  assert.equal(parseRate(undefined), undefined);
  assert.equal(parseRate('N/A'), undefined);
});

test('options runIngest cannot use are INGEST_ARGUMENT_INVALID, and `framewire ingest` exits 2 on them', async () => {
  const ok = { stream: 'cam', input: 'lavfi:testsrc2', brokers: ['127.0.0.1:1'], topic: 't' };
  for (const bad of [{ chunkBytes: 0 }, { chunkBytes: 1.5 }, { gop: 0 }, { codec: 'vp9' }, { lingerMs: -1 }, { stream: '' }, { input: '' }, { brokers: [] }]) {
    await assert.rejects(
      runIngest({ ...ok, ...bad } as Parameters<typeof runIngest>[0]),
      (err: unknown) => err instanceof FramewireError && err.code === 'INGEST_ARGUMENT_INVALID' && err.stage === 'ingest',
      JSON.stringify(bad),
    );
  }
  let code: number | undefined;
  const program = new Command().exitOverride();
  addIngestCommand(program, (c) => (code = c));
  const stderr = process.stderr.write;
  process.stderr.write = () => true; // the usage line
  try {
    await program.parseAsync(['ingest', '--stream', '', '--input', 'lavfi:testsrc2', '--brokers', '127.0.0.1:1'], { from: 'user' });
  } finally {
    process.stderr.write = stderr;
  }
  assert.equal(code, 2);
});
