/**
 * One error type for the whole pipeline. Retry logic reads `retriable`; nothing parses messages.
 * Codes are listed in ERROR_CODES so the docs (docs/errors.md) can be checked against them.
 */
export const ERROR_CODES = {
  // topology / config
  TOPOLOGY_INVALID: 'the topology file failed validation',
  TOPOLOGY_UNREADABLE: 'the topology file could not be read or parsed',
  HTTP_LISTEN_FAILED: 'the HTTP listener (http.listen) could not be bound, e.g. the port is taken',
  SECRET_UNREADABLE: 'a secret or TLS file the configuration names (env variable, token, password, certificate, key) is missing or unreadable',
  // transport security
  KAFKA_AUTH_FAILED: 'the broker refused our SASL credentials (wrong user, password or mechanism)',
  KAFKA_TLS_FAILED: 'the TLS connection to a broker failed (untrusted certificate, wrong host name, not a TLS listener)',
  // start-up
  STARTUP_TIMEOUT: 'a dependency (Kafka, Triton) was not reachable within startupTimeoutMs',
  // sources
  CHUNK_HEADER_MISSING: 'a chunk lacks a required fw-* header',
  CHUNK_HEADER_INVALID: 'a chunk header has a value that cannot be used',
  CHUNK_FORMAT_UNKNOWN: 'fw-format names a container the decoder does not support',
  CHUNK_OUT_OF_SEQUENCE: 'fw-seq is not the next chunk of its session',
  CHUNK_TOO_LARGE: 'a chunk is larger than 1 MiB',
  // decode
  DECODER_REJECTED: 'the decoder rejected the bytes of a chunk',
  DECODER_FAILED: 'an ffmpeg decoder exited while it was fed; the stream restarts at its next keyframe',
  DECODER_SPAWN_FAILED: 'ffmpeg could not be started',
  DECODER_STALLED: 'a decoder was fed but put out nothing for decode.stallMs; it was killed and restarted',
  DECODER_LIMIT_EXCEEDED: 'a decoder went past its CPU-time limit (decode.maxCpuPercent); it was killed and restarted',
  STREAM_QUARANTINED: 'a stream crashed its decoder too often; its chunks are dead-lettered for decode.quarantineMs',
  // infer
  INFER_UNAVAILABLE: 'Triton is not reachable',
  INFER_DEADLINE_EXCEEDED: 'a Triton call passed its deadline',
  INFER_INVALID_ARGUMENT: 'Triton rejected the request as invalid',
  INFER_MODEL_NOT_READY: 'the model is not loaded or not ready',
  INFER_RESOURCE_EXHAUSTED: 'Triton is out of a resource (queue full, memory)',
  INFER_FAILED: 'Triton returned another error',
  INFER_SHM_FAILED: 'a system shared-memory region could not be created or registered with Triton',
  MODEL_UNSUPPORTED: 'the model metadata does not fit what the pipeline can feed',
  // sinks
  SINK_PUBLISH_FAILED: 'publishing to a sink failed',
  // alert snapshots
  SNAPSHOT_FAILED: "an alert's snapshot could not be made (its chunks are gone from the chunk topic, or ffmpeg could not decode its frame); the alert went out without it",
  // ingest
  INGEST_SOURCE_FAILED: 'the ingest source could not be opened or read',
  INGEST_BROKER_GONE: 'ingest gave up: the broker was unreachable for longer than --give-up-after',
  INGEST_ARGUMENT_INVALID: 'an ingest option is missing or has a value that cannot be used (exit code 2)',
  // dashboard
  DASHBOARD_FILES_MISSING: "the dashboard's page (src/dashboard/public/index.html) is not in the installation",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The codes a chunk is dead-lettered with, and the short reason the dead-letter record carries in
 * `fw-dlq-reason` beside the code in `fw-dlq-code` (docs/contracts.md, "Dead letters").
 */
export const DEAD_LETTER_REASONS = {
  CHUNK_HEADER_MISSING: 'missing-header',
  CHUNK_HEADER_INVALID: 'invalid-header',
  CHUNK_FORMAT_UNKNOWN: 'unknown-format',
  CHUNK_OUT_OF_SEQUENCE: 'out-of-sequence',
  CHUNK_TOO_LARGE: 'too-large',
  DECODER_REJECTED: 'decoder-rejected',
  STREAM_QUARANTINED: 'quarantined',
} as const satisfies Partial<Record<ErrorCode, string>>;

export type DeadLetterCode = keyof typeof DEAD_LETTER_REASONS;
export type Stage = 'config' | 'source' | 'decode' | 'batch' | 'infer' | 'postprocess' | 'sink' | 'ingest' | 'stack';

export class FramewireError extends Error {
  readonly code: ErrorCode;
  readonly stage: Stage;
  readonly retriable: boolean;

  constructor(code: ErrorCode, stage: Stage, message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'FramewireError';
    this.code = code;
    this.stage = stage;
    this.retriable = opts.retriable ?? false;
  }
}

export function isRetriable(err: unknown): boolean {
  return err instanceof FramewireError && err.retriable;
}
