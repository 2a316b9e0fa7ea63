/**
 * The MPEG-TS parser (src/decode/mpegts.ts) on hand-built packets, no ffmpeg: PAT and PMT, PES
 * headers with pts and dts, the adaptation field, lost packets, the 33-bit pts wrap, packets
 * and frames cut across chunks; and the ingest watchers built on the same packet layer.
 * test/integration/mpegts.test.ts checks the demuxer against ffprobe on real encoder output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PTS_HZ, PTS_WRAP, TS_NULL_PACKET, TS_PACKET, TsDemuxer, TsPacketReader, packetHeader, readPacketHeader, unwrapPts, type AccessUnit } from '../../src/decode/mpegts.js';
import { TsWatcher } from '../../src/ingest/buffer.js';
import { EpochEstimator, PtsScanner, VIDEO_PID } from '../../src/ingest/capture.js';

const PMT_PID = 0x1000;
const VIDEO = VIDEO_PID;

/** Continuity counters by PID, as a muxer keeps them. */
const cc = new Map<number, number>();

/** One TS packet: header, an adaptation field when asked (or needed to pad a short payload), payload. */
function packet(pid: number, payload: Buffer, o: { pusi?: boolean; rai?: boolean } = {}): Buffer {
  const p = Buffer.alloc(TS_PACKET, 0xff);
  const counter = cc.get(pid) ?? 0;
  cc.set(pid, (counter + 1) & 0x0f);
  p[0] = 0x47;
  p[1] = (o.pusi ? 0x40 : 0) | (pid >> 8);
  p[2] = pid & 0xff;
  const room = TS_PACKET - 4;
  assert.ok(payload.length <= room - (o.rai ? 2 : 0));
  const adaptation = o.rai || payload.length < room;
  p[3] = (adaptation ? 0x30 : 0x10) | counter;
  let q = 4;
  if (adaptation) {
    const len = room - payload.length - 1; // adaptation_field_length: what pads the packet
    p[q] = len;
    if (len > 0) p[q + 1] = o.rai ? 0x40 : 0x00;
    q += 1 + len;
  }
  payload.copy(p, q);
  return p;
}

/** A PSI section with pointer field and a CRC (not checked by the parser) in one packet. */
function section(pid: number, tableId: number, body: number[]): Buffer {
  const length = 5 + body.length + 4; // after section_length: ext id, version, numbers, body, CRC
  return packet(pid, Buffer.from([0, tableId, 0xb0 | (length >> 8), length & 0xff, 0, 1, 0xc1, 0, 0, ...body, 0, 0, 0, 0]), { pusi: true });
}

const pat = (pmtPid = PMT_PID) => section(0, 0x00, [0, 0, 0xe0, 0x10, 0, 1, 0xe0 | (pmtPid >> 8), pmtPid & 0xff]); // program 0 (network PID), then program 1
/** A PMT naming its elementary streams: [stream type, PID]. */
const pmt = (streams: [number, number][]) =>
  section(PMT_PID, 0x02, [0xe0 | (VIDEO >> 8), VIDEO & 0xff, 0xf0, 0x00, ...streams.flatMap(([type, pid]) => [type, 0xe0 | (pid >> 8), pid & 0xff, 0xf0, 0x00])]);

/** A 5-byte PES timestamp with its 4-bit prefix. */
function timestamp(prefix: number, ticks: number): number[] {
  const hi = Math.floor(ticks / 2 ** 30) & 0x07;
  const mid = Math.floor(ticks / 2 ** 15) & 0x7fff;
  const lo = ticks & 0x7fff;
  return [(prefix << 4) | (hi << 1) | 1, mid >> 7, ((mid & 0x7f) << 1) | 1, lo >> 7, ((lo & 0x7f) << 1) | 1];
}

/** The TS packets of one video PES: its header (pts, dts, length when `withLength`), then `es` cut into payloads. */
function pes(pid: number, es: Buffer, o: { pts?: number; dts?: number; withLength?: boolean; rai?: boolean; streamId?: number } = {}): Buffer[] {
  const ts = o.pts === undefined ? [] : o.dts === undefined ? timestamp(0x2, o.pts) : [...timestamp(0x3, o.pts), ...timestamp(0x1, o.dts)];
  const flags = o.pts === undefined ? 0x00 : o.dts === undefined ? 0x80 : 0xc0;
  const length = o.withLength ? 3 + ts.length + es.length : 0;
  const bytes = Buffer.concat([Buffer.from([0, 0, 1, o.streamId ?? 0xe0, length >> 8, length & 0xff, 0x80, flags, ts.length, ...ts]), es]);
  const out: Buffer[] = [];
  for (let at = 0, first = true; at < bytes.length; first = false) {
    const room = TS_PACKET - 4 - (first && o.rai ? 2 : 0);
    out.push(packet(pid, bytes.subarray(at, at + room), { pusi: first, rai: first && o.rai }));
    at += room;
  }
  return out;
}

