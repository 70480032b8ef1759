/** What to do with an event a queen sent. */
export type Offer = { type: 'deliver' } | { type: 'repeat' } | { type: 'gap'; from: number; to: number }

/**
 * Where a job's event stream stands: the last sequence number delivered, and what to do with the
 * next event a queen sends. Sequence numbers are per job, gapless and the same on every queen, so
 * an event at or below the cursor was delivered already (a resumed stream repeats nothing), and
 * one past the next leaves a gap: events that queen's stream skipped, which must be read before
 * anything after them is shown.
 *
 * A stream without output (`full: false`) skips output chunks by design, so there a gap is
 * looked into only on the first event of each connection, where a queen that lags or lost part
 * of its index would show one; the client checks such a gap against the queen's stored output.
 *
 * @example
 * const cursor = new EventCursor(after, false)
 * const o = cursor.offer(ev.seq) // 'deliver': show it, then cursor.delivered(ev.seq)
 */
export class EventCursor {
  #check = true

  constructor(
    public last: number,
    private readonly full: boolean,
  ) {}

  /** A new connection: its first new event is checked for a gap. */
  reconnected(): void {
    this.#check = true
  }

  offer(seq: number): Offer {
    if (seq <= this.last) return { type: 'repeat' }
    if (seq === this.last + 1 || (!this.full && !this.#check)) return { type: 'deliver' }
    return { type: 'gap', from: this.last + 1, to: seq - 1 }
  }

  delivered(seq: number): void {
    this.last = seq
    this.#check = false
  }
}
