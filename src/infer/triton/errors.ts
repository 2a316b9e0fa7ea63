/** gRPC failures of Triton calls as FramewireErrors; `retriable` says whether a retry can help. */
import * as grpc from '@grpc/grpc-js';
import { FramewireError, type ErrorCode } from '../../core/errors.js';

/** gRPC status → our error code and whether a retry can help. */
const STATUS_MAP: Partial<Record<grpc.status, [ErrorCode, boolean]>> = {
  [grpc.status.UNAVAILABLE]: ['INFER_UNAVAILABLE', true],
  [grpc.status.DEADLINE_EXCEEDED]: ['INFER_DEADLINE_EXCEEDED', true],
  [grpc.status.INVALID_ARGUMENT]: ['INFER_INVALID_ARGUMENT', false],
  [grpc.status.NOT_FOUND]: ['INFER_MODEL_NOT_READY', false],
  [grpc.status.RESOURCE_EXHAUSTED]: ['INFER_RESOURCE_EXHAUSTED', true],
  [grpc.status.CANCELLED]: ['INFER_FAILED', true],
};

export function toInferError(err: grpc.ServiceError | Error, method: string): FramewireError {
  const code = (err as grpc.ServiceError).code;
  const [fwCode, retriable] = (code !== undefined && STATUS_MAP[code as grpc.status]) || ['INFER_FAILED', false];
  return new FramewireError(fwCode, 'infer', `Triton ${method}: ${err.message}`, { retriable, cause: err });
}

/** The gRPC status code behind a Triton call's failure (its cause), if it has one. */
export function grpcStatusOf(err: unknown): grpc.status | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'number') return e.code as grpc.status;
  }
  return undefined;
}
