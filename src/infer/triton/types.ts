/** Shapes of the protocol messages we use, as @grpc/proto-loader decodes them (keepCase, longs as Number). */

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface ModelInput {
  name: string;
  data_type: string;
  format: string;
  dims: number[];
}

export interface ModelOutput {
  name: string;
  data_type: string;
  dims: number[];
  label_filename: string;
}

export interface ModelConfig {
  name: string;
  platform: string;
  backend: string;
  max_batch_size: number;
  input: ModelInput[];
  output: ModelOutput[];
  dynamic_batching?: { preferred_batch_size: number[]; max_queue_delay_microseconds: number } | null;
}

export interface StatisticDuration {
  count: number;
  ns: number;
}

export interface ModelStatistics {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: {
    success: StatisticDuration;
    fail: StatisticDuration;
    queue: StatisticDuration;
    compute_input: StatisticDuration;
    compute_infer: StatisticDuration;
    compute_output: StatisticDuration;
  };
  batch_stats: { batch_size: number; compute_input: StatisticDuration; compute_infer: StatisticDuration; compute_output: StatisticDuration }[];
}

export interface RepositoryModel {
  name: string;
  version: string;
  state: string;
  reason: string;
}

export interface InferParameter {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
}

/** A requested input: in the message (raw_input_contents) or, with shared_memory_* parameters, in a registered region. */
export interface InferInput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: Record<string, InferParameter>;
}

export interface InferRequestedOutput {
  name: string;
  parameters?: Record<string, InferParameter>;
}

export interface InferRequest {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, InferParameter>;
  inputs: InferInput[];
  outputs?: InferRequestedOutput[];
  /** One per input not in shared memory, in input order. */
  raw_input_contents: Buffer[];
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: { name: string; datatype: string; shape: number[]; parameters?: Record<string, InferParameter> }[];
  /** One per output not written to shared memory (empty for those that were). */
  raw_output_contents: Buffer[];
}

/** One frame of ModelStreamInfer's response stream: a response, or an error for one request. */
export interface StreamInferResponse {
  error_message: string;
  infer_response: InferResponse | null;
}

export interface SharedMemoryRegion {
  name: string;
  /** The shm_open key, e.g. "/framewire-123-ab12-in" (file /dev/shm/framewire-123-ab12-in on Linux). */
  key: string;
  offset: number;
  byte_size: number;
}
