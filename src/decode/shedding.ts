/**
 * Live-mode load shedding, per frame and before decoding. A stream that falls behind its budget
 * (a backlog in Kafka: the processor started late, a partition was held up; or its decoder is
 * behind) is first decoded without classifying: its frames are dropped as `deadline`, which costs
 * only their decode (~2–5 ms a frame against 33–40 ms of video), so the stream catches up within
 * a few frames and no GOP is lost. Only when catching up that way would take longer than
 * `catchUpMs` — the backlog times the measured decode cost, or a decoder that cannot keep up at
 * all — are frames skipped undecoded (`overload`). Decoding can only resume at a keyframe, so
 * once skipping, every frame is skipped until a keyframe from which the stream can catch up
 * within the same bound.
 *
 * Pure: the caller passes the clock and the measured costs, so it is tested with a fake one.
 */

export interface ShedSettings {
  budgetMs: number;
  /** Longest a stream may take to catch up by decoding without classifying before it skips ahead instead, ms. */
  catchUpMs: number;
  /** Skipping this long, the next keyframe is decoded whatever its age (a camera whose clock is off), ms. */
  giveUpAfterMs: number;
}

export const FEED = 0;
export const SHED = 1;
/** Decode (later frames reference it) but do not classify: it cannot make its deadline. */
export const LATE = 2;
export type ShedDecision = typeof FEED | typeof SHED | typeof LATE;

/**
 * How long decoding through a backlog of `behindMs` of video takes, ms: its frames at `decodeMs`
 * each, while more keep coming at one per `frameMs`. Infinite when decoding is not faster than
 * the video.
 */
export function catchUpMs(behindMs: number, frameMs: number, decodeMs: number): number {
  if (!(decodeMs < frameMs)) return Infinity;
  return ((behindMs / frameMs) * decodeMs) / (1 - decodeMs / frameMs);
}

export class ShedPolicy {
  shedding = false;
  private since = 0;
  /** Times this stream began skipping ahead. */
  episodes = 0;

  constructor(private readonly s: ShedSettings) {}

  /**
   * One frame, in decode order: its capture time, whether it is a keyframe, how far behind the
   * decoder is (capture age of the oldest frame it holds; 0 when it holds none or has not yet
   * put out its first frame: a decoder's start is not a backlog), the stream's frame interval
   * and the decoder's measured cost per frame, ms.
   */
  decide(now: number, captureTs: number, key: boolean, decoderLagMs: number, frameMs: number, decodeMs: number): ShedDecision {
    const behind = Math.max(now - captureTs, decoderLagMs);
    if (!this.shedding) {
      if (behind <= this.s.budgetMs) return FEED;
      if (catchUpMs(behind, frameMs, decodeMs) <= this.s.catchUpMs) return LATE;
      this.shedding = true;
      this.since = now;
      this.episodes++;
      return SHED;
    }
    if (!key) return SHED;
    const fresh = behind <= this.s.budgetMs;
    if (fresh || catchUpMs(behind, frameMs, decodeMs) <= this.s.catchUpMs || now - this.since >= this.s.giveUpAfterMs) {
      this.shedding = false;
      return fresh ? FEED : LATE;
    }
    return SHED;
  }
}
