import { isApiaryError, type JobEvent, type Logger, type WireEvent } from '@apiary/shared'
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
 * of the queen's CPU at 10,000 nodes. When the store cannot write (a full disk), nothing is
 * dropped: what is not stored goes back in front of what came since and is tried again, and
 * listeners hear of none of it until it is stored, so a stream never shows an event the store
 * does not have. When the store refuses the batch for something in it that no retry would
 * store, the batch is committed one entry at a time, and only what the store refuses is
 * dropped (and logged): one bad event must not hold back every job's commits.
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

  /** Commits what is queued, then tells the listeners of what was stored. */
  flush(): void {
    this.#flushScheduled = false
    const batch = this.#batch
    if (batch.events.length === 0 && batch.ends.length === 0) return
    this.#batch = { events: [], ends: [] }
    for (const event of this.#commit(batch)) {
      const set = this.#listeners.get(event.jobId)
      if (set) for (const fn of [...set]) fn(event)
    }
  }

  /** Stores a batch, or what of it the store takes; returns the events stored, in order. */
  #commit(batch: Batch): JobEvent[] {
    try {
      this.store.commit(batch)
      return batch.events.map((e) => e.event)
    } catch (err) {
      if (!isApiaryError(err, 'invalid_input')) {
        this.#retry(batch, err)
        return []
      }
    }
    // Rare, and then one transaction per entry: ends after every event, as in the batch.
    const entries: Batch[] = [...batch.events.map((e) => ({ events: [e], ends: [] })), ...batch.ends.map((end) => ({ events: [], ends: [end] }))]
    const stored: JobEvent[] = []
    for (const [i, entry] of entries.entries()) {
      try {
        this.store.commit(entry)
        for (const { event } of entry.events) stored.push(event)
      } catch (err) {
        if (!isApiaryError(err, 'invalid_input')) {
          this.#retry({ events: entries.slice(i).flatMap((e) => e.events), ends: entries.slice(i).flatMap((e) => e.ends) }, err)
          break
        }
        // Its sequence number stays unused: a gap in that job's log, which readers step over.
        const ev = entry.events[0]?.event
        if (ev) this.log.error({ err, jobId: ev.jobId, kind: ev.kind, seq: ev.seq }, 'dropped an event the store refuses')
        else this.log.error({ err, jobId: entry.ends[0]?.jobId }, 'dropped a job end the store refuses')
      }
    }
    return stored
  }

  /** Puts what was not stored back in front of what came since, and tries again later. */
  #retry(rest: Batch, err: unknown) {
    this.log.error({ err, events: rest.events.length }, 'cannot store events; retrying')
    this.#batch = { events: [...rest.events, ...this.#batch.events], ends: [...rest.ends, ...this.#batch.ends] }
    if (!this.#closed && !this.#retryTimer) {
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined
        this.flush()
      }, this.retryMs)
    }
  }

  /** Commits what is queued and takes nothing more. */
  close(): void {
    this.flush()
    this.#closed = true
    clearTimeout(this.#retryTimer)
  }
}
