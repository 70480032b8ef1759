import { randomBytes } from 'node:crypto'
import { ApiaryError, type Durable, isApiaryError, type JobEvent, type Lease, type Logger, type StreamMessage, type StreamReader, subjects } from '@apiary/shared'
import type { Batch, JobStore } from '../store/store.ts'
import type { Coordinator } from './coordinator.ts'
import { type EventLog, type LogWriter, merge } from './event-log.ts'

/** The lease key the leading queen holds in the lease bucket. */
export const LEADER_KEY = 'leader'

/** How long one write to the job log is retried before the group is tried again from the start. */
const WRITE_DEADLINE_MS = 10_000

/**
 * Writes the leader's commits to the job log, fenced: each record is stored only if the log
 * still ends where this writer last wrote (another writer since: `conflict`), deduplicated by
 * holder and position (a retry after a lost acknowledgement is stored once).
 */
export function createLogWriter(durable: Durable, holder: string, key: string): LogWriter & { lastSeq: number } {
  return {
    lastSeq: 0,
    async write(batch) {
      const record: LogRecord = { v: 1, by: holder, key, ...batch }
      const receipt = await durable.publish(subjects.log, record, { id: `${holder}/${this.lastSeq}`, deadline: Date.now() + WRITE_DEADLINE_MS, expectLastSeq: this.lastSeq })
      this.lastSeq = receipt.seq
      return receipt.seq
    },
  }
}

/** One record of the job log: a group commit of the leader `by` (its lease holder), which signs work with `key`. */
export type LogRecord = Batch & { v: 1; by: string; key: string }

/** A record of the job log, checked for the shape the index needs (only queens may write the log). */
function asRecord(data: unknown): Batch | undefined {
  const r = data as Partial<Batch> & { v?: unknown }
  if (typeof r !== 'object' || r === null || r.v !== 1 || !Array.isArray(r.events) || !Array.isArray(r.ends)) return undefined
  if (r.jobs !== undefined && !Array.isArray(r.jobs)) return undefined
  if (r.runs !== undefined && !Array.isArray(r.runs)) return undefined
  if (r.src !== undefined && typeof r.src !== 'number') return undefined
  const part = r.part as { n?: unknown; of?: unknown } | undefined
  if (part !== undefined && !(Number.isInteger(part.n) && Number.isInteger(part.of) && (part.n as number) >= 1 && (part.n as number) <= (part.of as number))) return undefined
  return {
    events: r.events,
    ends: r.ends,
    ...(r.jobs ? { jobs: r.jobs } : {}),
    ...(r.runs ? { runs: r.runs } : {}),
    ...(r.src !== undefined ? { src: r.src } : {}),
    ...(part ? { part: { n: part.n as number, of: part.of as number } } : {}),
  }
}

/**
 * Applies the job log to an index, record by record, a group of several parts only once all
 * its parts are read (in order, one after another): the parts of a group whose writer died
 * before its last part are dropped, and the index's position stays before them. One per reader.
 */
export class RecordApplier {
  #parts: Batch[] = []

  constructor(
    private readonly store: JobStore,
    private readonly log: Logger,
  ) {}

