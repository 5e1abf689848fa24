/** A tab's view: its element, what to do when it is shown, and how to stop its timers. */
export interface View {
  readonly element: HTMLElement;
  shown?(): void;
  close?(): void;
}
