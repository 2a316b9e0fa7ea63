/**
 * A small baseline JPEG encoder for dashboard thumbnails: RGB in, YCbCr 4:4:4, the standard
 * quantisation and Huffman tables of ITU T.81 Annex K. The tables for a quality are built once
 * (jpeg-js, tried first, rebuilds ~40 ms of tables on every call: 45 ms a 112×112 thumbnail;
 * this takes ~1 ms), and the output buffer is reused.
 */

/** Natural (row-major) index → position in zigzag order. */
const ZIGZAG = [
  0, 1, 5, 6, 14, 15, 27, 28, 2, 4, 7, 13, 16, 26, 29, 42,
  3, 8, 12, 17, 25, 30, 41, 43, 9, 11, 18, 24, 31, 40, 44, 53,
  10, 19, 23, 32, 39, 45, 52, 54, 20, 22, 33, 38, 46, 51, 55, 60,
  21, 34, 37, 47, 50, 56, 59, 61, 35, 36, 48, 49, 57, 58, 62, 63,
];

/** Annex K.1 quantisation tables, natural order. */
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
  14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
  18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
  49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
  24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

// Annex K.3 Huffman tables: code counts per length 1..16, then the symbols.
const DC_LUMA_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHROMA_BITS = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_LUMA_VALUES = [
  1, 2, 3, 0, 4, 17, 5, 18, 33, 49, 65, 6, 19, 81, 97, 7,
  34, 113, 20, 50, 129, 145, 161, 8, 35, 66, 177, 193, 21, 82, 209, 240,
  36, 51, 98, 114, 130, 9, 10, 22, 23, 24, 25, 26, 37, 38, 39, 40,
  41, 42, 52, 53, 54, 55, 56, 57, 58, 67, 68, 69, 70, 71, 72, 73,
  74, 83, 84, 85, 86, 87, 88, 89, 90, 99, 100, 101, 102, 103, 104, 105,
  106, 115, 116, 117, 118, 119, 120, 121, 122, 131, 132, 133, 134, 135, 136, 137,
  138, 146, 147, 148, 149, 150, 151, 152, 153, 154, 162, 163, 164, 165, 166, 167,
  168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194, 195, 196, 197,
  198, 199, 200, 201, 202, 210, 211, 212, 213, 214, 215, 216, 217, 218, 225, 226,
  227, 228, 229, 230, 231, 232, 233, 234, 241, 242, 243, 244, 245, 246, 247, 248,
  249, 250,
];
const AC_CHROMA_BITS = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHROMA_VALUES = [
  0, 1, 2, 3, 17, 4, 5, 33, 49, 6, 18, 65, 81, 7, 97, 113,
  19, 34, 50, 129, 8, 20, 66, 145, 161, 177, 193, 9, 35, 51, 82, 240,
  21, 98, 114, 209, 10, 22, 36, 52, 225, 37, 241, 23, 24, 25, 26, 38,
  39, 40, 41, 42, 53, 54, 55, 56, 57, 58, 67, 68, 69, 70, 71, 72,
  73, 74, 83, 84, 85, 86, 87, 88, 89, 90, 99, 100, 101, 102, 103, 104,
  105, 106, 115, 116, 117, 118, 119, 120, 121, 122, 130, 131, 132, 133, 134, 135,
  136, 137, 138, 146, 147, 148, 149, 150, 151, 152, 153, 154, 162, 163, 164, 165,
  166, 167, 168, 169, 170, 178, 179, 180, 181, 182, 183, 184, 185, 186, 194, 195,
  196, 197, 198, 199, 200, 201, 202, 210, 211, 212, 213, 214, 215, 216, 217, 218,
  226, 227, 228, 229, 230, 231, 232, 233, 234, 242, 243, 244, 245, 246, 247, 248,
  249, 250,
];

interface Huffman {
  code: Uint16Array;
  size: Uint8Array;
}

function huffman(bits: number[], values: number[]): Huffman {
  const code = new Uint16Array(256);
  const size = new Uint8Array(256);
  let c = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < bits[len - 1]!; i++) {
      const v = values[k++]!;
      code[v] = c++;
      size[v] = len;
    }
    c <<= 1;
  }
  return { code, size };
}

