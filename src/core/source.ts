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
  /** Can read the chunks it consumed back (alert snapshots are decoded again from them). */
  readonly chunkHistory?: ChunkHistory;
}

export interface ConsumerLag {
  /** Input not yet committed, summed over partitions; rejects when it cannot be read this time. */
  lag(): Promise<number>;
}

/** Which chunks of a stream session to read back: a keyframe's chunk through a frame's, in one partition. */
export interface SessionChunksQuery {
  stream: string;
  session: string;
  partition: number;
  /** The first chunk (where a keyframe began) and the last one wanted (more may follow: `tailChunks`). */
  fromOffset: string;
  toOffset: string;
  /** Chunks of the session kept after `toOffset`'s (a frame's access unit may end in the next). */
  tailChunks: number;
  timeoutMs: number;
}

export interface SessionChunks {
  /** The session's chunks, consecutive in `fw-seq`. */
  chunks: { seq: number; offset: string; value: Buffer }[];
}

export interface ChunkHistory {
  /** The chunks, or why they cannot be had (deleted by retention, not consecutive, timed out). */
  readSession(q: SessionChunksQuery): Promise<SessionChunks | string>;
  /** Gets ready for a first read ahead of it (the Kafka source joins its reader's group); never throws. */
  warm?(): void;
}
