/**
 * Live thumbnails for dashboards: at most one JPEG a second per stream, made only while some
 * WebSocket client asks for thumbnails of that stream (otherwise `offer` costs one comparison).
 * The frame is the model's input (e.g. 224×224 RGB, so squeezed to the model's aspect), box-
 * downscaled by an integer factor to at most 128 px a side, then encoded by our small baseline
 * JPEG encoder (./jpeg.ts, ~1–3 ms for 112×112) on the next turn of the event loop, off the
 * frame's path.
 */
import type { Frame } from '../core/frame.js';
import type { Metrics } from '../telemetry/metrics.js';
import { JpegEncoder } from './jpeg.js';

export interface ThumbTarget {
  wantsThumb(stream: string): boolean;
  sendThumb(stream: string, text: string): void;
}

const MAX_SIDE = 128;
const QUALITY = 70;

/** Box-downscales RGB pixels by an integer factor. */
export function downscaleRgb(src: Buffer, width: number, height: number, factor: number): { data: Buffer; width: number; height: number } {
  const w = Math.floor(width / factor);
  const h = Math.floor(height / factor);
  const out = Buffer.allocUnsafe(w * h * 3);
  const n = factor * factor;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let dy = 0; dy < factor; dy++) {
        let p = ((y * factor + dy) * width + x * factor) * 3;
        for (let dx = 0; dx < factor; dx++, p += 3) {
          r += src[p]!;
          g += src[p + 1]!;
          b += src[p + 2]!;
        }
      }
      const o = (y * w + x) * 3;
      out[o] = r / n;
      out[o + 1] = g / n;
      out[o + 2] = b / n;
    }
  }
  return { data: out, width: w, height: h };
}

export class Thumbnailer {
  private readonly last = new Map<string, number>();
  private readonly jpeg = new JpegEncoder(QUALITY);

  constructor(private readonly target: ThumbTarget, private readonly metrics: Metrics, private readonly intervalMs = 1000) {}

  /** A decoded frame of a stream whose model input is width × height (called per frame). */
  offer(frame: Frame, width: number, height: number): void {
    if (!this.target.wantsThumb(frame.stream)) return;
    const now = Date.now();
    const last = this.last.get(frame.stream);
    if (last !== undefined && now - last < this.intervalMs) return;
    if (this.last.size >= 10_000) this.last.clear();
    this.last.set(frame.stream, now);
    const t0 = process.cpuUsage();
    const factor = Math.max(1, Math.ceil(Math.max(width, height) / MAX_SIDE));
    // The frame's pixels go back to their pool after inference: copy (downscaled) now.
    const small = downscaleRgb(frame.data, width, height, factor);
    const spent = process.cpuUsage(t0);
    const { stream, session, index, captureTs } = frame;
    setImmediate(() => {
      const t1 = process.cpuUsage();
      const encoded = this.jpeg.encode(small.data, small.width, small.height);
      const enc = process.cpuUsage(t1);
      this.metrics.thumbnails.inc();
      // CPU time of the process while it downscaled and encoded (synchronous, so the work's own).
      this.metrics.thumbnailSeconds.inc((spent.user + spent.system + enc.user + enc.system) / 1e6);
      this.target.sendThumb(stream, JSON.stringify({ type: 'thumb', stream, session, frame: index, captureTs, width: small.width, height: small.height, jpeg: encoded.toString('base64') }));
    });
  }

  forget(stream: string): void {
    this.last.delete(stream);
  }
}
