// `node fsyncProbe.mjs DIR OUT`: every 10 ms writes 100 bytes to a file in
// DIR and fdatasyncs it (what the outbox and the recorder do per batch),
// appending { t: epoch ms, ms: duration } to OUT. Tells how long a small
// fsync waits on this file system while something else writes.
import { appendFileSync, closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';

const [dir, out] = process.argv.slice(2);
const fd = openSync(path.join(dir, 'fsync-probe'), 'a');
const line = Buffer.alloc(100, 'p');
const tick = () => {
  const t = Date.now();
  const start = process.hrtime.bigint();
  writeSync(fd, line);
  fdatasyncSync(fd);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  appendFileSync(out, `${JSON.stringify({ t, ms: Math.round(ms * 10) / 10 })}\n`);
  setTimeout(tick, 10);
};
tick();
process.on('SIGTERM', () => {
  closeSync(fd);
  process.exit(0);
});