const AUD = [0, 0, 0, 1, 0x09, 0xf0];
/** An H.264 access unit: delimiter, then a slice NAL with this header byte, padded to `size`. */
function h264(nalHeader: number, size = 40): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  Buffer.from([...AUD, 0, 0, 1, nalHeader]).copy(b);
  return b;
}
const IDR = 0x65; // nal_ref_idc 3, type 5
const P = 0x41; // nal_ref_idc 2, type 1
const B = 0x01; // nal_ref_idc 0, type 1: no other picture references it

interface Got {
  pts: number;
  dts: number;
  key: boolean;
  disposable: boolean;
  size: number;
  seq: number;
}

/** Demuxes `ts` cut at `cuts` (byte positions); chunk i has seq i. */
function demux(ts: Buffer, cuts: number[] = [], d = new TsDemuxer()): Got[] {
  const got: Got[] = [];
  const out = (u: AccessUnit) => got.push({ pts: u.pts, dts: u.dts, key: u.key, disposable: u.disposable, size: u.data.length, seq: u.seq });
  const bounds = [0, ...cuts, ts.length];
  for (let i = 0; i + 1 < bounds.length; i++) d.push(ts.subarray(bounds[i], bounds[i + 1]), i, String(100 + i), out);
  d.flush(out);
  return got;
}

const stream = (...parts: (Buffer | Buffer[])[]) => Buffer.concat(parts.flat());

test('PAT and PMT: the video PID and codec come from the PMT; other streams are ignored', () => {
  const audio = 0x101;
  const ts = stream(
    pat(),
    pmt([
      [0x0f, audio], // AAC first: not video
      [0x24, VIDEO], // H.265
    ]),
    pes(audio, Buffer.alloc(50, 1), { pts: 9000, streamId: 0xc0 }),
    pes(VIDEO, Buffer.from([0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x26, 0x01, 9, 9]), { pts: 9000 }), // AUD, IDR_W_RADL
  );
  const d = new TsDemuxer();
  const got = demux(ts, [], d);
  assert.equal(d.codec, 'hevc');
  assert.equal(got.length, 1);
  assert.equal(got[0]!.key, true);
  assert.equal(got[0]!.size, 14);
});

test('before any PMT, the first PES with a video stream id is the video', () => {
  const ts = stream(pes(0x200, Buffer.alloc(30, 1), { pts: 100, streamId: 0xc0 }), pes(0x300, h264(IDR), { pts: 9000 }), pes(0x300, h264(P), { pts: 12600 }));
  const d = new TsDemuxer();
  const got = demux(ts, [], d);
  assert.deepEqual(got.map((g) => g.pts), [0.1, 0.14]);
  assert.equal(d.codec, 'h264'); // sniffed from the access unit delimiter
});

test('PES headers: pts alone gives dts = pts; pts and dts are read apart; a PES without pts is damaged', () => {
  const ts = stream(pat(), pmt([[0x1b, VIDEO]]), pes(VIDEO, h264(IDR), { pts: 180_000 }), pes(VIDEO, h264(P), { pts: 198_000, dts: 183_600 }), pes(VIDEO, h264(P)), pes(VIDEO, h264(B), { pts: 187_200, dts: 187_200 }));
  const d = new TsDemuxer();
  const got = demux(ts, [], d);
  assert.deepEqual(
    got.map(({ pts, dts }) => [pts, dts]),
    [
      [2, 2],
      [2.2, 2.04],
      [2.08, 2.08],
    ],
  );
  assert.equal(d.damaged, 1);
});

test('keyframes from the NAL type or the adaptation field; disposable frames from nal_ref_idc', () => {
  const ts = stream(pat(), pmt([[0x1b, VIDEO]]), pes(VIDEO, h264(IDR), { pts: 0 }), pes(VIDEO, h264(P), { pts: 3600, rai: true }), pes(VIDEO, h264(P), { pts: 7200 }), pes(VIDEO, h264(B), { pts: 10800 }), pes(VIDEO, h264(B), { pts: 14400, rai: true }));
  assert.deepEqual(
    demux(ts).map(({ key, disposable }) => [key, disposable]),
    [
      [true, false],
      [true, false], // random_access_indicator
      [false, false],
      [false, true],
      [true, false], // a random-access point is never disposable
    ],
  );
});

