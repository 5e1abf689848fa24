/**
 * Counts the topic filters of a SUBSCRIBE or UNSUBSCRIBE body as its bytes
 * arrive (MQTT-3.8.3, MQTT-3.10.3): a two-byte packet id, then per filter a
 * two-byte length, the filter and, in a SUBSCRIBE, a QoS byte.
 */
export class FilterCounter {
  /** Filters started so far. */
  filters = 0;
  readonly #withQos: boolean;
  readonly #max: number;
  #stage: 'packet-id' | 'length-high' | 'length-low' | 'filter' | 'qos' = 'packet-id';
  /** Bytes left in the packet id or the current filter. */
  #left = 2;

  /** `withQos` for a SUBSCRIBE; `max` filters are fine, one more is not. */
  constructor(withQos: boolean, max: number) {
    this.#withQos = withQos;
    this.#max = max;
  }

  /** Reads `chunk[from, to)` of the body; false once more than `max` filters have started. */
  feed(chunk: Buffer, from: number, to: number): boolean {
    let i = from;
    while (i < to) {
      switch (this.#stage) {
        case 'packet-id':
        case 'filter': {
          const skip = Math.min(this.#left, to - i);
          i += skip;
          this.#left -= skip;
          if (this.#left === 0) this.#stage = this.#stage === 'filter' && this.#withQos ? 'qos' : 'length-high';
          break;
        }
        case 'length-high':
          this.#left = (chunk[i] as number) << 8;
          this.#stage = 'length-low';
          i += 1;
          this.filters += 1;
          if (this.filters > this.#max) return false;
          break;
        case 'length-low':
          this.#left += chunk[i] as number;
          this.#stage = this.#left > 0 ? 'filter' : this.#withQos ? 'qos' : 'length-high';
          i += 1;
          break;
        case 'qos':
          this.#stage = 'length-high';
          i += 1;
          break;
      }
    }
    return true;
  }
}
