import { z } from 'zod/v4';

export const tritonSchema = z
  .strictObject({
    url: z.string().min(1).default('127.0.0.1:8001').describe("host:port of Triton's gRPC endpoint."),
    timeoutMs: z.int().min(1).default(2000).describe('gRPC deadline of one inference request, ms.'),
    retries: z.int().min(0).default(2).describe('Retries of a retriable inference failure (unavailable, deadline, exhausted) with backoff and jitter.'),
  })
  .describe('NVIDIA Triton Inference Server over gRPC.');

export type TritonConfig = z.infer<typeof tritonSchema>;
