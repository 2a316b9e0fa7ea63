/**
 * The ingest sender: the only reader of the OutageBuffer, so records leave in stream order, one
 * produce request at a time. A failed request is retried (backoff with jitter, src/core/retry.ts)
 * for as long as the broker is merely unreachable, up to `giveUpAfterMs`; meanwhile the buffer
 * fills, and a live source's oldest pieces are dropped. After such a hole the sender ends the
 * session (a record with fw-eos), skips to the next keyframe and opens a new session there: the
 * processor sees two whole byte streams and a gap, never a broken one. Gaps are logged and counted.
 */
import { randomBytes } from 'node:crypto';
import type { Message, Producer } from 'kafkajs';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import { isAbort, retry } from '../core/retry.js';
import { kafkaRetriable } from '../kafka/errors.js';
import { SentFrames, type OutageBuffer, type Piece, type TsWatcher } from './buffer.js';
import { TS_NULL_PACKET } from '../decode/mpegts.js';

export interface IngestSession {
  session: string;
  /** Frames that reached the broker whole (as the processor's demuxer counts them). */
  frames: number;
  /** fw-epoch-ms of the session. */
  epochMs: number;
}

export interface IngestGap {
  /** The session the gap ended and the one that started after it (undefined: the input ended first). */
  endedSession: string;
  nextSession: string | undefined;
  /** Frames of the source that reached no session. */
  frames: number;
  /** Date.now() when the first piece of the gap was dropped, and when the next session started. */
  from: number;
  to: number;
}

export interface SenderOptions {
  producer: Producer;
  topic: string;
  stream: string;
  /** The first session's id. */
  session: string;
  format: string;
  /** The stream's fw-epoch-ms (capture time of its first frame); known by the first piece. */
  epochMs: () => number;
  watcher: TsWatcher;
  buffer: OutageBuffer;
  maxSendBytes: number;
  giveUpAfterMs: number;
  /** Aborted some seconds after the run was asked to stop: retries end, what is unsent is a gap. */
  stopSignal?: AbortSignal;
}

export class Sender {
  readonly sessions: IngestSession[] = [];
  readonly gaps: IngestGap[] = [];
  chunks = 0;
  bytes = 0;
  private current: IngestSession | undefined;
  private seq = 0;
  private sent = new SentFrames();
  /** Frame starts sent in the current session (the demuxer may count one fewer: a frame cut short). */
  private startsSent = 0;
  private gap: IngestGap | undefined;

  constructor(private readonly o: SenderOptions) {}

  /** Frames lost in gaps so far. */
  get lostFrames(): number {
    let n = 0;
    for (const g of this.gaps) n += g.frames;
    return n + (this.gap?.frames ?? 0);
  }

  async run(): Promise<void> {
    try {
      await this.loop();
    } catch (err) {
      if (!isAbort(err)) throw err;
      // Stopped while the broker was away: what never went out is the run's last gap.
      const buf = this.o.buffer;
      this.noteDrops();
      this.gap ??= { endedSession: this.current?.session ?? this.o.session, nextSession: undefined, frames: 0, from: Date.now(), to: 0 };
      for (let p = buf.take(); p !== undefined; p = buf.take()) this.gap.frames += p.frameStarts.length;
      this.gap.frames += this.unsentStarts;
      if (this.current) this.closeSession();
      this.finishGap(undefined);
      log.warn('ingest: stopped while the broker was unreachable; unsent frames counted as a gap', { stream: this.o.stream });
    }
  }

  /** Frame starts of the batch being sent (lost if the run stops before it is acknowledged). */
  private unsentStarts = 0;

  private async loop(): Promise<void> {
    const buf = this.o.buffer;
    for (;;) {
      await buf.waitForItem();
      this.noteDrops();
      if (buf.length === 0) {
        if (buf.isClosed) break;
        continue;
      }
      if (this.gap) {
        if (this.current) await this.endWithEos();
        this.noteDrops();
        if (!this.resync()) continue;
      }
      if (!this.current) this.open(this.o.session, this.o.epochMs());
      const pieces: Piece[] = [];
      let bytes = 0;
      for (let p = buf.peek(); p !== undefined; p = buf.peek()) {
        if (pieces.length > 0 && bytes + p.value.length > this.o.maxSendBytes) break;
        pieces.push(buf.take()!);
        bytes += p.value.length;
        if (p.eos) break;
      }
      const first = this.seq;
      const messages = pieces.map((p, i) => this.message(p.value, first + i, p.eos === true));
      this.unsentStarts = pieces.reduce((n, p) => n + p.frameStarts.length, 0);
      await this.send(messages);
      this.unsentStarts = 0;
      this.seq += pieces.length;
      for (const p of pieces) {
        this.sent.add(p.value);
        this.startsSent += p.frameStarts.length;
      }
      this.chunks += pieces.length;
      this.bytes += bytes;
      if (pieces[pieces.length - 1]!.eos) this.closeSession();
    }
    // The input ended inside a gap (no keyframe came): that gap has no next session.
    this.noteDrops();
    if (this.gap) this.finishGap(undefined);
    if (this.current) this.closeSession();
  }

