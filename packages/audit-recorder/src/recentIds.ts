/**
 * The last `capacity` ids seen, oldest forgotten first: how the recorder
 * writes an alert (which has an id but no agent seq) once when the broker
 * redelivers it. Bounded, so a flood of ids costs a fixed amount of memory;
 * an id redelivered after `capacity` newer ones (or after a restart) is
 * written again, which the alert's `id` lets an auditor see.
 */
export class RecentIds {
  readonly #ids = new Set<string>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** True the first time `id` is offered (it is remembered); false for a repeat. */
  add(id: string): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.#capacity) {
      // A Set iterates in insertion order: the first is the oldest.
      const oldest = this.#ids.values().next().value;
      if (oldest !== undefined) this.#ids.delete(oldest);
    }
    return true;
  }
}
