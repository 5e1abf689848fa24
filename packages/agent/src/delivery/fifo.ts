/**
 * A first-in first-out queue whose `shift` is O(1): items are read from a
 * head index and the array is trimmed only once the read part is at least
 * half of it. (Array#shift moves every item left; on a burst's backlog of
 * tens of thousands, one shift per publish or ack was the agent's hot spot.)
 */
export class Fifo<T> {
  #items: T[];
  #head = 0;

  constructor(items: T[] = []) {
    this.#items = items;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The oldest item, or undefined when empty. */
  peek(): T | undefined {
    return this.size > 0 ? this.#items[this.#head] : undefined;
  }

  /** Takes the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.#items[this.#head] as T;
    this.#head += 1;
    if (this.#head === this.#items.length) this.clear();
    else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  /** The items, oldest first (a copy). */
  toArray(): T[] {
    return this.#items.slice(this.#head);
  }
}
