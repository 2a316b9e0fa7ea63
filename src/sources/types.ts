import type { ChunkHandler } from './kafka/source.js';

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
}

export type { ChunkHandler };
