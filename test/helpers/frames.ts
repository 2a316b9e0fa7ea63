/** Test frames: solid colours that colour_probe labels with certainty. */
import { packFrame, frameTensorBytes, type ModelSpec } from '../../src/infer/triton/model.js';

export const RGB: Record<string, [number, number, number]> = {
  black: [0, 0, 0],
  white: [255, 255, 255],
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
  cyan: [0, 255, 255],
  magenta: [255, 0, 255],
};

/** UINT8 RGB pixels of one solid frame. */
export function solidPixels(spec: ModelSpec, colour: string): Buffer {
  const [r, g, b] = RGB[colour]!;
  const px = Buffer.alloc(spec.height * spec.width * 3);
  for (let p = 0; p < px.length; p += 3) {
    px[p] = r;
    px[p + 1] = g;
    px[p + 2] = b;
  }
  return px;
}

/** A packed input tensor (the model's datatype) of solid frames, one per colour. */
export function solidFrames(spec: ModelSpec, colours: string[]): Buffer {
  const out = Buffer.alloc(colours.length * frameTensorBytes(spec));
  colours.forEach((c, i) => packFrame(spec, solidPixels(spec, c), out, i));
  return out;
}
