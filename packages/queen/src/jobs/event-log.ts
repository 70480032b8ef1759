import type { JobEvent, Logger, WireEvent } from '@apiary/shared'
import type { Batch, JobEnd, JobStore, NodeUpdate } from '../store/store.ts'

type Listener = (ev: JobEvent) => void

/** What the SSE stream needs of the log: to be woken when a job's events are stored. */
export interface EventFeed {
  listen(jobId: string, fn: Listener): () => void
}

/**
 * The queen's job log: numbers each job's events (gapless `seq`), commits them in groups and
 * tells listeners once they are stored.
 *
 * Everything appended in one tick is one transaction: one transaction per event was two thirds
 * of the queen's CPU at 10,000 nodes. A failed commit is never dropped: the batch goes back in
 * front of what came since and is tried again, and listeners hear of none of it until it is
 * stored, so a stream never shows an event the store does not have.
 */
export class EventLog implements EventFeed {
  readonly #lastSeq = new Map<string, number>()
  readonly #listeners = new Map<string, Set<Listener>>()
  #batch: Batch = { events: [], ends: [] }
  #flushScheduled = false
  #retryTimer: NodeJS.Timeout | undefined
  #closed = false

  constructor(
    private readonly store: Pick<JobStore, 'commit'>,
    private readonly log: Logger,
    private readonly retryMs = 1000,
  ) {}

  /** Starts numbering a job's events after `lastSeq` (0 for a new job). */
  open(jobId: string, lastSeq: number): void {
    this.#lastSeq.set(jobId, lastSeq)
  }

  /**
   * Numbers an event of an open job and queues it for the next group commit. An event of a job
   * that is not open (never opened, or ended) is dropped: numbered from nothing it would reuse a
   * sequence number, and a batch the store refuses would block every job's commits.
   */
  append(ev: WireEvent, nodeUpdate?: { node: string; update: NodeUpdate }): JobEvent | undefined {
    const last = this.#lastSeq.get(ev.jobId)
    if (last === undefined) {
      this.log.error({ jobId: ev.jobId, kind: ev.kind }, 'dropped an event of a job that is not open')
      return undefined
    }
    const seq = last + 1
    this.#lastSeq.set(ev.jobId, seq)
    const event = { ...ev, seq } as JobEvent
    this.#batch.events.push(nodeUpdate ? { event, nodeUpdate } : { event })
    this.#schedule()
    return event
  }

  /** Records that a job ended (in the same commit as its last events); it takes no more events. */
  end(end: JobEnd): void {
    this.#batch.ends.push(end)
    this.#lastSeq.delete(end.jobId)
    this.#schedule()
  }

  listen(jobId: string, fn: Listener): () => void {
    let set = this.#listeners.get(jobId)
    if (!set) this.#listeners.set(jobId, (set = new Set()))
    set.add(fn)
    return () => {
      set.delete(fn)
      if (set.size === 0) this.#listeners.delete(jobId)
    }
  }

  #schedule() {
    // While a failed commit waits for its retry, new events wait with it.
    if (this.#flushScheduled || this.#closed || this.#retryTimer) return
    this.#flushScheduled = true
    setImmediate(() => this.flush())
  }

  /** Commits what is queued, then tells the listeners. */
  flush(): void {
    this.#flushScheduled = false
    const batch = this.#batch
    if (batch.events.length === 0 && batch.ends.length === 0) return
    this.#batch = { events: [], ends: [] }
    try {
      this.store.commit(batch)
    } catch (err) {
      this.log.error({ err, events: batch.events.length }, 'cannot store events; retrying')
      this.#batch = { events: [...batch.events, ...this.#batch.events], ends: [...batch.ends, ...this.#batch.ends] }
      if (!this.#closed && !this.#retryTimer) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined
          this.flush()
        }, this.retryMs)
      }
      return
    }
    for (const { event } of batch.events) {
      const set = this.#listeners.get(event.jobId)
      if (set) for (const fn of [...set]) fn(event)
    }
  }

  /** Commits what is queued and takes nothing more. */
  close(): void {
    this.flush()
    this.#closed = true
    clearTimeout(this.#retryTimer)
  }
}
