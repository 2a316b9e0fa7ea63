import { z } from 'zod/v4';
import { tlsSchema } from '../../config/tls.js';

export const tritonSchema = z
  .strictObject({
    url: z.string().min(1).default('127.0.0.1:8001').describe("host:port of Triton's gRPC endpoint (one endpoint; see `endpoints` for several)."),
    endpoints: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Several Triton gRPC endpoints (host:port) serving the same models; when set, replaces `url`. Each request goes to the ready endpoint with the fewest outstanding requests.'),
    timeoutMs: z.int().min(1).default(2000).describe('gRPC deadline of one inference request, ms.'),
    retries: z.int().min(0).default(2).describe('Retries of a retriable inference failure (unavailable, deadline, exhausted) with backoff and jitter.'),
    transport: z
      .enum(['auto', 'grpc', 'shm'])
      .default('auto')
      .describe("How input tensors reach Triton: `grpc` in the message, `shm` through system shared memory (/dev/shm, Triton on the same host; fails if it cannot register), `auto` shared memory where registration succeeds, else in the message. Classification outputs always come back in the message."),
    deadlineTimeout: z
      .boolean()
      .default(true)
      .describe("Send Triton a per-request `timeout` (µs): the time left until the batch's earliest frame deadline (at least 1 ms), so Triton's queue rejects requests that can no longer be on time. Live mode only: replay has no deadlines."),
    priority: z
      .int()
      .min(0)
      .default(0)
      .describe("Triton request `priority` (1 = highest); 0 leaves the model's default. Only effective for models whose dynamic_batching sets priority_levels."),
    healthIntervalMs: z.int().min(50).default(1000).describe('How often each endpoint is health-checked (ServerReady + ModelReady of every model), ms.'),
    statsIntervalMs: z.int().min(0).default(10_000).describe("How often Triton's model statistics are polled into per-interval metrics, ms; 0 turns polling off."),
    tls: tlsSchema.optional().describe("TLS to every endpoint (Triton started with --grpc-use-ssl; add cert and key for --grpc-use-ssl-mutual); `{}` for the system CAs. Default: plaintext."),
  })
  .describe('NVIDIA Triton Inference Server over gRPC.');

export type TritonConfig = z.infer<typeof tritonSchema>;

/** The endpoints a configuration names: `endpoints`, else the single `url`. */
export function tritonEndpoints(c: TritonConfig): string[] {
  return c.endpoints ?? [c.url];
}
