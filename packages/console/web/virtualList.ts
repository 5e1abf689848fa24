// A list of many fixed-height rows that keeps only the visible ones in the
// DOM: the live stream holds tens of thousands of rows at 2,000 a second.

/** How a {@link createVirtualList} draws its rows. */
export interface VirtualListOptions<T> {
  rowHeight: number;
  testid: string;
  /** Makes an empty row element (called once per pooled row). */
  createRow(): HTMLElement;
  /** Fills a pooled row with `item` (textContent only). */
  updateRow(row: HTMLElement, item: T, index: number): void;
  onSelect?(item: T): void;
}

/** A virtualised list over `count` items read by index. */
export interface VirtualList<T> {
  readonly element: HTMLElement;
  /** Sets what the list shows and redraws the visible rows. */
  show(count: number, itemAt: (index: number) => T): void;
  /** Keeps the rows in view still when `n` items were added above them. */
  shiftDown(n: number): void;
}

/**
 * Creates the list: a scrolling viewport with a spacer as tall as all rows,
 * and a pool of absolutely placed rows reused for whatever is in view.
 */
export function createVirtualList<T>(options: VirtualListOptions<T>): VirtualList<T> {
  const { rowHeight } = options;
  const viewport = document.createElement('div');
  viewport.className = 'vlist';
  viewport.dataset.testid = options.testid;
  const spacer = document.createElement('div');
  spacer.className = 'vlist-spacer';
  viewport.appendChild(spacer);
  const pool: HTMLElement[] = [];
  const bound: Array<T | undefined> = [];
  let count = 0;
  let itemAt: (index: number) => T = () => undefined as T;
  let scheduled = false;
  // Kept from scroll events: reading viewport.scrollTop after a change would force a layout every frame.
  let scrollTop = 0;
  let height = 0;

  const draw = (): void => {
    scheduled = false;
    spacer.style.height = `${count * rowHeight}px`;
    const first = Math.max(0, Math.floor(scrollTop / rowHeight) - 2);
    const visible = Math.ceil((height || 600) / rowHeight) + 4;
    while (pool.length < visible) {
      const row = options.createRow();
      row.classList.add('vrow');
      row.style.height = `${rowHeight}px`;
      const slot = pool.length;
      row.addEventListener('click', () => {
        const item = bound[slot];
        if (item !== undefined) options.onSelect?.(item);
      });
      pool.push(row);
      viewport.appendChild(row);
    }
    for (let slot = 0; slot < pool.length; slot += 1) {
      const row = pool[slot] as HTMLElement;
      const index = first + slot;
      if (slot >= visible || index >= count) {
        row.hidden = true;
        bound[slot] = undefined;
        continue;
      }
      const item = itemAt(index);
      row.hidden = false;
      row.style.transform = `translateY(${index * rowHeight}px)`;
      bound[slot] = item;
      options.updateRow(row, item, index);
    }
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  };
  viewport.addEventListener('scroll', () => {
    scrollTop = viewport.scrollTop;
    schedule();
  }, { passive: true });
  new ResizeObserver(() => {
    height = viewport.clientHeight;
    schedule();
  }).observe(viewport);

  return {
    element: viewport,
    show(n, at) {
      count = n;
      itemAt = at;
      draw();
    },
    shiftDown(n) {
      if (scrollTop <= 0 || n <= 0) return;
      scrollTop += n * rowHeight;
      viewport.scrollTop = scrollTop;
      draw();
    },
  };
}
