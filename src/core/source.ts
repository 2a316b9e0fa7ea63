/**
 * The input contract: a running source, what it hands chunks to (the decode stage), and the
 * capabilities a source may declare (optional members of Source, asked for by member, never by
 * a source's type).
 */
import type { EncodedChunk, InputAck } from './ack.js';

/** What the source hands validated chunks to (the decode stage). */
export interface ChunkHandler {
  /** Returns a promise only when the partition must wait before its next record. */
  handle(chunk: EncodedChunk, input: InputAck): void | Promise<void>;
  /** The input was given up (its partition moved to another member): stop its sessions, report nothing. */
  release(input: InputAck): void;
}

/**
 * A running source: it hands validated chunks to the decode stage (a ChunkHandler) and owns how
 * their acknowledgements become commits. Two-phase stop: `stopIntake` stops taking new input and
 * waits for what is in hand; `close` commits and leaves.
 */
export interface Source {
  readonly name: string;
  /** Joined and taking input (for /readyz). */
  readonly isConsuming: boolean;
  start(): Promise<void>;
  stopIntake(): Promise<void>;
  close(): Promise<void>;
  /** Can say how far behind its input it is (the dashboard's `pipeline` message shows it). */
  readonly consumerLag?: ConsumerLag;
}

export interface ConsumerLag {
  /** Input not yet committed, summed over partitions; rejects when it cannot be read this time. */
  lag(): Promise<number>;
}
