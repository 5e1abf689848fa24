// The scale chart: RSS and time to ready against tree size, the agent beside
// chokidar alone, as a PNG (bench/lib/png.mjs).
import { createCanvas } from './png.mjs';

const INK = [30, 30, 30];
const GRID = [225, 225, 225];
const MUTED = [110, 110, 110];
export const COLORS = { agent: [31, 119, 180], chokidar: [230, 115, 0] };

/** Tick step (1, 2 or 5 × 10^k) giving about `count` ticks up to `max`. */
function niceStep(max, count = 5) {
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

const short = (v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}K` : `${+v.toFixed(2)}`);

/**
 * One panel in the box (x, y, w, h): `series` [{ name, color, points: [[x, y]…] }],
 * axes from 0, grid, tick labels, titles.
 */
function panel(c, { x, y, w, h, title, xTitle, yTitle, series }) {
  const left = x + 70;
  const bottom = y + h - 50;
  const top = y + 36;
  const right = x + w - 16;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xStep = niceStep(Math.max(...xs, 1));
  const yStep = niceStep(Math.max(...ys, 1e-9) * 1.1);
  const xMax = Math.ceil(Math.max(...xs, 1) / xStep) * xStep;
  const yMax = Math.ceil((Math.max(...ys, 1e-9) * 1.1) / yStep) * yStep;
  const px = (v) => left + ((right - left) * v) / xMax;
  const py = (v) => bottom - ((bottom - top) * v) / yMax;
  c.text(x + w / 2, y + 6, title, INK, { align: 'center' });
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    c.line(left, py(v), right, py(v), GRID);
    c.text(left - 8, py(v) - 7, short(v), MUTED, { align: 'right' });
  }
  for (let v = 0; v <= xMax + 1e-9; v += xStep) {
    c.line(px(v), bottom, px(v), bottom + 5, INK);
    c.text(px(v), bottom + 10, short(v), MUTED, { align: 'center' });
  }
  c.line(left, top, left, bottom, INK, 2);
  c.line(left, bottom, right, bottom, INK, 2);
  c.text((left + right) / 2, bottom + 30, xTitle, INK, { align: 'center' });
  c.textUp(x + 4, (top + bottom) / 2, yTitle, INK);
  for (const s of series) {
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < pts.length; i += 1) c.line(px(pts[i - 1][0]), py(pts[i - 1][1]), px(pts[i][0]), py(pts[i][1]), s.color, 3, s.dashed);
    for (const [vx, vy] of pts) c.marker(px(vx), py(vy), s.color, 9);
  }
}

/**
 * The PNG of the scale scenario: `rows` are [{ files, agent: { rssMb,
 * readyS }, chokidar: { rssMb, readyS } }]; `caption` goes under the title.
 */
export function scaleChart(rows, caption) {
  const c = createCanvas(1100, 470);
  c.text(550, 10, 'FSO AGENT VS CHOKIDAR ALONE, SAME TREE', INK, { align: 'center', scale: 3 });
  c.text(550, 42, caption, MUTED, { align: 'center' });
  const series = (key) => [
    { name: 'agent', color: COLORS.agent, points: rows.map((r) => [r.files, r.agent[key]]) },
    { name: 'chokidar alone', color: COLORS.chokidar, points: rows.map((r) => [r.files, r.chokidar[key]]), dashed: true },
  ];
  panel(c, { x: 10, y: 70, w: 540, h: 360, title: 'RSS, SETTLED (AFTER GC)', xTitle: 'FILES IN TREE', yTitle: 'RSS (MB)', series: series('rssMb') });
  panel(c, { x: 560, y: 70, w: 530, h: 360, title: 'TIME TO READY', xTitle: 'FILES IN TREE', yTitle: 'SECONDS', series: series('readyS') });
  // Legend.
  let lx = 330;
  for (const [name, color, dashed] of [['AGENT', COLORS.agent, false], ['CHOKIDAR ALONE', COLORS.chokidar, true]]) {
    c.line(lx, 450, lx + 40, 450, color, 3, dashed);
    c.marker(lx + 20, 450, color, 9);
    lx += 50 + c.text(lx + 50, 443, name, INK) + 40;
  }
  return c.png();
}
