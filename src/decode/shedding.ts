/**
 * Live-mode load shedding, per frame and before decoding. A frame far past its budget when it
 * arrives (a backlog in Kafka: the processor started late, a partition was held up) or whose
 * decoder is a budget behind (the machine cannot keep up) would only be decoded to be dropped, so
 * it is skipped undecoded and reported `overload`. Decoding can only resume at a keyframe, so
 * once shedding, every frame is skipped until a keyframe fresh enough that its GOP can make it.
 * A frame only a little late (a burst after a network hiccup) is still decoded, because the
 * fresher frames behind it reference it, but not classified: it is dropped as `deadline`.
 *
 * Catching up: once a stream's decoder has a measured cost (its CPU time per frame, read by the
 * watchdog), a stream that falls behind is first decoded without classifying (`deadline`) as long
 * as that gets it back within its budget inside `catchUpMs`: the backlog's frames at their decode
 * cost, while new ones keep coming. A 10 s GOP that falls 300 ms behind once then loses a few
 * frames, not the rest of its GOP. CPU time understates a decode's wall time on a busy machine, so
 * a catch-up that is not done after `catchUpMs` of real time skips ahead as before, and the
 * stream does not try again for CATCH_UP_RETRY_MS. A catch-up is done when the stream is back
 * within `freshFraction` of its budget, the room a fresh keyframe would give. Until its
 * decoder's cost is measured (the first seconds of a session) a stream is assumed to cost
 * UNMEASURED_DECODE_MS a frame. Once skipping, it resumes at a fresh keyframe as before: a
 * catch-up that failed would fail again.
 *
 * Pure: the caller passes the clock and the measured costs, so it is tested with a fake one.
 */

export interface ShedSettings {
  budgetMs: number;
  /** A frame more than this many budgets old on arrival starts shedding (between one and this many: LATE). */
  shedAfterBudgets: number;
  /** A keyframe this fresh (fraction of the budget) ends shedding. */
  freshFraction: number;
  /** Shedding this long, a keyframe up to a whole budget old will do. */
  relaxAfterMs: number;
  /** Shedding this long, the next keyframe is decoded whatever its age (a camera whose clock is off). */
  giveUpAfterMs: number;
  /** Longest a stream decodes without classifying to catch up before it skips ahead instead, ms; 0: never. */
  catchUpMs: number;
}

/**
 * Decode cost assumed before a stream's decoder has been measured, ms a frame: on one core here
 * a 640x360 H.264 frame costs ~2.5 ms and a 1080p one ~12 ms with the scaling (testsrc2, CPU
 * time). A guess too low for a large stream costs at most one `catchUpMs` of decoding.
 * A new session that starts a little behind (a decoder start, a burst) then catches up instead
 * of losing its first GOP; one that starts far behind (a backlog) still skips ahead.
 */
export const UNMEASURED_DECODE_MS = 10;

/**
 * Frame interval assumed before a session's second frame gives it, ms (25 fps, the commonest
 * camera rate). A session's first chunk comes late by design: `framewire ingest` dates the
 * session from its first 100 ms of frames before cutting it, so with B-frames its first frames
 * arrive ~2 budgets old; with an interval to reckon with they are caught up, not skipped to the
 * next keyframe (a whole 10 s GOP).
 */
export const UNMEASURED_FRAME_MS = 40;

/**
 * After a catch-up that did not finish, the stream skips ahead instead for this long, ms: a
 * machine that cannot keep up must not spend its CPU decoding frames it then drops.
 */
export const CATCH_UP_RETRY_MS = 10_000;

export const FEED = 0;
export const SHED = 1;
/** Decode (later frames reference it) but do not classify: it cannot make its deadline. */
export const LATE = 2;
export type ShedDecision = typeof FEED | typeof SHED | typeof LATE;

/**
 * How long decoding through a backlog of `behindMs` of video takes, ms: its frames at `decodeMs`
 * each, while more keep coming at one per `frameMs`. Infinite when decoding is not faster than
 * the video (or either cost is unknown).
 */
export function catchUpTimeMs(behindMs: number, frameMs: number, decodeMs: number): number {
  if (!(frameMs > 0) || !(decodeMs > 0) || !(decodeMs < frameMs)) return Infinity;
  return ((behindMs / frameMs) * decodeMs) / (1 - decodeMs / frameMs);
}

export class ShedPolicy {
  shedding = false;
  private since = 0;
  /** Times this stream began shedding. */
  episodes = 0;
  /** Times this stream began catching up by decoding without classifying. */
  catchUps = 0;
  /** When the running catch-up began (NaN: none). */
  private catchUpSince = Number.NaN;
  /** When a catch-up last ran out of time (or of hope). */
  private catchUpFailedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly s: ShedSettings) {}

  /**
   * One frame, in decode order: its capture time, whether it is a keyframe, how far behind the
   * decoder is (capture age of the oldest frame it holds; 0 when it holds none or has not yet
   * put out its first frame: a decoder's start is not a backlog), the stream's frame interval and
   * its decoder's measured cost per frame, ms (NaN: not measured yet), and the frames its
   * decoder holds beyond the stream's reorder depth (NaN: unknown).
   */
  decide(now: number, captureTs: number, key: boolean, decoderLagMs: number, frameMs = Number.NaN, decodeMs = Number.NaN, backlog = Number.NaN): ShedDecision {
    const budget = this.s.budgetMs;
    const age = now - captureTs;
    const behind = Math.max(age, decoderLagMs);
    if (!this.shedding) {
      if (!Number.isNaN(this.catchUpSince)) {
        // Caught up once the decoder holds no backlog beyond its reorder depth and frames arrive
        // within the budget, or once back with the room a fresh keyframe gives. Not merely back
        // inside the budget: a decoder still a backlog behind there drops each frame it decodes.
        if ((backlog <= 1 && age <= budget) || behind <= budget * this.s.freshFraction) {
          this.catchUpSince = Number.NaN;
          return FEED;
        }
        if (this.canCatchUp(now, behind, frameMs, decodeMs)) return LATE;
        this.catchUpFailedAt = now;
        return this.startShedding(now);
      }
      if (decoderLagMs <= budget) {
        if (age <= budget) return FEED;
        if (age <= budget * this.s.shedAfterBudgets) return LATE;
      }
      if (now - this.catchUpFailedAt >= CATCH_UP_RETRY_MS && this.canCatchUp(now, behind, frameMs, decodeMs)) return LATE;
      return this.startShedding(now);
    }
    if (!key) return SHED;
    const shedFor = now - this.since;
    const limit = shedFor >= this.s.relaxAfterMs ? budget : budget * this.s.freshFraction;
    if ((age <= limit && decoderLagMs <= limit) || shedFor >= this.s.giveUpAfterMs) {
      this.shedding = false;
      return FEED;
    }
    return SHED;
  }

  private startShedding(now: number): ShedDecision {
    this.catchUpSince = Number.NaN;
    this.shedding = true;
    this.since = now;
    this.episodes++;
    return SHED;
  }

  /** Behind by `behindMs`: can decoding without classifying (still) catch up within `catchUpMs`? */
  private canCatchUp(now: number, behindMs: number, frameMs: number, decodeMs: number): boolean {
    if (!(this.s.catchUpMs > 0)) return false;
    const started = !Number.isNaN(this.catchUpSince);
    const elapsed = started ? now - this.catchUpSince : 0;
    if (catchUpTimeMs(behindMs, frameMs, decodeMs) > this.s.catchUpMs - elapsed) return false;
    if (!started) {
      this.catchUpSince = now;
      this.catchUps++;
    }
    return true;
  }
}
