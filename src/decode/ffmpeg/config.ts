import { z } from 'zod/v4';

export const ffmpegDecodeSchema = z
  .strictObject({
    ffmpegPath: z.string().optional().describe('ffmpeg binary; default: ffmpeg on PATH.'),
    idleTimeoutMs: z
      .int()
      .min(100)
      .default(10_000)
      .describe("End a stream session after this long without chunks, ms (a session that ends with `fw-eos` ends at once)."),
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
    shedLoad: z
      .boolean()
      .default(true)
      .describe(
        "Live mode: a frame that arrives more than `shedAfterBudgets` budgets after capture, or whose stream's decoder is a budget behind, is skipped without decoding (`overload`), and so is every frame after it until a keyframe fresh enough for its GOP to make it (`shedFreshFraction`), unless the stream can catch up by decoding without classifying (`shedCatchUpMs`). Ignored in replay mode.",
      ),
    shedAfterBudgets: z
      .number()
      .min(1)
      .default(2)
      .describe('A frame this many budgets old on arrival starts shedding. One between one budget and this is still decoded (fresher frames after it reference it) and dropped as `deadline`, so a burst after a network hiccup costs no GOP.'),
    shedFreshFraction: z
      .number()
      .gt(0)
      .max(1)
      .default(0.5)
      .describe('While shedding, a keyframe captured within this fraction of the budget ends it (its GOP then has room to meet its deadlines).'),
    shedRelaxAfterMs: z
      .int()
      .min(0)
      .default(2000)
      .describe('Shedding this long, a keyframe within the whole budget will do (streams whose keyframes are never that fresh), ms.'),
    shedCatchUpMs: z
      .int()
      .min(0)
      .default(1000)
      .describe("A stream that falls behind its budget once its decoder's cost is measured (its CPU time per frame) is first decoded without classifying, its frames dropped as `deadline`, if that gets it back within its budget in this long; only otherwise, or when it has not after this long, is it skipped ahead to a keyframe (`overload`). 0: always skip ahead. ms."),
    shedGiveUpAfterMs: z
      .int()
      .min(0)
      .default(5000)
      .describe("Shedding this long, the next keyframe is decoded whatever its age (a camera whose clock is off; its frames are then dropped as `deadline`), ms."),
    stallMs: z
      .int()
      .min(100)
      .default(5000)
      .describe('A decoder fed frames that puts nothing out for this long (hung, stopped, wedged on bad bytes) is killed and restarted at the next keyframe; its frames are `decoder-reset`, ms.'),
    maxCpuPercent: z
      .number()
      .min(0)
      .default(95)
      .describe('CPU-time watchdog: a decoder using more than this share of one core over `cpuWindowMs` is killed as a crash (a stream crafted to make ffmpeg spin); 0 turns it off.'),
    cpuWindowMs: z.int().min(1000).default(10_000).describe('Window of the CPU-time watchdog, ms.'),
    maxWidth: z.int().min(16).default(3840).describe('Largest picture width accepted; with `maxHeight` it caps the pixels per picture ffmpeg will decode (a larger one is rejected by the decoder).'),
    maxHeight: z.int().min(16).default(2160).describe('Largest picture height accepted (see `maxWidth`).'),
    memoryLimitMb: z.int().min(0).default(1024).describe("Address-space limit of each decoder process (RLIMIT_AS via prlimit), MiB; 0 = none. An idle decoder maps ~270 MiB."),
    quarantineCrashes: z.int().min(1).default(3).describe('A stream whose decoder crashes (or is killed by the watchdog) this many times within `quarantineWindowMs` is quarantined.'),
    quarantineWindowMs: z.int().min(1000).default(60_000).describe('Window in which decoder crashes are counted for quarantine, ms.'),
    quarantineMs: z.int().min(1000).default(60_000).describe("How long a quarantined stream's chunks are dead-lettered (reason `quarantined`) instead of decoded, ms."),
  })
  .describe('One ffmpeg child per active stream session, fed whole frames by our MPEG-TS demuxer and emitting RGB frames at the model input size.');

export type FfmpegDecodeConfig = z.infer<typeof ffmpegDecodeSchema>;
