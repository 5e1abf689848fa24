// A minimal raster canvas and PNG encoder (RGB, 8 bits, zlib from node:zlib),
// with a 5×7 bitmap font: enough for the benchmark's line charts.
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buffers) {
  let c = 0xffffffff;
  for (const b of buffers) for (let i = 0; i < b.length; i += 1) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const name = Buffer.from(type, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32([name, data]));
  return Buffer.concat([length, name, data, crc]);
}

/** Encodes `pixels` (RGB, row-major, width × height × 3 bytes) as a PNG file. */
export function encodePng(width, height, pixels) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    pixels.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

// 5×7 glyphs, one string of 35 cells per character ('#' = ink), upper case only.
const GLYPHS = {
  A: ' ### #   ##   #######   ##   ##   #', B: '#### #   ##   ##### #   ##   ##### ', C: ' ### #   ##    #    #    #   # ### ',
  D: '#### #   ##   ##   ##   ##   ##### ', E: '######    #    #### #    #    #####', F: '######    #    #### #    #    #    ',
  G: ' ### #   ##    # ####   ##   # ####', H: '#   ##   ##   #######   ##   ##   #', I: ' ###   #    #    #    #    #   ### ',
  J: '  ###   #    #    #    ##   # ###  ', K: '#   ##  # # #  ##   # #  #  # #   #', L: '#    #    #    #    #    #    #####',
  M: '#   ### ### # ##   ##   ##   ##   #', N: '#   ##   ###  ## # ##  ###   ##   #', O: ' ### #   ##   ##   ##   ##   # ### ',
  P: '#### #   ##   ##### #    #    #    ', Q: ' ### #   ##   ##   ## # ##  #  ## #', R: '#### #   ##   ##### # #  #  # #   #',
  S: ' #####    #     ###     #    ##### ', T: '#####  #    #    #    #    #    #  ', U: '#   ##   ##   ##   ##   ##   # ### ',
  V: '#   ##   ##   ##   ##   # # #   #  ', W: '#   ##   ##   ## # ## # ## # # # # ', X: '#   ##   # # #   #   # # #   ##   #',
  Y: '#   ##   # # #   #    #    #    #  ', Z: '#####    #   #   #   #   #    #####',
  0: ' ### #   ##  ### # ###  ##   # ### ', 1: '  #   ##    #    #    #    #   ### ', 2: ' ### #   #    #   #   #   #   #####',
  3: '#####   #   #     #     ##   # ### ', 4: '   #   ##  # # #  # #####   #    # ', 5: '######    ####     #    ##   # ### ',
  6: '  ##  #   #    #### #   ##   # ### ', 7: '#####    #   #   #   #    #    #   ', 8: ' ### #   ##   # ### #   ##   # ### ',
  9: ' ### #   ##   # ####    #   #  ##  ', ' ': '                                   ', '.': '                          ##   ##  ',
  ',': '                      ##   ##  #   ', '-': '                ###                ', '(': '   #   #   #    #    #     #     # ',
  ')': ' #     #     #    #    #   #   #   ', '/': '     #   #   #   #   #   #         ', ':': '      ##   ##        ##   ##       ',
  '%': '##   ##  #   #   #   #   #  ##   ##', '+': '       #    #  #####  #    #       ', '×': '     #   # # #   #   # # #   #     ',
  '÷': '       #       #####       #       ', '=': '          #####     #####          ',
};

/** A white RGB canvas with the few drawing operations a line chart needs. */
export function createCanvas(width, height) {
  const pixels = Buffer.alloc(width * height * 3, 255);
  const set = (x, y, [r, g, b]) => {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const i = (y * width + x) * 3;
    pixels[i] = r;
    pixels[i + 1] = g;
    pixels[i + 2] = b;
  };
  const rect = (x, y, w, h, color) => {
    for (let j = 0; j < h; j += 1) for (let i = 0; i < w; i += 1) set(x + i, y + j, color);
  };
  return {
    width,
    height,
    rect,
    /** A line `thickness` pixels wide; `dash` draws every other 6 px. */
    line(x0, y0, x1, y1, color, thickness = 1, dash = false) {
      const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
      const half = Math.floor(thickness / 2);
      for (let s = 0; s <= steps; s += 1) {
        if (dash && Math.floor(s / 6) % 2 === 1) continue;
        const x = x0 + ((x1 - x0) * s) / steps;
        const y = y0 + ((y1 - y0) * s) / steps;
        rect(Math.round(x) - half, Math.round(y) - half, thickness, thickness, color);
      }
    },
    /** A filled square marker centred on (x, y). */
    marker(x, y, color, size = 7) {
      rect(Math.round(x - size / 2), Math.round(y - size / 2), size, size, color);
    },
    /** Text in the 5×7 font at `scale`; `align` left, center or right of x; returns its width. */
    text(x, y, s, color, { scale = 2, align = 'left' } = {}) {
      const chars = [...String(s).toUpperCase()];
      const w = chars.length * 6 * scale - scale;
      let cx = align === 'center' ? x - w / 2 : align === 'right' ? x - w : x;
      for (const ch of chars) {
        const glyph = GLYPHS[ch] ?? GLYPHS[' '];
        for (let row = 0; row < 7; row += 1) {
          for (let col = 0; col < 5; col += 1) if (glyph[row * 5 + col] === '#') rect(cx + col * scale, y + row * scale, scale, scale, color);
        }
        cx += 6 * scale;
      }
      return w;
    },
    /** Text turned 90° counter-clockwise (for a y-axis title), centred on (x, y). */
    textUp(x, y, s, color, scale = 2) {
      const chars = [...String(s).toUpperCase()];
      const w = chars.length * 6 * scale - scale;
      let cy = y + w / 2;
      for (const ch of chars) {
        const glyph = GLYPHS[ch] ?? GLYPHS[' '];
        for (let row = 0; row < 7; row += 1) {
          for (let col = 0; col < 5; col += 1) if (glyph[row * 5 + col] === '#') rect(x + row * scale, cy - col * scale - scale, scale, scale, color);
        }
        cy -= 6 * scale;
      }
    },
    png: () => encodePng(width, height, pixels),
  };
}
