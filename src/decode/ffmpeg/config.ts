/** The ffmpeg decoder backend's own fields (decode/ffmpeg/decoder.ts), beside the stage's (decode/config.ts). */
import { z } from 'zod/v4';

export const ffmpegDecodeFields = {
  ffmpegPath: z.string().optional().describe('ffmpeg binary; default: ffmpeg on PATH.'),
  inputBufferBytes: z
    .int()
    .min(64 * 1024)
    .default(1 << 20)
    .describe("Bytes of a decoder's stdin buffered before its stream waits (replay mode backpressure: the partition pauses)."),
  spareDecoders: z
    .int()
    .min(0)
    .default(2)
    .describe("ffmpeg decoders kept started per codec and input size, so a new session's first frame does not wait for ffmpeg to start (~120 ms; several sessions starting at once wait longer). Each idle one is a process blocked on its stdin."),
  maxCpuPercent: z
    .number()
    .min(0)
    .default(95)
    .describe('CPU-time watchdog: a decoder using more than this share of one core over `cpuWindowMs` is killed as a crash (a stream crafted to make ffmpeg spin); 0 turns it off.'),
  cpuWindowMs: z.int().min(1000).default(10_000).describe('Window of the CPU-time watchdog, ms.'),
  memoryLimitMb: z.int().min(0).default(1024).describe("Address-space limit of each decoder process (RLIMIT_AS via prlimit), MiB; 0 = none. An idle decoder maps ~270 MiB."),
};