const DC_LUMA = huffman(DC_LUMA_BITS, DC_VALUES);
const DC_CHROMA = huffman(DC_CHROMA_BITS, DC_VALUES);
const AC_LUMA = huffman(AC_LUMA_BITS, AC_LUMA_VALUES);
const AC_CHROMA = huffman(AC_CHROMA_BITS, AC_CHROMA_VALUES);

/** cos((2x+1)uπ/16) · C(u)/2, [u * 8 + x]: one row of the separable 8-point DCT-II. */
const DCT = new Float64Array(64);
for (let u = 0; u < 8; u++) for (let x = 0; x < 8; x++) DCT[u * 8 + x] = (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);

function scaledTable(base: number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const sf = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q;
  const t = new Uint8Array(64);
  for (let i = 0; i < 64; i++) t[i] = Math.min(255, Math.max(1, Math.floor((base[i]! * sf + 50) / 100)));
  return t;
}

export class JpegEncoder {
  private readonly lumaQ: Uint8Array;
  private readonly chromaQ: Uint8Array;
  private out = new Uint8Array(16 * 1024);
  private pos = 0;
  /** Bits not yet written, and how many (always < 8 between calls). */
  private acc = 0;
  private accBits = 0;
  private readonly block = new Float64Array(64);
  private readonly tmp = new Float64Array(64);
  private readonly coef = new Int32Array(64);
  private readonly planes: Float64Array[] = [new Float64Array(64), new Float64Array(64), new Float64Array(64)];

  constructor(readonly quality = 70) {
    this.lumaQ = scaledTable(LUMA_Q, quality);
    this.chromaQ = scaledTable(CHROMA_Q, quality);
  }

  /** RGB pixels (3 bytes each, row-major) → a JPEG file (a copy: the encoder's buffer is reused). */
  encode(rgb: Uint8Array, width: number, height: number): Buffer {
    this.pos = 0;
    this.acc = 0;
    this.accBits = 0;
    this.headers(width, height);
    const [Y, Cb, Cr] = this.planes as [Float64Array, Float64Array, Float64Array];
    let dcY = 0;
    let dcCb = 0;
    let dcCr = 0;
    for (let by = 0; by < height; by += 8) {
      for (let bx = 0; bx < width; bx += 8) {
        // One 8×8 block of each component, edges repeated past the picture.
        for (let y = 0; y < 8; y++) {
          const sy = Math.min(height - 1, by + y);
          for (let x = 0; x < 8; x++) {
            const p = (sy * width + Math.min(width - 1, bx + x)) * 3;
            const r = rgb[p]!;
            const g = rgb[p + 1]!;
            const b = rgb[p + 2]!;
            const i = y * 8 + x;
            Y[i] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
            Cb[i] = -0.168736 * r - 0.331264 * g + 0.5 * b;
            Cr[i] = 0.5 * r - 0.418688 * g - 0.081312 * b;
          }
        }
        dcY = this.block8(Y, this.lumaQ, dcY, DC_LUMA, AC_LUMA);
        dcCb = this.block8(Cb, this.chromaQ, dcCb, DC_CHROMA, AC_CHROMA);
        dcCr = this.block8(Cr, this.chromaQ, dcCr, DC_CHROMA, AC_CHROMA);
      }
    }
    // Pad the last byte with 1-bits, then EOI.
    if (this.accBits > 0) this.bits((1 << (8 - this.accBits)) - 1, 8 - this.accBits);
    this.word(0xffd9);
    return Buffer.from(this.out.subarray(0, this.pos));
  }

  /** DCT, quantisation, zigzag and Huffman coding of one block; returns its DC value. */
  private block8(src: Float64Array, q: Uint8Array, prevDc: number, dc: Huffman, ac: Huffman): number {
    const tmp = this.tmp;
    const out = this.block;
    // Rows, then columns.
    for (let y = 0; y < 8; y++) {
      for (let u = 0; u < 8; u++) {
        let s = 0;
        for (let x = 0; x < 8; x++) s += DCT[u * 8 + x]! * src[y * 8 + x]!;
        tmp[y * 8 + u] = s;
      }
    }
    for (let u = 0; u < 8; u++) {
      for (let v = 0; v < 8; v++) {
        let s = 0;
        for (let y = 0; y < 8; y++) s += DCT[v * 8 + y]! * tmp[y * 8 + u]!;
        out[v * 8 + u] = s;
      }
    }
    const coef = this.coef;
    for (let i = 0; i < 64; i++) coef[ZIGZAG[i]!] = Math.round(out[i]! / q[i]!);
    const diff = coef[0]! - prevDc;
    this.value(diff, dc);
    let run = 0;
    let last = 63;
    while (last > 0 && coef[last] === 0) last--;
    for (let i = 1; i <= last; i++) {
      const c = coef[i]!;
      if (c === 0) {
        run++;
        continue;
      }
      while (run > 15) {
        this.bits(ac.code[0xf0]!, ac.size[0xf0]!);
        run -= 16;
      }
      const cat = category(c);
      const sym = (run << 4) | cat;
      this.bits(ac.code[sym]!, ac.size[sym]!);
      this.bits(c < 0 ? c + (1 << cat) - 1 : c, cat);
      run = 0;
    }
    if (last < 63) this.bits(ac.code[0]!, ac.size[0]!); // EOB
    return coef[0]!;
  }

