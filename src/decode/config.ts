/**
 * The decode stage's own settings, whatever the backend: session ends, load shedding, the stall
 * watchdog, picture limits and quarantine. A backend's own fields (decode/ffmpeg/config.ts for
 * ffmpeg) sit beside them in the topology's `decode:` section.
 */
import { z } from 'zod/v4';
import { ffmpegDecodeFields } from './ffmpeg/config.js';

export const DECODER_BACKEND_NAMES = ['ffmpeg'] as const;

export const decodeStageFields = {
  backend: z.enum(DECODER_BACKEND_NAMES).default('ffmpeg').describe('Decoder backend: `ffmpeg` (one child process per stream session; its fields below). Others implement src/decode/backend.ts.'),
  idleTimeoutMs: z
    .int()
    .min(100)
    .default(10_000)
    .describe("End a stream session after this long without chunks, ms (a session that ends with `fw-eos` ends at once)."),
  stallMs: z
    .int()
    .min(100)
    .default(5000)
    .describe('A decoder fed frames that puts nothing out for this long (hung, stopped, wedged on bad bytes) is killed and restarted at the next keyframe; its frames are `decoder-reset`, ms.'),
  maxWidth: z.int().min(16).default(3840).describe('Largest picture width accepted; with `maxHeight` it caps the pixels per picture ffmpeg will decode (a larger one is rejected by the decoder).'),
  maxHeight: z.int().min(16).default(2160).describe('Largest picture height accepted (see `maxWidth`).'),
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
  quarantineCrashes: z.int().min(1).default(3).describe('A stream whose decoder crashes (or is killed by the watchdog) this many times within `quarantineWindowMs` is quarantined.'),
  quarantineWindowMs: z.int().min(1000).default(60_000).describe('Window in which decoder crashes are counted for quarantine, ms.'),
  quarantineMs: z.int().min(1000).default(60_000).describe("How long a quarantined stream's chunks are dead-lettered (reason `quarantined`) instead of decoded, ms."),
};

/**
 * The topology's `decode:` section: the stage's fields and every backend's, flat (a backend's
 * fields are ignored unless it is the one chosen).
 */
export const decodeSchema = z
  .strictObject({ ...decodeStageFields, ...ffmpegDecodeFields })
  .describe('Our MPEG-TS demuxer numbers each frame; a decoder backend (`ffmpeg`: one child per active stream session, fed whole frames) turns them into RGB at the model input size.');

export type DecodeConfig = z.infer<typeof decodeSchema>;
