import { z } from 'zod/v4';

export const ffmpegDecodeSchema = z
  .strictObject({
    ffmpegPath: z.string().optional().describe('ffmpeg binary; default: ffmpeg on PATH.'),
    idleTimeoutMs: z.int().min(100).default(10_000).describe("Close a stream's decoder after this long without chunks, ms."),
    shedLoad: z
      .boolean()
      .default(true)
      .describe(
        "Live mode: when a stream's chunks arrive more than two budgets after capture (a backlog in Kafka), or every frame has left its decoder later than its budget for a second after a 2 s warm-up (the machine cannot keep up), stop its decoder, skip its chunks without decoding until one starts a keyframe captured within half the budget (after 2 s of skipping: within the budget; after 5 s: any chunk), and decode again from there; the skipped frames are dropped as `overload`. Ignored in replay mode.",
      ),
  })
  .describe('One ffmpeg child per active stream session, emitting RGB frames at the model input size.');

export type FfmpegDecodeConfig = z.infer<typeof ffmpegDecodeSchema>;
