import { ApiaryError, isApiaryError, type JobEvent, type Logger, type WireEvent } from '@apiary/shared'
import { type DaemonMetrics, secondsSince } from '@apiary/shared/runtime'
import type { Batch, JobEnd, JobStore, NewJob, NodeUpdate } from '../store/store.ts'

/** What the job log counts: what it took from the stream, what it committed, how jobs and nodes ended. */
export type EventLogMetricKey = 'eventsIngested' | 'storeCommit' | 'jobsFinished' | 'jobDuration' | 'nodesFinished' | 'nodeDuration'

type Listener = (ev: JobEvent) => void
type Waiter = { resolve: () => void; reject: (err: unknown) => void }

/** What the SSE stream needs of the log: to be woken when a job's events are stored. */
export interface EventFeed {
  listen(jobId: string, fn: Listener): () => void
}

/**
 * Where the leader's commits go before its index: the job log (APIARY_LOG). `write` resolves
 * with the record's log sequence once the log holds it, and rejects with `conflict` when
 * another queen wrote to the log since (this one no longer leads); anything else is retried.
 */
export interface LogWriter {
  write(batch: Batch): Promise<number>
}

/**
 * A job-log record stays under this many bytes (the largest event is 256 KiB): smaller records,
 * more of them. Below nats-server's default max_payload (1 MiB) by room for the headers and
 * what the weights below leave out.
 */
export const RECORD_BYTES = 960 * 1024

/**
 * The least time between the starts of two groups: events that come faster than one group a
 * GROUP_MS wait for the next (a lone event is written at once). Each group costs a job-log
 * write, an index transaction, a wake-up of every stream watching and an acknowledgement, so
 * a burst of a thousand ends is a few dozen groups rather than a hundred; nobody watching
 * notices the wait.
 */
export const GROUP_MS = 20

/**
 * The queen's job log: numbers each job's events (gapless `seq`), commits them in groups and
 * tells listeners once they are stored.
 *
 * Everything appended while the previous group is being written, and for at least `groupMs`
 * after the previous group began, is the next group: one record of the job log and one
 * transaction of the index, so the cost of a write is shared by every event of it. A group is
 * written to the log first (`LogWriter`), then to the index, then listeners hear of it, then
 * the event stream is acknowledged up to the last message whose effects it holds (`source`):
 * an event is acknowledged only once applied and stored.
 * When the log or the store cannot write (NATS down, a full disk), nothing is dropped: the
 * group goes back in front of what came since and is tried again. When the store refuses
 * something no retry would store, the group is committed one entry at a time and only what the
 * store refuses is dropped (and logged). When the log says another queen wrote meanwhile, this
 * one stops: what it had not stored is dropped (the next leader redoes it from the stream and
 * its own clock) and `stored()` rejects with `not_leader`.
 */
export class EventLog implements EventFeed {
  readonly #lastSeq = new Map<string, number>()
  readonly #listeners = new Map<string, Set<Listener>>()
  #batch: Batch = { jobs: [], events: [], ends: [] }
  /** The last stream message whose effects are in `#batch`, and how to acknowledge it. */
  #source: { seq: number; ack: () => void } | undefined
  #waiters: Waiter[] = []
  /** The group being written: its records not yet stored, its source and who waits for it. */
  #inflight: { records: Array<{ batch: Batch; logSeq?: number }>; source: { seq: number; ack: () => void } | undefined; waiters: Waiter[] } | undefined
  #flushing: Promise<void> | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #closed = false
  #fenced = false
  /** A run's state changed with no event to carry it (`touch`): the next group is written even if empty. */
  #touched = false
  /** When the last group began (performance.now()). */
  #groupAt = -Infinity
  /** Told to close: what is queued is written without waiting for `groupMs`. */
  #closing = false
  /** Ends the wait for `groupMs`, when one is on. */
  #wake: (() => void) | undefined

  constructor(
    private readonly store: Pick<JobStore, 'commit'>,
    private readonly log: Logger,
    private readonly o: {
      writer?: LogWriter
      /** The state of each run touched since the last group (stored with it). */
      runs?: () => Batch['runs']
      /** Another queen wrote the log: this one must stop leading. */
      onFenced?: (err: unknown) => void
      retryMs?: number
      /** The least time between the starts of two groups (default `GROUP_MS`). */
      groupMs?: number
      metrics?: DaemonMetrics<EventLogMetricKey>
      /** When a job was submitted, for its duration once it ends. */
      createdAt?: (jobId: string) => number | undefined
    } = {},
  ) {}

  /** Starts numbering a job's events after `lastSeq` (0 for a new job). */
  open(jobId: string, lastSeq: number): void {
    this.#lastSeq.set(jobId, lastSeq)
  }

