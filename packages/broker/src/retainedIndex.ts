import { Readable } from 'node:stream';
import { filterCovers } from './acl.js';

/** The fields of a retained packet this index reads. */
interface RetainedPacket {
  topic: string;
  payload: Buffer;
}

/** The persistence methods the index stands in front of. */
interface RetainedStore {
  storeRetained(packet: RetainedPacket): Promise<void>;
  createRetainedStream(pattern: string): NodeJS.ReadableStream;
}

const RETAINED_METHODS = new Set(['storeRetained', 'createRetainedStream', 'createRetainedStreamCombi']);

/** Whether `pattern` (an MQTT filter) matches `topic`; `#` and `+` never match a `$` topic at the first level (MQTT-4.7.2-1). */
function matches(pattern: string, topic: string): boolean {
  if (topic.startsWith('$') && (pattern.startsWith('#') || pattern.startsWith('+'))) return false;
  return filterCovers(pattern, topic);
}

/**
 * `persistence` with its retained messages also held in a Map by topic, so a
 * SUBSCRIBE is answered from memory: a filter without wildcards is one
 * lookup, one with wildcards one pass over the Map.
 *
 * Why: aedes-persistence-level answers every SUBSCRIBE by reading and
 * msgpack-decoding every retained message in LevelDB to test it against the
 * filter. A fleet retains a status and an ack per agent, and each agent
 * subscribes to three filters when it connects, so N agents coming up cost
 * about 3·N·2N decodes: 5,000 agents took 115 s and 128 CPU seconds to
 * connect (issue 15; a profile put 38 % of the broker's time in
 * `decodedDbValues`). Writes still go to the persistence first-hand, so
 * retained messages survive a restart exactly as before; the Map is filled
 * from it once, at the first read.
 */
export function withRetainedIndex<T extends object>(persistence: T): T {
  const store = persistence as unknown as RetainedStore;
  const retained = new Map<string, RetainedPacket>();
  /** Topics stored while the Map was being filled: what the store had for them is older. */
  const touched = new Set<string>();
  let loading: Promise<void> | undefined;
  let loaded = false;

  const load = (): Promise<void> => {
    loading ??= (async () => {
      for await (const packet of store.createRetainedStream('#') as AsyncIterable<RetainedPacket>) {
        if (!touched.has(packet.topic)) retained.set(packet.topic, packet);
      }
      loaded = true;
      touched.clear();
    })();
    return loading;
  };

  async function* matching(patterns: readonly string[]): AsyncGenerator<RetainedPacket> {
    await load();
    for (const pattern of patterns) {
      if (!pattern.includes('+') && !pattern.includes('#')) {
        const packet = retained.get(pattern);
        if (packet) yield packet;
        continue;
      }
      for (const packet of [...retained.values()]) if (matches(pattern, packet.topic)) yield packet;
    }
  }

  const methods = {
    storeRetained(packet: RetainedPacket): Promise<void> {
      if (!loaded) touched.add(packet.topic);
      // An empty payload deletes the retained message (MQTT-3.3.1-10).
      if (packet.payload.length === 0) retained.delete(packet.topic);
      else retained.set(packet.topic, packet);
      return store.storeRetained(packet);
    },
    createRetainedStream: (pattern: string) => Readable.from(matching([pattern])),
    createRetainedStreamCombi: (patterns: readonly string[]) => Readable.from(matching(patterns)),
  };

  return new Proxy(persistence, {
    get(target, property, receiver) {
      if (typeof property === 'string' && RETAINED_METHODS.has(property)) return methods[property as keyof typeof methods];
      return Reflect.get(target, property, receiver);
    },
  });
}
