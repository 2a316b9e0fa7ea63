/**
 * The decoder backends, by the name `decode.backend` gives. A new backend implements
 * DecoderBackend and Decoder (decode/backend.ts), adds its fields to the `decode:` schema
 * (decode/config.ts) and registers its factory here.
 */
import type { DecoderBackend } from './backend.js';
import type { DecodeConfig } from './config.js';
import { DecoderSpares } from './ffmpeg/decoder.js';

export const DECODER_BACKENDS: Record<DecodeConfig['backend'], (c: DecodeConfig) => DecoderBackend> = {
  ffmpeg: (c) =>
    new DecoderSpares(
      { ffmpegPath: c.ffmpegPath, inputBufferBytes: c.inputBufferBytes, limits: { maxPixels: c.maxWidth * c.maxHeight, memoryBytes: c.memoryLimitMb * 1024 * 1024 } },
      c.spareDecoders,
    ),
};