test('a PES with a length is complete at its last packet; one without ends at the next PES or the flush', () => {
  const big = h264(P, 500); // three packets
  const withLength = stream(pat(), pmt([[0x1b, VIDEO]]), pes(VIDEO, big, { pts: 0, withLength: true }));
  const early: number[] = [];
  const d = new TsDemuxer();
  d.push(withLength, 0, '0', (u) => early.push(u.data.length));
  assert.deepEqual(early, [500], 'out before the next PES starts');

  const without = stream(pat(), pmt([[0x1b, VIDEO]]), pes(VIDEO, big, { pts: 0 }));
  const late: number[] = [];
  const d2 = new TsDemuxer();
  d2.push(without, 0, '0', (u) => late.push(u.data.length));
  assert.equal(late.length, 0, 'waits for the next PES or the flush');
  d2.flush((u) => late.push(u.data.length));
  assert.deepEqual(late, [500]);
});

test('a lost packet (continuity broken) leaves a PES short of its length: dropped as damaged, the next frame is whole', () => {
  const frame = pes(VIDEO, h264(P, 500), { pts: 3600, withLength: true });
  assert.equal(frame.length, 3);
  const ts = stream(pat(), pmt([[0x1b, VIDEO]]), pes(VIDEO, h264(IDR), { pts: 0, withLength: true }), frame[0]!, frame[2]!, pes(VIDEO, h264(P), { pts: 7200, withLength: true }));
  const d = new TsDemuxer();
  const got = demux(ts, [], d);
  assert.deepEqual(got.map((g) => g.pts), [0, 0.08]);
  assert.equal(d.damaged, 1);
});

test('packets without payload, null packets and garbage between packets are skipped', () => {
  const adaptationOnly = Buffer.alloc(TS_PACKET, 0xff);
  adaptationOnly.set([0x47, 0x01, 0x00, 0x20, 183, 0x00]);
  const h = readPacketHeader(adaptationOnly, 0, packetHeader());
  assert.deepEqual(h, { pid: 0x100, pusi: false, rai: false, payload: -1 });
  const ts = stream(pat(), pmt([[0x1b, VIDEO]]), pes(VIDEO, h264(IDR, 300), { pts: 0 }).slice(0, 1), adaptationOnly, TS_NULL_PACKET, Buffer.from([1, 2, 0x47, 3]), pes(VIDEO, h264(IDR, 300), { pts: 0 }).slice(1), pes(VIDEO, h264(P), { pts: 3600 }));
  assert.deepEqual(demux(ts).map((g) => [g.pts, g.size]), [
    [0, 300],
    [0.04, 40],
  ]);
});

test('pts continue across the 33-bit wrap, and a dts before the wrap goes with its pts after it', () => {
  const t0 = PTS_WRAP - 7200; // 80 ms before the wrap
  const ts = stream(
    pat(),
    pmt([[0x1b, VIDEO]]),
    pes(VIDEO, h264(IDR), { pts: t0, dts: t0 - 3600 }),
    pes(VIDEO, h264(P), { pts: (t0 + 10800) % PTS_WRAP, dts: t0 }), // pts wrapped, dts not yet
    pes(VIDEO, h264(B), { pts: t0 + 3600 }), // presented before the wrap, decoded after a frame past it
    pes(VIDEO, h264(P), { pts: (t0 + 21600) % PTS_WRAP, dts: (t0 + 7200) % PTS_WRAP }),
  );
  const s = (ticks: number) => ticks / PTS_HZ;
  assert.deepEqual(
    demux(ts).map(({ pts, dts }) => [pts, dts]),
    [
      [s(t0), s(t0 - 3600)],
      [s(t0 + 10800), s(t0)],
      [s(t0 + 3600), s(t0 + 3600)],
      [s(t0 + 21600), s(t0 + 7200)],
    ],
  );
  assert.equal(unwrapPts(100, Number.NaN), 100);
  assert.equal(unwrapPts(100, PTS_WRAP - 100), PTS_WRAP + 100);
  assert.equal(unwrapPts(PTS_WRAP - 100, 100), -100);
  assert.equal(unwrapPts(PTS_WRAP - 100, 3 * PTS_WRAP + 100), 3 * PTS_WRAP - 100);
});

