/**
 * Where a stage reports frames it will not label. The stage only says which frames and why; the
 * reporter (topology/drops.ts) publishes the `dropped` events and then finishes the frames.
 */
import type { DropReason, FrameOwner } from './frame.js';

export interface DropReporter {
  /**
   * Frames from..to (inclusive) of a session were dropped for `reason`; `degraded`: `sampled`
   * because the stream's rate was lowered under load (batch/degrade.ts), not by its rule.
   */
  drop(owner: FrameOwner, stream: string, session: string, from: number, to: number, reason: DropReason, degraded?: boolean): void;
}
