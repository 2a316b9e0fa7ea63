/**
 * Live-mode load shedding, per frame and before decoding. A frame far past its budget when it
 * arrives (a backlog in Kafka: the processor started late, a partition was held up) or whose
 * decoder is a budget behind (the machine cannot keep up) would only be decoded to be dropped, so
 * it is skipped undecoded and reported `overload`. Decoding can only resume at a keyframe, so
 * once shedding, every frame is skipped until a keyframe fresh enough that its GOP can make it.
 * A frame only a little late (a burst after a network hiccup) is still decoded, because the
 * fresher frames behind it reference it, but not classified: it is dropped as `deadline`.
 *
 * Pure: the caller passes the clock, so it is tested with a fake one.
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
}

export const FEED = 0;
export const SHED = 1;
/** Decode (later frames reference it) but do not classify: it cannot make its deadline. */
export const LATE = 2;
export type ShedDecision = typeof FEED | typeof SHED | typeof LATE;

export class ShedPolicy {
  shedding = false;
  private since = 0;
  /** Times this stream began shedding. */
  episodes = 0;

  constructor(private readonly s: ShedSettings) {}

  /**
   * One frame, in decode order: its capture time, whether it is a keyframe, and how far behind the
   * decoder is (capture age of the oldest frame it holds; 0 when it holds none or has not yet
   * put out its first frame: a decoder's start is not a backlog).
   */
  decide(now: number, captureTs: number, key: boolean, decoderLagMs: number): ShedDecision {
    const budget = this.s.budgetMs;
    if (!this.shedding) {
      const age = now - captureTs;
      if (decoderLagMs <= budget) {
        if (age <= budget) return FEED;
        if (age <= budget * this.s.shedAfterBudgets) return LATE;
      }
      this.shedding = true;
      this.since = now;
      this.episodes++;
      return SHED;
    }
    if (!key) return SHED;
    const shedFor = now - this.since;
    const limit = shedFor >= this.s.relaxAfterMs ? budget : budget * this.s.freshFraction;
    if ((now - captureTs <= limit && decoderLagMs <= limit) || shedFor >= this.s.giveUpAfterMs) {
      this.shedding = false;
      return FEED;
    }
    return SHED;
  }
}
