/**
 * The acknowledgement seam between a source and the decode stage. The decode stage tells the
 * source, per stream session, what became of each chunk's bytes: which frames it found in them
 * (numbered, with the chunk their data started in), and later, through FrameOwner, when each
 * frame is finished (label published, or drop reported). From that alone the source decides how
 * far it may commit and where a session resumes after a restart. The decode stage knows nothing
 * of Kafka offsets beyond carrying them; the source knows nothing of decoders.
 */
import type { FrameOwner } from './frame.js';

/** The largest chunk value the contract allows (docs/contracts.md); a larger one is dead-lettered. */
export const MAX_CHUNK_BYTES = 1 << 20;
/**
 * `max.message.bytes` of a chunk topic framewire creates: a full chunk plus its headers exceeds
 * Kafka's 1 MiB default.
 */
export const CHUNK_TOPIC_MAX_MESSAGE_BYTES = 2 * MAX_CHUNK_BYTES;

/** One record of a session's encoded byte stream, as the decode stage needs it. */
export interface EncodedChunk {
  readonly stream: string;
  readonly session: string;
  /** Position of the chunk in its session (fw-seq), from 0. */
  readonly seq: number;
  /** Where the source can find the chunk again (a Kafka offset), carried back in acknowledgements. */
  readonly offset: string;
  /** Unix ms at which the session's first frame was captured. */
  readonly epochMs: number;
  readonly traceparent: string | undefined;
  /** The last chunk of its session (fw-eos). */
  readonly eos: boolean;
  readonly value: Buffer;
}

/** Why a record cannot be used: an error code (src/core/errors.ts), carried on the dead-letter record. */
import type { DeadLetterCode } from './errors.js';
export type { DeadLetterCode };

/**
 * Where a session resumes after a restart: demuxing starts again at chunk `seq` (earlier chunks
 * of the session are skipped); the frame starting there with pts `pts` (the first frame starting
 * in the chunk when null) gets index `index`; frames below `next` were all finished before.
 */
export interface ResumePoint {
  stream: string;
  session: string;
  seq: number;
  index: number;
  pts: number | null;
  next: number;
  /** pts (s) of the session's frame 0: frame times (ptsMs) are relative to it. */
  basePts: number;
  /** The session had ended (idle) with every frame finished: nothing pins its offset. */
  ended?: true;
}

/** How a session's decoding ended. */
export type SessionEnd = 'eos' | 'idle' | 'replaced';

/** One stream session's side of the seam (the source implements it). */
export interface SessionAck extends FrameOwner {
  /** The chunk's bytes went into the session's demuxer. */
  chunkFed(seq: number, offset: string): void;
  /** A frame was found in the byte stream and numbered; it stays unfinished until published or dropped. */
  frameFound(index: number, pts: number, key: boolean, seq: number, offset: string): void;
  /** No more chunks are expected: once its frames finish, the session stops holding the partition back. */
  ended(how: SessionEnd): void;
}

/** A partition's (or any ordered input's) side of the seam. */
export interface InputAck {
  /** Where a session seen before goes on (this run, or the last commit); undefined for a new one. */
  resumeOf(stream: string, session: string): ResumePoint | undefined;
  /** A session starts being decoded from this input (from its beginning, or from a resume point). */
  openSession(stream: string, session: string, resume: ResumePoint | undefined): SessionAck;
  /** The chunk cannot be used: it is dead-lettered with the reason, and counts as handled. */
  reject(chunk: EncodedChunk, code: DeadLetterCode, detail: string): Promise<void>;
}
