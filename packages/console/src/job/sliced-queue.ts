/**
 * Work that arrives in bursts, run in slices of at most `budgetMs`, yielding to the browser
 * between them so that no burst holds the main thread: input, rendering and the next frame
 * get their turn. The browser hands the job stream's events over a whole network read at a
 * time, hundreds of them in one task (after a reconnect, thousands); queued here, each task
 * applies what fits in its budget and the rest goes to the next one.
 *
 * @example
 * const q = new SlicedQueue<string>({ run: apply, after: requestPaint, budgetMs: 8, now: () => performance.now(), schedule: yieldTask() })
 * source.onmessage = (e) => q.push(e.data)
 */
export class SlicedQueue<T> {
  #items: T[] = []
  #head = 0
  #scheduled = false
  #stopped = false

  constructor(
    private readonly o: {
      /** Handles one item. */
      run(item: T): void
      /** After each slice, with what it ran (paint, say). */
      after(): void
      budgetMs: number
      now(): number
      /** Runs `fn` in a task of its own, soon (`yieldTask()`). */
      schedule(fn: () => void): void
    },
  ) {}

  /** Items queued and not yet run. */
  get pending(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    if (this.#stopped) return
    this.#items.push(item)
    if (!this.#scheduled) {
      this.#scheduled = true
      this.o.schedule(this.#slice)
    }
  }

  /** Drops what is queued; later pushes are ignored. */
  stop(): void {
    this.#stopped = true
    this.#items = []
    this.#head = 0
  }

  readonly #slice = (): void => {
    this.#scheduled = false
    if (this.#stopped) return
    const end = this.o.now() + this.o.budgetMs
    const items = this.#items
    let k = this.#head
    // At least one item per slice, whatever the clock says: a queue always drains.
    do this.o.run(items[k++]!)
    while (k < items.length && this.o.now() < end && !this.#stopped)
    if (this.#stopped) return
    if (k >= items.length) {
      items.length = 0
      this.#head = 0
    } else if (k > 4096) {
      items.splice(0, k)
      this.#head = 0
    } else this.#head = k
    this.o.after()
    if (this.pending > 0 && !this.#scheduled) {
      this.#scheduled = true
      this.o.schedule(this.#slice)
    }
  }
}

/**
 * A scheduler for `SlicedQueue`: each call runs its function in a task of its own, through a
 * MessageChannel (setTimeout(0) is clamped to 4 ms once nested, and the rendering steps can
 * run between two such tasks). `close()` frees the channel.
 */
export function yieldTask(): { schedule(fn: () => void): void; close(): void } {
  const ch = new MessageChannel()
  const waiting: Array<() => void> = []
  ch.port1.onmessage = () => waiting.shift()?.()
  return {
    schedule(fn) {
      waiting.push(fn)
      ch.port2.postMessage(null)
    },
    close() {
      waiting.length = 0
      ch.port1.close()
    },
  }
}
