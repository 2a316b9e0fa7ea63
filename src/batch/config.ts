import { z } from 'zod/v4';

export const batchSchema = z
  .strictObject({
    maxBatchSize: z.int().min(1).optional().describe("Upper bound on frames per inference request; default and ceiling: the model's max_batch_size."),
    maxWaitMs: z.number().min(0).default(15).describe('Longest a frame waits for more frames to fill a batch, ms.'),
    queueFrames: z.int().min(1).default(256).describe('Frames that may wait for batching per model; when full, decoders stop and Kafka fetching pauses.'),
    maxInflight: z.int().min(1).default(2).describe('Inference requests in flight per model.'),
  })
  .describe('Gathers frames from all streams into batches for one model.');

export type BatchConfig = z.infer<typeof batchSchema>;