test('chunks cut anywhere give the same frames; a frame belongs to the chunk its first packet began in', () => {
  const ts = stream(pat(), pmt([[0x1b, VIDEO]]), pes(VIDEO, h264(IDR, 400), { pts: 0, withLength: true }), pes(VIDEO, h264(P, 100), { pts: 3600, dts: 3600 }), pes(VIDEO, h264(B, 250), { pts: 7200 }));
  const whole = demux(ts).map(({ seq: _seq, ...u }) => u);
  assert.equal(whole.length, 3);
  const frameStart = 2 * TS_PACKET; // the first PES's first packet
  for (let cut = 1; cut < ts.length; cut++) {
    const got = demux(ts, [cut]);
    assert.deepEqual(
      got.map(({ seq: _seq, ...u }) => u),
      whole,
      `cut at ${cut}`,
    );
    // Cut inside the first frame's first packet: it began in chunk 0.
    if (cut > frameStart && cut < frameStart + TS_PACKET) assert.equal(got[0]!.seq, 0, `cut at ${cut}`);
    if (cut <= frameStart) assert.equal(got[0]!.seq, 1, `cut at ${cut}`);
  }
  // A packet split over three chunks (the middle one shorter than what the packet still needs).
  assert.deepEqual(demux(ts, [frameStart + 10, frameStart + 20]).map((g) => g.seq), [0, 2, 2]);
  // A chunk holding nothing but the start of the frame's first packet: the frame began there.
  assert.deepEqual(demux(ts, [frameStart, frameStart + 10]).map((g) => g.seq), [1, 2, 2]);
});

test('the packet reader hands over a carried packet once, marked as carried', () => {
  const ts = stream(pat(), TS_NULL_PACKET, TS_NULL_PACKET);
  const seen: [number, boolean][] = [];
  const r = new TsPacketReader((b, p, carried) => seen.push([readPacketHeader(b, p, packetHeader()).pid, carried]));
  r.push(ts.subarray(0, 200));
  r.push(ts.subarray(200, 300));
  r.push(ts.subarray(300));
  assert.deepEqual(seen, [
    [0, false],
    [0x1fff, true],
    [0x1fff, false],
  ]);
});

test('ingest TsWatcher: PAT and PMT kept, keyframe starts with their pts, a keyframe split between pieces is no start', () => {
  const head = stream(pat(), pmt([[0x1b, VIDEO]]));
  const key1 = stream(pes(VIDEO, h264(IDR), { pts: 90_000, rai: true }));
  const p1 = stream(pes(VIDEO, h264(P), { pts: 93_600 }));
  const key2 = stream(pes(VIDEO, h264(IDR), { pts: 97_200, rai: true }));
  const w = new TsWatcher();
  const first = w.observe(Buffer.concat([head, key1, p1, key2.subarray(0, 100)]));
  assert.deepEqual(first, { keyStarts: [{ offset: 2 * TS_PACKET, pts: 1 }], frameStarts: [2 * TS_PACKET, 3 * TS_PACKET] });
  assert.deepEqual(w.pat, head.subarray(0, TS_PACKET));
  assert.deepEqual(w.pmt, head.subarray(TS_PACKET, 2 * TS_PACKET));
  assert.equal(w.firstPts, 1);
  assert.deepEqual(w.observe(key2.subarray(100)), { keyStarts: [], frameStarts: [0] });
  assert.equal(w.frames, 3);
});

test('ingest PtsScanner and EpochEstimator: pts of the video PID only, across the wrap', () => {
  const t0 = PTS_WRAP - 3600;
  const ts = stream(pat(), pmt([[0x1b, VIDEO]]), pes(0x101, Buffer.alloc(20), { pts: 5, streamId: 0xc0 }), pes(VIDEO, h264(IDR), { pts: t0 }), pes(VIDEO, h264(P), { pts: (t0 + 3600) % PTS_WRAP }), pes(VIDEO, h264(P), { pts: (t0 + 7200) % PTS_WRAP }));
  assert.deepEqual(new PtsScanner().feed(ts), [t0, 0, 3600]);
  const e = new EpochEstimator();
  e.observe(ts.subarray(0, 4 * TS_PACKET), 1_000_000); // the first frame
  e.observe(ts.subarray(4 * TS_PACKET), 1_000_050); // two more, 40 and 80 ms of stream time later
  assert.equal(e.frames, 3);
  // The last frame was captured 80 ms after the first (not 26.5 h before it): no later than 1_000_050 - 80.
  assert.equal(e.epochMs, 1_000_050 - 80);
});
