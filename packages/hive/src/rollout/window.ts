/**
 * A sliding window: at most `size` items in flight; each finish lets the next one start at
 * once (no waves waiting for their slowest member). Pure logic: the caller says what
 * "start" means and reports each finish.
 */
export class SlidingWindow<T> {
  readonly #queue: T[]
  #next = 0
  readonly #inFlight = new Set<T>()
  #stopped = false

  constructor(
    items: readonly T[],
    private readonly size: number,
    private readonly start: (item: T) => void,
  ) {
    this.#queue = [...items]
  }

  /** Starts as many as the window allows. */
  pump(): void {
    while (!this.#stopped && this.#inFlight.size < this.size && this.#next < this.#queue.length) {
      const item = this.#queue[this.#next++]!
      this.#inFlight.add(item)
      this.start(item)
    }
  }

  /** Reports that `item` is over; returns false if it was not in flight. */
  finish(item: T): boolean {
    if (!this.#inFlight.delete(item)) return false
    this.pump()
    return true
  }

  /** Starts nothing more; returns the items that never started. */
  stop(): T[] {
    this.#stopped = true
    const rest = this.#queue.slice(this.#next)
    this.#next = this.#queue.length
    return rest
  }

  get inFlight(): number {
    return this.#inFlight.size
  }

  get done(): boolean {
    return this.#inFlight.size === 0 && this.#next >= this.#queue.length
  }
}
