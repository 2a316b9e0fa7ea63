import { z } from 'zod/v4';

export const batchSchema = z
  .strictObject({
    maxBatchSize: z.int().min(1).optional().describe("Upper bound on frames per inference request; default and ceiling: the model's max_batch_size."),
    maxWaitMs: z.number().min(0).default(15).describe('Longest a frame waits for more frames to fill a batch, ms; in live mode the earliest deadline may cut the wait shorter.'),
    mode: z
      .enum(['live', 'replay'])
      .default('live')
      .describe('live: frames that cannot meet their deadline are dropped (`deadline`) and full queues drop their oldest frame (`overload`); replay: nothing is dropped, full queues pause the Kafka partitions.'),
    streamQueueFrames: z.int().min(1).default(32).describe('Frames one stream may have waiting for inference per model.'),
    queueFrames: z.int().min(1).default(256).describe('Frames all streams together may have waiting per model.'),
    marginMs: z.number().min(0).default(15).describe('Time kept in reserve for publishing after inference when judging whether a frame can still meet its deadline, ms.'),
    maxInflight: z.int().min(1).default(2).describe('Inference requests in flight per model.'),
    publishBacklogBatches: z
      .int()
      .min(0)
      .default(4)
      .describe('Answered batches that may wait for their labels to be published before no new request is sent: a slow sink holds up inference after this many instead of letting answers pile up.'),
    estimatorHorizonMs: z
      .int()
      .min(100)
      .default(5000)
      .describe("How far back the batch-cost estimate looks, ms: long enough for a steady fit, short enough that a slow spell (another process on the cores) is forgotten within seconds."),
    fairShares: z
      .boolean()
      .default(true)
      .describe(
        'Live: when not every waiting frame can make its deadline, frames that could not wait for the next batch go first, then the stream served least so far, so the streams share what can be labelled. false: earliest deadline first only (at most an equal share of each batch per stream).',
      ),
  })
  .describe('Deadline-aware batching: frames from all streams, earliest deadline first, into batches for one model.');

export type BatchConfig = z.infer<typeof batchSchema>;
