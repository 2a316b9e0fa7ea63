import { z } from 'zod/v4';

export const ffmpegDecodeSchema = z
  .strictObject({
    ffmpegPath: z.string().optional().describe('ffmpeg binary; default: ffmpeg on PATH.'),
    idleTimeoutMs: z.int().min(100).default(10_000).describe("Close a stream's decoder after this long without chunks, ms."),
  })
  .describe('One ffmpeg child per active stream session, emitting RGB frames at the model input size.');

export type FfmpegDecodeConfig = z.infer<typeof ffmpegDecodeSchema>;
