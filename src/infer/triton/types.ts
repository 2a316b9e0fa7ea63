/**
 * Names for the protocol messages we use, as @grpc/proto-loader decodes them (keepCase, longs as
 * Number, enums as String, defaults, oneofs). The shapes are generated from proto/ into ./proto/
 * by scripts/gen-proto.sh (never edited by hand; test/unit/proto.test.ts fails on drift):
 * requests we build use the generated input types, responses we read the `__Output` types.
 */
import type { ModelInferRequest, _inference_ModelInferRequest_InferInputTensor, _inference_ModelInferRequest_InferRequestedOutputTensor } from './proto/inference/ModelInferRequest.js';
import type { ModelInferResponse__Output } from './proto/inference/ModelInferResponse.js';
import type { ModelStreamInferResponse__Output } from './proto/inference/ModelStreamInferResponse.js';
import type { InferParameter as InferParameterIn } from './proto/inference/InferParameter.js';
import type { ServerMetadataResponse__Output } from './proto/inference/ServerMetadataResponse.js';
import type { ModelMetadataResponse__Output, _inference_ModelMetadataResponse_TensorMetadata__Output } from './proto/inference/ModelMetadataResponse.js';
import type { ModelConfig__Output } from './proto/inference/ModelConfig.js';
import type { ModelInput__Output } from './proto/inference/ModelInput.js';
import type { ModelOutput__Output } from './proto/inference/ModelOutput.js';
import type { ModelStatistics__Output } from './proto/inference/ModelStatistics.js';
import type { StatisticDuration__Output } from './proto/inference/StatisticDuration.js';
import type { _inference_RepositoryIndexResponse_ModelIndex__Output } from './proto/inference/RepositoryIndexResponse.js';
import type { _inference_SystemSharedMemoryStatusResponse_RegionStatus__Output } from './proto/inference/SystemSharedMemoryStatusResponse.js';

export type TensorMetadata = _inference_ModelMetadataResponse_TensorMetadata__Output;
export type ServerMetadata = ServerMetadataResponse__Output;
export type ModelMetadata = ModelMetadataResponse__Output;
export type ModelInput = ModelInput__Output;
export type ModelOutput = ModelOutput__Output;
export type ModelConfig = ModelConfig__Output;
export type StatisticDuration = StatisticDuration__Output;
export type ModelStatistics = ModelStatistics__Output;
export type RepositoryModel = _inference_RepositoryIndexResponse_ModelIndex__Output;
export type InferParameter = InferParameterIn;
/** A requested input: in the message (raw_input_contents) or, with shared_memory_* parameters, in a registered region. */
export type InferInput = _inference_ModelInferRequest_InferInputTensor;
export type InferRequestedOutput = _inference_ModelInferRequest_InferRequestedOutputTensor;
/** raw_input_contents: one per input not in shared memory, in input order. */
export type InferRequest = ModelInferRequest & { model_name: string; inputs: InferInput[]; raw_input_contents: Buffer[] };
/** raw_output_contents: one per output not written to shared memory (empty for those that were). */
export type InferResponse = ModelInferResponse__Output;
/** One frame of ModelStreamInfer's response stream: a response, or an error for one request. */
export type StreamInferResponse = ModelStreamInferResponse__Output;
/** The shm_open key, e.g. "/framewire-123-ab12-in" (file /dev/shm/framewire-123-ab12-in on Linux). */
export type SharedMemoryRegion = _inference_SystemSharedMemoryStatusResponse_RegionStatus__Output;
