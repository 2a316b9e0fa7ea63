/**
 * The typed contracts where stages meet: a decoded Frame, what completes it, and the label record.
 * Stages never reach into each other's internals; they exchange these.
 */

/** Why a decoded frame has no label record (docs/contracts.md, `dropped` events). */
export type DropReason = 'deadline' | 'overload' | 'sampled' | 'unchanged' | 'decoder-reset' | 'undecodable' | 'infer-failed' | 'publish-failed' | 'shutdown';

/**
 * Whoever produced a frame and must learn when it is finished (its label published, or its drop
 * reported), so the source can move its commit point. One object per stream session, never one
 * closure per frame.
 */
export interface FrameOwner {
  framePublished(index: number): void;
  /** Frames fromIndex..toIndex (inclusive) were reported dropped (the event is published). */
  framesDropped(fromIndex: number, toIndex: number, reason: DropReason): void;
  /** The input partition the session's chunks are read from (Kafka); undefined for other inputs. */
  readonly chunkPartition?: number;
  /** The input offset of the chunk frame `index`'s access unit began in; known while the frame is unfinished. */
  chunkOffset?(index: number): number | undefined;
  /**
   * The keyframe decoding frame `index` starts from (the last one at or before it in
   * presentation order): its index, and the input offset of the chunk it began in. Known while
   * the frame is unfinished.
   */
  keyFrame?(index: number): number | undefined;
  keyOffset?(index: number): number | undefined;
}

export interface Frame {
  readonly stream: string;
  readonly session: string;
  /** 0-based index of the decoded frame within its session. */
  readonly index: number;
  /** Presentation time relative to the session's first frame, ms. */
  readonly ptsMs: number;
  /** Unix ms at which the frame was captured: fw-epoch-ms + ptsMs. */
  readonly captureTs: number;
  /** Unix ms by which the label should be published (captureTs + latency budget). */
  readonly deadlineTs: number;
  /** The frame was a keyframe in the encoded stream. */
  readonly keyframe: boolean;
  /** Its stream's priority class: 0 critical, 1 normal (also when absent), 2 background (batch/degrade.ts). */
  readonly rank?: number;
  /** Model-input pixels: height × width × 3, RGB, UINT8. Owned by the frame pool. */
  data: Buffer;
  readonly traceparent: string | undefined;
  /** performance.now() when the decoder emitted the frame. */
  readonly decodedAt: number;
  /** performance.now() when its access unit was fed to the decoder. */
  readonly fedAt?: number;
  readonly owner: FrameOwner;
  /** Lineage: the chunk (partition, offset in the chunk topic) the frame's access unit began in. */
  readonly partition?: number;
  readonly offset?: number;
  /** Lineage: the keyframe its decoding starts from, and the chunk that keyframe began in (FrameOwner.keyFrame). */
  readonly keyFrame?: number;
  readonly keyOffset?: number;
  /**
   * Set when this item is a clip (a window of frames for a clip model): `data` holds the window's
   * frames in time order, `index`/`captureTs`/`deadlineTs` are those of its last frame, and the
   * clip's labels go to every frame in `covered` (the window's frames no earlier clip labelled).
   */
  readonly clip?: ClipCover;
}

/** A frame a clip's labels are published for. */
export interface CoveredFrame {
  readonly index: number;
  readonly ptsMs: number;
  readonly captureTs: number;
  readonly traceparent: string | undefined;
  /** The chunk the frame began in (Frame.offset; the partition is the clip's). */
  readonly offset?: number;
  readonly keyFrame?: number;
  readonly keyOffset?: number;
}

export interface ClipCover {
  /** Index of the window's first frame (the last is the item's `index`). */
  readonly fromFrame: number;
  readonly covered: readonly CoveredFrame[];
}

export interface Label {
  label: string;
  score: number;
}

/** The record published to `video.labels` and, with type "label", on the WebSocket. */
export interface LabelRecord {
  /** Every record framewire publishes names its kind, so one serialisation serves every sink. */
  type: 'label';
  stream: string;
  session: string;
  frame: number;
  ptsMs: number;
  captureTs: number;
  model: string;
  /** The model version Triton ran this frame's batch on (its ModelInfer response's `model_version`). */
  modelVersion: string;
  labels: Label[];
  publishedTs: number;
  /** Lineage (new in 0.4): the chunk-topic partition and offset of the chunk this frame's access unit began in. */
  partition?: number;
  offset?: number;
  /**
   * Lineage: the keyframe decoding this frame starts from (its index in the session) and the
   * offset of the chunk it began in: demuxing the session's chunks from `keyOffset` decodes the
   * frame again (a clip of it: `framewire clip`).
   */
  keyFrame?: number;
  keyOffset?: number;
  /** Content hash of the running topology (config/hash.ts). */
  topologyHash?: string;
  /** Items in the Triton request that labelled this frame. */
  batchSize?: number;
  /** ms from the frame's decoding to its batch being taken for Triton (waiting in the batcher). */
  queueMs?: number;
  /** ms of the Triton request that answered (sent to answered, as the client saw it). */
  inferMs?: number;
  /** Clip models: the window (first and last frame index) these labels were computed from. */
  clip?: { fromFrame: number; toFrame: number };
}

/** `dropped` event (docs/contracts.md): frames fromFrame..toFrame of a session were not labelled. */
export interface DroppedEvent {
  type: 'dropped';
  stream: string;
  session: string;
  fromFrame: number;
  toFrame: number;
  reason: DropReason;
  count: number;
  /** New in 0.4: `sampled` because the stream was degraded under load (a `degraded` event said so), not by its sampling rule. */
  degraded?: true;
  /** Lineage (new in 0.4): partition, and offsets of the chunks `fromFrame` and `toFrame` began in. */
  partition?: number;
  offset?: number;
  toOffset?: number;
  topologyHash?: string;
}