  /** A new job, stored with the next group (before its first event). */
  create(job: NewJob): void {
    this.#batch.jobs!.push(job)
    this.#schedule()
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
    if (ev.kind === 'node.finished' && this.o.metrics) {
      this.o.metrics.m.nodesFinished.inc({ state: ev.state })
      // A node the queen or its hive ended without running has no duration of its own.
      if (ev.durationMs !== null && ev.durationMs > 0) this.o.metrics.m.nodeDuration.observe({ state: ev.state }, ev.durationMs / 1000)
    }
    this.#batch.events.push(nodeUpdate ? { event, nodeUpdate } : { event })
    this.#schedule()
    return event
  }

  /** Records that a job ended (in the same commit as its last events); it takes no more events. */
  end(end: JobEnd): void {
    this.#batch.ends.push(end)
    this.#lastSeq.delete(end.jobId)
    if (this.o.metrics) {
      this.o.metrics.m.jobsFinished.inc({ state: end.state })
      const at = this.o.createdAt?.(end.jobId)
      if (at !== undefined) this.o.metrics.m.jobDuration.observe({ state: end.state }, Math.max(0, end.finishedAt - at) / 1000)
    }
    this.#schedule()
  }

  /**
   * A running job's state changed with no event (a silent worker's deadline set by a sweep):
   * the next group is written with the runs' state even if no event comes, so a new leader
   * has it.
   */
  touch(): void {
    this.#touched = true
    this.#schedule()
  }

