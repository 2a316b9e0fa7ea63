/**
 * The open_nsfw variants' image sets (scripts/models/images.py: scikit-image photographs, its
 * small face set, H.264 frames of ffmpeg patterns), made by the Triton venv's Python, which
 * `stack up` installs with scikit-image. Each image is 224×224×3 RGB UINT8.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from './stack.js';

export const IMAGE_BYTES = 224 * 224 * 3;

export interface ImageSet {
  names: string[];
  /** names.length × 224 × 224 × 3 bytes. */
  pixels: Buffer;
}

export function venvPython(): string {
  const cache = process.env.FRAMEWIRE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'framewire');
  return path.join(cache, 'venv', 'bin', 'python');
}

export function modelImages(set: 'calibration' | 'evaluation' | 'fixed'): ImageSet {
  const dir = mkdtempSync(path.join(tmpdir(), 'fw-images-'));
  try {
    const out = path.join(dir, `${set}.rgb`);
    execFileSync(venvPython(), [path.join(ROOT, 'scripts/models/images.py'), set, out], { stdio: ['ignore', 'ignore', 'pipe'] });
    const names = readFileSync(`${out}.txt`, 'utf8').split('\n').filter(Boolean);
    const pixels = readFileSync(out);
    if (pixels.length !== names.length * IMAGE_BYTES) throw new Error(`${set}: ${pixels.length} bytes for ${names.length} images`);
    return { names, pixels };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