  /** The events the index took from this record (none while a group is still incomplete). */
  apply(m: StreamMessage): JobEvent[] {
    const record = asRecord(m.data)
    if (record?.part && record.part.of > 1) {
      if (record.part.n === 1 || this.#parts.length !== record.part.n - 1) {
        if (this.#parts.length > 0) this.#dropParts(m.seq)
        if (record.part.n !== 1) {
          this.log.error({ seq: m.seq, part: record.part }, 'skipped a part of a job-log group whose first parts are missing')
          return []
        }
      }
      this.#parts.push(record)
      if (record.part.n < record.part.of) return []
      const whole = merge(this.#parts)
      this.#parts = []
      return applyRecord(this.store, { ...m, data: { v: 1, ...whole } }, this.log)
    }
    if (this.#parts.length > 0) this.#dropParts(m.seq)
    return applyRecord(this.store, m, this.log)
  }

  /** Whether parts of a group wait for the rest (the log ends inside a group). */
  get pending(): boolean {
    return this.#parts.length > 0
  }

  #dropParts(seq: number) {
    this.log.warn({ seq, parts: this.#parts.length }, 'dropped the first parts of a job-log group its writer never finished')
    this.#parts = []
  }
}

/**
 * Applies one job-log record to an index: what a standby does with every record, and what a
 * rebuild does from the first. A record already applied is skipped; one that does not have
 * a record's shape, or that the store refuses, is logged and skipped (the position moves on).
 */
export function applyRecord(store: JobStore, m: StreamMessage, log: Logger): JobEvent[] {
  const record = asRecord(m.data)
  try {
    if (!record) {
      log.error({ seq: m.seq }, 'skipped a job-log record of an unknown shape')
      store.commit({ events: [], ends: [] }, m.seq)
      return []
    }
    return store.commit(record, m.seq) ? record.events.map((e) => e.event) : []
  } catch (err) {
    if (!isApiaryError(err, 'invalid_input')) throw err
    log.error({ err, seq: m.seq }, 'skipped a job-log record the index refuses')
    store.commit({ events: [], ends: [] }, m.seq)
    return []
  }
}

export interface LeadershipOptions {
  durable: Durable
  /** The public key this queen signs work with: a queen signing with another key must not take over from the log's writer. */
  publicKey: string
  store: JobStore
  events: EventLog
  coordinator: Coordinator
  log: Logger
  /** This queen's id; the lease holder is the id and a nonce of this start. */
  queenId: string
  /** The lease bucket's TTL (`DurableConfig.leaseTtlMs`): renewed at a third of it. */
  leaseTtlMs: number
}

/**
 * One queen leads, any number stand by (DESIGN.md, "Durability and failover"). Every queen
 * follows the job log into its index; the one holding the lease stops following, catches up to
 * the log's end, and leads: writes go through it, it consumes the event stream and carries
 * every running job on. It renews the lease at a third of its TTL and steps down when the lease
 * is another's, or when it has not renewed for half the TTL (so it stops before anyone else
 * can start); the fenced log stops it too if it missed both.
 */
export class Leadership {
  readonly holder: string
  /** What the event log writes through while this queen leads (its position is set on each takeover). */
  readonly writer: LogWriter & { lastSeq: number }
  readonly #o: LeadershipOptions
  /** One lease object for this queen's life: it remembers its last revision, so a renewal is one write. */
  readonly #lease: Lease
  /** Set when the log's writer signs with another key: this queen then never takes over (its shares would be refused). */
  #otherKey: string | undefined
  #replica: StreamReader | undefined
  #timer: NodeJS.Timeout | undefined
  #lastRenewed = 0
  /** Steps a leader down half a TTL after its last renewal, even while a renewal hangs. */
  #deadman: NodeJS.Timeout | undefined
  #state: 'following' | 'taking-over' | 'leading' | 'closed' = 'following'
  /** Serialises takeovers and step-downs. */
  #turn: Promise<void> = Promise.resolve()
  /** Whether the index has caught up with the log since it started following. */
  #caughtUp = false

  constructor(o: LeadershipOptions) {
    this.#o = o
    this.holder = `${o.queenId}/${randomBytes(6).toString('hex')}`
    this.writer = createLogWriter(o.durable, this.holder, o.publicKey)
    this.#lease = o.durable.lease(LEADER_KEY, this.holder)
  }

  get leading(): boolean {
    return this.#state === 'leading'
  }

  /** A standby is ready once its index has caught up with the log; the leader once it leads. */
  get ready(): boolean {
    return this.#state === 'leading' || (this.#state === 'following' && this.#caughtUp)
  }

  /** Follows the log and tries for the lease once (a queen alone leads when this resolves), then keeps trying. */
  async start(): Promise<void> {
    this.#follow()
    await this.#renew()
    this.#schedule()
  }

  /** Called by the event log when the log refused a write: another queen leads. */
  fenced(): void {
    this.#turn = this.#turn.then(() => this.#stepDown('another queen wrote the job log'))
  }

  #schedule() {
    if (this.#state === 'closed') return
    this.#timer = setTimeout(() => void this.#renew().finally(() => this.#schedule()), Math.max(100, Math.floor(this.#o.leaseTtlMs / 3)))
    this.#timer.unref()
  }

  async #renew(): Promise<void> {
    if (this.#otherKey !== undefined) return
    const lease = this.#lease
    let held: boolean | undefined
    try {
      held = await lease.acquire()
    } catch (err) {
      this.#o.log.warn({ err }, 'cannot renew the leader lease')
    }
    const now = performance.now()
    if (held) {
      this.#lastRenewed = now
      this.#armDeadman(this.#o.leaseTtlMs / 2)
    }
    if (held && this.#state === 'following') this.#turn = this.#turn.then(() => this.#takeOver())
    else if (this.#state === 'leading' && (held === false || now - this.#lastRenewed > this.#o.leaseTtlMs / 2)) {
      this.#turn = this.#turn.then(() => this.#stepDown(held === false ? 'another queen holds the lease' : 'the lease could not be renewed in time'))
    }
    await this.#turn
  }

  /** Steps down once half a TTL has passed since the last renewal; a timer that fires early waits the rest. */
  #armDeadman(ms: number) {
    clearTimeout(this.#deadman)
    this.#deadman = setTimeout(() => {
      if (this.#state !== 'leading') return
      const left = this.#o.leaseTtlMs / 2 - (performance.now() - this.#lastRenewed)
      if (left > 0) return this.#armDeadman(left)
      this.#turn = this.#turn.then(() => this.#stepDown('the lease could not be renewed in time'))
    }, Math.max(1, ms))
    this.#deadman.unref()
  }

  /** Follows the job log into the index (a standby). */
  #follow() {
    const { durable, store, events, log } = this.#o
    this.#caughtUp = false
    let end: number | undefined
    const afterSeq = store.position().logSeq
    const applier = new RecordApplier(store, log)
    this.#replica = durable.read(
      'log',
      (m) => {
        this.#checkKey(m.data)
        events.notify(applier.apply(m))
        if (end !== undefined && m.seq >= end) this.#caughtUp = true
      },
      { afterSeq, follow: true, maxBytes: LOG_RECORD_MAX },
    )
    void durable.lastSeq('log').then(
      (last) => {
        end = last
        // An index at or past the log's end has caught up (past it: the log began anew; see `#rewound`).
        if (store.position().logSeq >= last) this.#caughtUp = true
      },
      (err: unknown) => log.warn({ err }, 'cannot read where the job log ends'),
    )
  }

  /**
   * Where the streams end, with the index's positions moved back to them when a stream holds
   * less than the index applied (it began anew: the in-process streams of a new `keeper dev`).
   */
  async #rewind(): Promise<void> {
    const { store, log, durable } = this.#o
    const [logEnd, eventsEnd] = await Promise.all([durable.lastSeq('log'), durable.lastSeq('events')])
    const at = store.position()
    if (logEnd < at.logSeq || eventsEnd < at.eventsSeq) {
      log.warn({ index: at, log: logEnd, events: eventsEnd }, 'the streams hold less than this index applied (they began anew): the index keeps its jobs and goes on from where they end')
      store.rewind({ ...(logEnd < at.logSeq ? { logSeq: logEnd } : {}), ...(eventsEnd < at.eventsSeq ? { eventsSeq: eventsEnd } : {}) })
    }
  }

  /** Every queen must sign with the same key: hives and workers pin one. */
  #checkKey(data: unknown) {
    const key = (data as { key?: unknown } | null)?.key
    if (typeof key !== 'string' || key === this.#o.publicKey || this.#otherKey === key) return
    this.#otherKey = key
    this.#o.log.error(
      { theirs: key, ours: this.#o.publicKey, by: (data as { by?: unknown }).by },
      'the leading queen signs work with another key: this queen will not take over (hives and workers would refuse its work); give every queen the same --signing-key',
    )
  }

  async #takeOver(): Promise<void> {
    if (this.#state !== 'following') return
    const { durable, store, events, coordinator, log } = this.#o
    const writer = this.writer
    this.#state = 'taking-over'
    log.info({ holder: this.holder }, 'took the leader lease: catching up with the job log')
    await this.#replica?.stop()
    this.#replica = undefined
    try {
      await this.#rewind()
      // Everything the last leader wrote, then lead from the log's end.
      const applier = new RecordApplier(store, log)
      let readTo = store.position().logSeq
      const catchUp = durable.read(
        'log',
        (m) => {
          this.#checkKey(m.data)
          events.notify(applier.apply(m))
          readTo = m.seq
        },
        { afterSeq: readTo, follow: false, maxBytes: LOG_RECORD_MAX },
      )
      await catchUp.done
      if (this.#otherKey !== undefined) throw new ApiaryError('conflict', 'the job log was written by a queen that signs with another key')
      // A group the last leader never finished is dropped: its events come again from the stream.
      if (applier.pending) log.warn('the job log ends inside a group its writer never finished: dropped it')
      writer.lastSeq = await durable.lastSeq('log')
      if (writer.lastSeq !== readTo) throw new ApiaryError('conflict', `the job log moved on while catching up (${writer.lastSeq} vs ${readTo})`)
    } catch (err) {
      log.warn({ err }, 'cannot take over: following again')
      this.#state = 'following'
      this.#follow()
      return
    }
    if (this.#state !== 'taking-over') return
    events.reset()
    this.#state = 'leading'
    coordinator.lead()
    log.info({ holder: this.holder, logSeq: writer.lastSeq }, 'leading')
  }

  async #stepDown(why: string): Promise<void> {
    if (this.#state !== 'leading') return
    this.#o.log.warn({ holder: this.holder, why }, 'no longer leading: following the job log')
    this.#state = 'following'
    await this.#o.coordinator.stepDown()
    await this.#o.events.settle()
    this.#follow()
  }

  /** Stops following or leading; gives the lease up so a standby takes over at once. */
  async close(): Promise<void> {
    const was = this.#state
    this.#state = 'closed'
    clearTimeout(this.#timer)
    clearTimeout(this.#deadman)
    await this.#turn
    await this.#replica?.stop()
    if (was === 'leading') {
      // What is queued is written, with the state of the runs it changed, if the log takes it
      // soon; else the next leader redoes it. Only then are the runs dropped: a group written
      // after would carry events and their stream position without that state.
      await this.#o.coordinator.stopTaking()
      await Promise.race([this.#o.events.stored().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      await this.#o.events.settle()
      await this.#o.coordinator.stepDown()
      await this.#lease
        .release()
        .catch((err: unknown) => this.#o.log.warn({ err }, 'cannot give the leader lease up'))
    }
  }
}

/** The largest job-log record a queen reads: a job of 100,000 nodes with 1 MiB of stdin fits. */
export const LOG_RECORD_MAX = 8 * 1024 * 1024