  /** The stream message `seq` is applied: everything it caused is queued. Acknowledged once stored. */
  source(seq: number, ack: () => void): void {
    // A message handed out again after a later one: acknowledging the later covers it.
    if (this.#source && this.#source.seq >= seq) return
    this.o.metrics?.m.eventsIngested.inc()
    this.#source = { seq, ack }
    this.#schedule()
  }

  /** Resolves once everything queued so far is stored; rejects `not_leader` when this queen was fenced off first. */
  stored(): Promise<void> {
    if (this.#fenced) return Promise.reject(notLeader())
    if (this.#empty(this.#batch) && !this.#inflight && !this.#flushing) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
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

  /** Tells listeners of events another queen stored (a standby applying the job log). */
  notify(events: readonly JobEvent[]): void {
    for (const event of events) {
      const set = this.#listeners.get(event.jobId)
      if (set) for (const fn of [...set]) fn(event)
    }
  }

  #empty(b: Batch): boolean {
    return b.events.length === 0 && b.ends.length === 0 && (b.jobs?.length ?? 0) === 0
  }

  #schedule() {
    // While a group is being written or waits for its retry, what comes waits for the next.
    if (this.#flushing || this.#closed || this.#retryTimer || this.#fenced) return
    this.#flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#drain())
  }

  /** Writes groups one after another until nothing is queued. */
  async #drain(): Promise<void> {
    try {
      while (!this.#fenced && !this.#retryTimer) {
        if (!this.#inflight) {
          if (this.#empty(this.#batch) && !this.#source && !this.#touched) break
          const wait = this.#groupAt + (this.o.groupMs ?? GROUP_MS) - performance.now()
          if (wait > 0 && !this.#closing) {
            // Whatever comes meanwhile joins this group; a step-down or close is seen after it.
            await new Promise<void>((resolve) => {
              const timer = setTimeout(() => this.#wake?.(), wait)
              this.#wake = () => {
                clearTimeout(timer)
                this.#wake = undefined
                resolve()
              }
            })
            continue
          }
          this.#groupAt = performance.now()
          this.#touched = false
          const batch = this.#batch
          this.#batch = { jobs: [], events: [], ends: [] }
          let records: Array<{ batch: Batch; logSeq?: number }> = []
          // A message that changed a run and emitted nothing (an event held for one before it)
          // is acknowledged only once that run's state is stored with it.
          batch.runs = this.o.runs?.() ?? []
          if (!this.#empty(batch) || batch.runs.length > 0) {
            if (this.#source) batch.src = this.#source.seq
            records = split(batch).map((b) => ({ batch: b }))
          }
          this.#inflight = { records, source: this.#source, waiters: this.#waiters }
          this.#source = undefined
          this.#waiters = []
        }
        const group = this.#inflight
        // Every record of the group into the log first (one the log took is not written again
        // when only the index must retry), then the whole group into the index at once: a
        // group is applied whole or not at all, by this queen and by every reader of the log.
        for (const r of group.records) {
          if (r.logSeq !== undefined || !this.o.writer) continue
          try {
            r.logSeq = await this.o.writer.write(r.batch)
          } catch (err) {
            if (isApiaryError(err, 'conflict') || isApiaryError(err, 'not_leader')) {
              this.log.warn({ err }, 'another queen wrote the job log: this one no longer leads')
              this.#fenced = true
              this.o.onFenced?.(err)
            } else this.#retry(err, r.batch)
            return
          }
        }
        if (group.records.length > 0) {
          const whole = group.records.length === 1 ? group.records[0]!.batch : merge(group.records.map((r) => r.batch))
          const stored = this.#commit(whole, group.records.at(-1)!.logSeq)
          if (!stored) {
            // What the store took of it stays taken: only the rest is tried again.
            group.records = [{ batch: whole, ...(group.records.at(-1)!.logSeq !== undefined ? { logSeq: group.records.at(-1)!.logSeq } : {}) }]
            return
          }
          group.records = []
          this.notify(stored)
        }
        group.source?.ack()
        for (const w of group.waiters) w.resolve()
        this.#inflight = undefined
      }
    } finally {
      this.#flushing = undefined
      if (this.#fenced) this.#dropAll()
      else if (!this.#retryTimer && !this.#closed && (!this.#empty(this.#batch) || this.#source || this.#touched)) this.#schedule()
      else if (!this.#retryTimer && !this.#inflight) for (const w of this.#waiters.splice(0)) w.resolve()
    }
  }

  /** Commits a record to the index; returns the events stored, or undefined to try again. */
  #commit(record: Batch, logSeq: number | undefined): JobEvent[] | undefined {
    try {
      const t0 = performance.now()
      this.store.commit(record, logSeq)
      this.o.metrics?.m.storeCommit.observe(secondsSince(t0))
      return record.events.map((e) => e.event)
    } catch (err) {
      if (!isApiaryError(err, 'invalid_input')) {
        this.#retry(err, record)
        return undefined
      }
    }
    // Rare, and then one transaction per entry: ends after every event, as in the batch.
    const entries: Batch[] = [
      ...(record.jobs ?? []).map((job) => ({ jobs: [job], events: [], ends: [] })),
      ...record.events.map((e) => ({ events: [e], ends: [] })),
      ...record.ends.map((end) => ({ events: [], ends: [end] })),
      { events: [], ends: [], ...(record.runs ? { runs: record.runs } : {}), ...(record.src !== undefined ? { src: record.src } : {}) },
    ]
    const stored: JobEvent[] = []
    for (const [i, entry] of entries.entries()) {
      try {
        this.store.commit(entry, i === entries.length - 1 ? logSeq : undefined)
        for (const { event } of entry.events) stored.push(event)
      } catch (err) {
        if (!isApiaryError(err, 'invalid_input')) {
          // What is stored stays so; the rest is tried again from this entry.
          record.jobs = entries.slice(i).flatMap((e) => e.jobs ?? [])
          record.events = entries.slice(i).flatMap((e) => e.events)
          record.ends = entries.slice(i).flatMap((e) => e.ends)
          this.notify(stored)
          this.#retry(err, record)
          return undefined
        }
        // Its sequence number stays unused: a gap in that job's log, which readers step over.
        const ev = entry.events[0]?.event
        if (ev) this.log.error({ err, jobId: ev.jobId, kind: ev.kind, seq: ev.seq }, 'dropped an event the store refuses')
        else this.log.error({ err, jobId: entry.ends[0]?.jobId ?? entry.jobs?.[0]?.id }, 'dropped a record entry the store refuses')
      }
    }
    return stored
  }

  #retry(err: unknown, batch: Batch) {
    this.log.error({ err, events: batch.events.length }, 'cannot store events; retrying')
    if (this.#closed || this.#retryTimer) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#schedule()
    }, this.o.retryMs ?? 1000)
  }

  #dropAll() {
    this.#batch = { jobs: [], events: [], ends: [] }
    this.#source = undefined
    for (const w of [...(this.#inflight?.waiters ?? []), ...this.#waiters.splice(0)]) w.reject(notLeader())
    this.#inflight = undefined
  }

  /** A new term as leader: numbering starts from what `open` says again, and nothing of an earlier term is pending. */
  reset(): void {
    this.#lastSeq.clear()
    this.#batch = { jobs: [], events: [], ends: [] }
    this.#source = undefined
    this.#inflight = undefined
    this.#fenced = false
    this.#touched = false
  }

  /** Stepping down: waits for the write in flight, then drops what is queued (the next leader redoes it). */
  async settle(): Promise<void> {
    this.#fenced = true
    this.#wake?.()
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    await this.#flushing
    this.#dropAll()
  }

  /** Writes what is queued (bounded by the caller) and takes nothing more. */
  async close(): Promise<void> {
    this.#closing = true
    this.#wake?.()
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#schedule()
    await this.#flushing
    this.#closed = true
    for (const w of this.#waiters.splice(0)) w.reject(new ApiaryError('closed', 'the queen is shutting down'))
  }
}

function notLeader(): ApiaryError {
  return new ApiaryError('not_leader', 'this queen no longer leads: another queen took over')
}

/** Rough bytes of an event in a record: exact enough to keep records under `RECORD_BYTES`. */
function weight(e: Batch['events'][number]): number {
  const ev = e.event as { data?: string; human?: string; result?: unknown }
  return 512 + (ev.data?.length ?? 0) * 2 + (ev.human?.length ?? 0) * 2 + (ev.result === undefined ? 0 : 8192)
}

const nodeWeight = (n: { node: string; region: string }) => 32 + (n.node.length + n.region.length) * 2

/** The records of one group as one batch again (the source is the last record's; a job split over records, whole; every record's runs). */
export function merge(parts: readonly Batch[]): Batch {
  const last = parts.at(-1)!
  const jobs = new Map<string, NonNullable<Batch['jobs']>[number]>()
  for (const j of parts.flatMap((p) => p.jobs ?? [])) {
    const seen = jobs.get(j.id)
    if (seen) jobs.set(j.id, { ...seen, nodes: [...seen.nodes, ...j.nodes] })
    else jobs.set(j.id, j)
  }
  return {
    jobs: [...jobs.values()],
    events: parts.flatMap((p) => p.events),
    ends: parts.flatMap((p) => p.ends),
    // A group's runs may be spread over its last records: all of them, in order.
    ...(parts.some((p) => p.runs) ? { runs: parts.flatMap((p) => p.runs ?? []) } : {}),
    ...(last.src !== undefined ? { src: last.src } : {}),
  }
}

/**
 * A group as records of at most `RECORD_BYTES`; jobs first, then events, ends and runs, the
 * source with the last. Records of a group of several say which part they are (`part`): a reader applies the
 * group only once it has every part, so a leader that dies between parts leaves nothing half applied.
 */
export function split(batch: Batch): Batch[] {
  const out: Batch[] = []
  let cur: Batch = { jobs: [], events: [], ends: [] }
  let bytes = 0
  /** Starts the next record when `w` more bytes would take this one (not empty) over `RECORD_BYTES`. */
  const room = (w: number) => {
    if (bytes === 0 || bytes + w <= RECORD_BYTES) return
    out.push(cur)
    cur = { jobs: [], events: [], ends: [] }
    bytes = 0
  }
  // A job's target list can outgrow a record (50,000 nodes are some 2 MB): its nodes go over as
  // many records as they need, each a copy of the job with a slice of them (without its sealed
  // secrets but in the first), which `merge` puts back together.
  for (const job of batch.jobs ?? []) {
    const { sealed, nodes, ...head } = job
    const headBytes = 1024 + JSON.stringify(head).length * 2 + (sealed?.length ?? 0)
    let at = 0
    do {
      if (cur.jobs!.length > 0) room(headBytes)
      bytes += at === 0 ? headBytes : headBytes - (sealed?.length ?? 0)
      const from = at
      while (at < nodes.length && (at === from || bytes + nodeWeight(nodes[at]!) <= RECORD_BYTES)) bytes += nodeWeight(nodes[at++]!)
      cur.jobs!.push({ ...head, ...(from === 0 && sealed !== undefined ? { sealed } : {}), nodes: nodes.slice(from, at) })
    } while (at < nodes.length)
  }
  for (const e of batch.events) {
    const w = weight(e)
    room(w)
    cur.events.push(e)
    bytes += w
  }
  // The ends and the runs' snapshots are weighed as well (a running 50,000-node job's snapshot,
  // with where each running node's events stand, is some hundreds of kB): a record over the
  // server's max_payload would be refused every time it was tried, and the log would stop.
  for (const end of batch.ends) {
    const w = 256 + JSON.stringify(end.counts).length + (end.stopReason?.length ?? 0) * 2
    room(w)
    cur.ends.push(end)
    bytes += w
  }
  for (const run of batch.runs ?? []) {
    const w = 64 + run.jobId.length * 2 + JSON.stringify(run.run).length * 2
    room(w)
    ;(cur.runs ??= []).push(run)
    bytes += w
  }
  if (batch.runs) cur.runs ??= []
  if (batch.src !== undefined) cur.src = batch.src
  out.push(cur)
  if (out.length > 1) out.forEach((r, i) => (r.part = { n: i + 1, of: out.length }))
  return out
}
