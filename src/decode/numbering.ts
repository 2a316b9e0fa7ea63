/**
 * Frame numbering from the demuxer: a session's frames are numbered in the order they appear in
 * its byte stream, from 0. After a restart the session is demuxed again from a resume point: the
 * frame with the point's pts (the first frame found, when it has none) gets the point's index,
 * frames before it in that chunk are not numbered again, and frames below `next` were finished.
 */
import type { ResumePoint } from '../core/ack.js';

/** pts equality (s): 90 kHz ticks are 11 µs apart. */
const PTS_EPS = 1e-4;

export class FrameNumbering {
  private nextIndex: number;
  private matchPts: number | null;
  /** Frames below this index were finished before the restart: decoded (for references) but not emitted. */
  readonly doneBelow: number;

  constructor(resume?: Pick<ResumePoint, 'index' | 'pts' | 'next'>) {
    this.nextIndex = resume?.index ?? 0;
    this.matchPts = resume?.pts ?? null;
    this.doneBelow = resume?.next ?? 0;
  }

  /** The next frame's index, or -1 for a frame that precedes the resume point (not numbered again). */
  assign(pts: number): number {
    if (this.matchPts !== null) {
      if (pts < this.matchPts - PTS_EPS) return -1;
      this.matchPts = null;
    }
    return this.nextIndex++;
  }

  /** The index the next frame found will get. */
  get next(): number {
    return this.nextIndex;
  }
}
