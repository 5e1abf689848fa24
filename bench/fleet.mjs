#!/usr/bin/env node
// The fleet scenario alone (issue 15): node bench/fleet.mjs [--agents 1000] [--rate 10] [--seconds 15]
//   [--brokers data,memory,cluster,mosquitto] [--kill] [--drain-cap 120] [--json FILE]
//   node bench/fleet.mjs --idle 5000 [--seconds 60]: N connected, idle agents; broker RSS and CPU.
// N simulated agents (real protocol) → broker → one fso-audit record, per broker in turn. Needs the build.
// cluster: two fso-broker nodes over a fresh redis-server (/usr/bin/redis-server), the agents half on each,
// the recorder on node B; with --kill, node A is the one SIGKILLed and restarted.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { FLEET_BROKERS, fleetMarkdown, fleetScenario, idleFleetMarkdown, idleFleetScenario } from './scenarios/fleet.mjs';

const { values: flags } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '15' },
    brokers: { type: 'string', default: 'data,memory,mosquitto' },
    kill: { type: 'boolean', default: false },
    idle: { type: 'string' },
    'drain-cap': { type: 'string', default: '120' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write('usage: node bench/fleet.mjs [--agents N] [--rate N] [--seconds N] [--brokers data,memory,cluster,mosquitto] [--kill] [--drain-cap S] [--json FILE] | --idle N [--seconds S]\n');
  process.exit(0);
}
const names = { data: 'fso-broker --data-dir', memory: 'fso-broker (in memory)', cluster: 'fso-broker cluster (2 nodes, Redis)', mosquitto: 'mosquitto' };
const brokers = flags.brokers.split(',').map((b) => names[b.trim()] ?? b.trim());
const unknown = brokers.filter((b) => !(b in FLEET_BROKERS));
if (unknown.length > 0) {
  process.stderr.write(`fleet: unknown broker(s) ${unknown.join(', ')}; use data, memory, cluster, mosquitto\n`);
  process.exit(2);
}
const started = Date.now();
const progress = (text) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
if (flags.idle !== undefined) {
  const idle = await idleFleetScenario({ agents: Number(flags.idle), seconds: Number(flags.seconds === '15' ? 60 : flags.seconds), brokers, progress });
  if (flags.json) await writeFile(flags.json, `${JSON.stringify(idle, null, 2)}\n`);
  process.stdout.write(`${idleFleetMarkdown(idle)}\n`);
  process.exit(0);
}
const result = await fleetScenario({
  agents: Number(flags.agents), rate: Number(flags.rate), seconds: Number(flags.seconds), brokers, kill: flags.kill,
  drainCapMs: Number(flags['drain-cap']) * 1000, progress,
});
if (flags.json) await writeFile(flags.json, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${fleetMarkdown(result)}\n`);