  /** A DC difference: its category's code, then its bits. */
  private value(v: number, table: Huffman): void {
    const cat = category(v);
    this.bits(table.code[cat]!, table.size[cat]!);
    if (cat) this.bits(v < 0 ? v + (1 << cat) - 1 : v, cat);
  }

  /** Appends the low `count` (≤ 16) bits of `value`, whole bytes at a time. */
  private bits(value: number, count: number): void {
    if (count === 0) return;
    this.acc = (this.acc << count) | (value & ((1 << count) - 1));
    this.accBits += count;
    while (this.accBits >= 8) {
      this.accBits -= 8;
      const b = (this.acc >>> this.accBits) & 0xff;
      this.byte(b);
      if (b === 0xff) this.byte(0); // byte stuffing
    }
    this.acc &= (1 << this.accBits) - 1;
  }

  private byte(b: number): void {
    if (this.pos === this.out.length) {
      const bigger = new Uint8Array(this.out.length * 2);
      bigger.set(this.out);
      this.out = bigger;
    }
    this.out[this.pos++] = b;
  }

  private word(w: number): void {
    this.byte(w >> 8);
    this.byte(w & 0xff);
  }

  private headers(width: number, height: number): void {
    this.word(0xffd8); // SOI
    // APP0 JFIF 1.1, no thumbnail.
    this.word(0xffe0);
    this.word(16);
    for (const b of [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]) this.byte(b);
    // DQT: both tables, in zigzag order.
    this.word(0xffdb);
    this.word(2 + 2 * 65);
    for (const [id, t] of [[0, this.lumaQ], [1, this.chromaQ]] as const) {
      this.byte(id);
      const zz = new Uint8Array(64);
      for (let i = 0; i < 64; i++) zz[ZIGZAG[i]!] = t[i]!;
      for (const v of zz) this.byte(v);
    }
    // SOF0: 8-bit, 3 components, no subsampling.
    this.word(0xffc0);
    this.word(17);
    this.byte(8);
    this.word(height);
    this.word(width);
    this.byte(3);
    for (const [id, qt] of [[1, 0], [2, 1], [3, 1]]) {
      this.byte(id!);
      this.byte(0x11);
      this.byte(qt!);
    }
    // DHT: the four standard tables.
    const tables: [number, number[], number[]][] = [
      [0x00, DC_LUMA_BITS, DC_VALUES],
      [0x10, AC_LUMA_BITS, AC_LUMA_VALUES],
      [0x01, DC_CHROMA_BITS, DC_VALUES],
      [0x11, AC_CHROMA_BITS, AC_CHROMA_VALUES],
    ];
    this.word(0xffc4);
    this.word(2 + tables.reduce((n, [, b, v]) => n + 1 + b.length + v.length, 0));
    for (const [cls, bits, values] of tables) {
      this.byte(cls);
      for (const b of bits) this.byte(b);
      for (const v of values) this.byte(v);
    }
    // SOS: Y with tables 0/0, Cb and Cr with 1/1; full spectral range.
    this.word(0xffda);
    this.word(12);
    this.byte(3);
    for (const [id, t] of [[1, 0x00], [2, 0x11], [3, 0x11]]) {
      this.byte(id!);
      this.byte(t!);
    }
    this.byte(0);
    this.byte(63);
    this.byte(0);
  }
}

/** Bits needed for |v| (the JPEG magnitude category). */
function category(v: number): number {
  let a = v < 0 ? -v : v;
  let n = 0;
  while (a) {
    n++;
    a >>= 1;
  }
  return n;
}
