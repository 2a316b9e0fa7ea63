import { z } from 'zod/v4';

export const ffmpegDecodeSchema = z
  .strictObject({
    ffmpegPath: z.string().optional().describe('ffmpeg binary; default: ffmpeg on PATH.'),
    idleTimeoutMs: z.int().min(100).default(10_000).describe("Close a stream's decoder after this long without chunks, ms."),
    shedLoad: z
      .boolean()
      .default(true)
      .describe(
        "Live mode: when a stream's decoded frames come out later than its latency budget (3 in a row), stop its decoder, skip its chunks without decoding until one starts a keyframe captured within half the budget, and decode again from there; the skipped frames are dropped as `overload`. Keeps a backlog from building up in front of a decoder that cannot keep up. Ignored in replay mode.",
      ),
  })
  .describe('One ffmpeg child per active stream session, emitting RGB frames at the model input size.');

export type FfmpegDecodeConfig = z.infer<typeof ffmpegDecodeSchema>;