  /** Pieces the buffer dropped: the session that was going out ends, a gap opens (or grows). */
  private noteDrops(): void {
    const buf = this.o.buffer;
    if (buf.droppedPieces === 0) return;
    const frames = buf.droppedFrames;
    buf.droppedPieces = 0;
    buf.droppedFrames = 0;
    if (!this.gap) {
      const ended = this.current?.session ?? this.o.session;
      this.gap = { endedSession: ended, nextSession: undefined, frames: 0, from: Date.now(), to: 0 };
      log.warn('ingest: buffer full while the broker is unreachable; dropping the oldest chunks', { stream: this.o.stream, session: ended });
    }
    this.gap.frames += frames;
  }

  /**
   * In a gap: ends the session that was going out, skips pieces up to the next keyframe and opens
   * a new session there. False while no keyframe is buffered yet.
   */
  private resync(): boolean {
    const buf = this.o.buffer;
    const gap = this.gap!;
    for (let p = buf.peek(); p !== undefined; p = buf.peek()) {
      const key = p.keyStarts[0];
      if (key && this.o.watcher.pat && this.o.watcher.pmt) {
        gap.frames += p.frameStarts.filter((o) => o < key.offset).length;
        const epochMs = this.o.epochMs() + Math.round((key.pts - this.o.watcher.firstPts) * 1000);
        // Nothing sent yet (the broker was away from the start): the run's session id is still free.
        const session = this.sessions.length === 0 ? this.o.session : randomBytes(4).toString('hex');
        // PAT and PMT first, so the new byte stream stands on its own.
        p.value = Buffer.concat([this.o.watcher.pat, this.o.watcher.pmt, p.value.subarray(key.offset)]);
        p.frameStarts = p.frameStarts.filter((o) => o >= key.offset);
        p.keyStarts = p.keyStarts.filter((k) => k.offset >= key.offset);
        this.finishGap(session);
        this.open(session, epochMs);
        return true;
      }
      buf.take();
      gap.frames += p.frameStarts.length;
      if (p.eos) break;
    }
    return false;
  }

  private finishGap(next: string | undefined): void {
    const gap = this.gap!;
    gap.nextSession = next;
    gap.to = Date.now();
    this.gaps.push(gap);
    this.gap = undefined;
    log.warn('ingest: gap in the stream', { stream: this.o.stream, endedSession: gap.endedSession, nextSession: next ?? null, frames: gap.frames, ms: gap.to - gap.from });
  }

  private open(session: string, epochMs: number): void {
    this.current = { session, frames: 0, epochMs };
    this.seq = 0;
    this.sent = new SentFrames();
    this.startsSent = 0;
  }

  /** The session's last record: a null packet with fw-eos (its bytes already went out). */
  private async endWithEos(): Promise<void> {
    await this.send([this.message(TS_NULL_PACKET, this.seq, true)]);
    this.seq++;
    this.chunks++;
    this.closeSession();
  }

  private closeSession(): void {
    const s = this.current!;
    s.frames = this.sent.end();
    // Frames started in the session that the processor will not see whole belong to the gap.
    const cut = this.startsSent - s.frames;
    if (cut > 0 && this.gap) this.gap.frames += cut;
    this.sessions.push(s);
    this.current = undefined;
  }

  private message(value: Buffer, seq: number, eos: boolean): Message {
    const s = this.current!;
    const headers: Record<string, string> = {
      'fw-stream': this.o.stream,
      'fw-session': s.session,
      'fw-seq': String(seq),
      'fw-format': this.o.format,
      'fw-epoch-ms': String(s.epochMs),
    };
    if (eos) headers['fw-eos'] = '1';
    return { key: this.o.stream, value, headers };
  }

  /** One produce request, retried while the broker is unreachable, for at most giveUpAfterMs. */
  private async send(messages: Message[]): Promise<void> {
    let since = 0;
    try {
      await retry(() => this.o.producer.send({ topic: this.o.topic, acks: -1, messages }), {
        attempts: Infinity,
        baseMs: 200,
        // The camera's frames reach the processor at most this long (plus the producer's own two
        // short retries) after the broker is back: the stream must be labelled within its budget
        // again within 2 s of the outage's end (issue #20), and the buffered backlog is sent first.
        maxMs: 500,
        signal: this.o.stopSignal,
        retriable: (err) => {
          if (!since) since = Date.now();
          return kafkaRetriable(err) && Date.now() - since < this.o.giveUpAfterMs;
        },
        onRetry: (err, attempt) => {
          if (attempt === 0) {
            log.warn('ingest: producing failed; buffering and retrying', { stream: this.o.stream, err: (err as Error).message });
          }
        },
      });
      if (since) log.info('ingest: the broker is back; sending again', { stream: this.o.stream, outageMs: Date.now() - since });
    } catch (err) {
      if (since && kafkaRetriable(err)) {
        throw new FramewireError('INGEST_BROKER_GONE', 'ingest', `the broker was unreachable for more than ${this.o.giveUpAfterMs} ms (--give-up-after): ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
  }
}
