#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the
// most self time, and the most inclusive time, with file:line.
// Usage: node bench/profileSummary.mjs FILE.cpuprofile [--top 20]
import { readFileSync } from 'node:fs';

const file = process.argv[2];
const top = Number(process.argv[process.argv.indexOf('--top') + 1]) || 20;
if (!file) {
  process.stderr.write('usage: node bench/profileSummary.mjs FILE.cpuprofile [--top N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
// Sample time: deltas between consecutive samples, attributed to the sampled node.
const self = new Map();
for (let i = 0; i < profile.samples.length; i += 1) {
  const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
  self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
}
const label = (n) => {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(packages|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '(native)';
  return `${f.functionName || '(anonymous)'} ${where}`;
};
const selfBy = new Map();
const totalBy = new Map();
let total = 0;
for (const [id, ms] of self) {
  total += ms;
  const n = byId.get(id);
  selfBy.set(label(n), (selfBy.get(label(n)) ?? 0) + ms);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur));
    if (seen.has(l)) continue;
    seen.add(l);
    totalBy.set(l, (totalBy.get(l) ?? 0) + ms);
  }
}
const show = (title, map) => {
  process.stdout.write(`${title}\n`);
  for (const [l, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${ms.toFixed(0).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${l}\n`);
  }
};
process.stdout.on('error', () => process.exit(0)); // piped into head
const idle = selfBy.get('(idle) (native)') ?? 0;
process.stdout.write(`${file}: ${total.toFixed(0)} ms sampled, ${(total - idle).toFixed(0)} ms busy (not idle)\n`);
// Each sample charged to the nearest frame of user code: a dependency (by package) or an FSO module (by file).
const owner = (n) => {
  const url = n.callFrame.url;
  const dep = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (dep) return dep[1];
  const own = /packages\/([^/]+)\/dist\/([^/]+)\.js/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return undefined;
};
const byOwner = new Map();
for (const [id, ms] of self) {
  const leaf = byId.get(id).callFrame;
  // (garbage collector), (idle), (program): V8's own pseudo-frames.
  let bucket = leaf.url === '' && leaf.functionName.startsWith('(') ? leaf.functionName : undefined;
  for (let cur = id; bucket === undefined && cur !== undefined; cur = parent.get(cur)) bucket = owner(byId.get(cur));
  bucket ??= '(node internals)';
  byOwner.set(bucket, (byOwner.get(bucket) ?? 0) + ms);
}
show('\nself time charged to the nearest package or FSO module', byOwner);
show('\nself time', selfBy);
show('\ninclusive time', totalBy);
