import { ApiaryError } from '../errors.ts'
import type { Logger } from '../runtime/log.ts'
import { subjects } from '../subjects.ts'
import { subjectMatches } from './bus.ts'

/**
 * What must survive a crash travels through streams (DESIGN.md, "Durability and failover").
 * Two implementations behind one interface, as for the bus: JetStream (the distributed
 * engine) and in-process (the embedded cluster, whose store lives as long as its process).
 * Both pass the same conformance suite (test/conformance/durable.test.ts).
 *
 * - `events` (APIARY_EVENTS) holds every node event and hive verdict, on the subjects the
 *   producers already publish (`apiary.ev.>`, `apiary.sev.>`, `apiary.hev.>`): a core
 *   subscriber (a hive) still hears them live; the leader queen consumes them durably.
 * - `log` (APIARY_LOG) holds the leader queen's numbered job log (`apiary.log`), from which
 *   every queen builds its local index and any index can be rebuilt.
 * - leases (a KV bucket, APIARY_LEASES) say who leads.
 * - secrets (a KV bucket, APIARY_SECRETS) hold the queen's wrapped data key of each running job
 *   whose operation has env values or stdin; the job log holds only what that key seals.
 * - claims (a KV bucket, APIARY_CLAIMS) say which SSH worker of a region took each (job, node)
 *   and how it ended, so that the region's SSH workers run it at most once between them.
 */

/** The streams apiary keeps. */
export type StreamName = 'events' | 'log'

/** A message of a stream as a reader gets it. */
export interface StreamMessage {
  readonly subject: string
  readonly data: unknown
  /** The stream's sequence number: increasing, never reused, never 0. */
  readonly seq: number
  /**
   * How many times this consumer was handed it (1 the first time; always 1 for a `read`). Over
   * JetStream, after the consumer's name was taken up again, a lower bound (at least 2 for what
   * an earlier instance was handed).
   */
  readonly deliveries: number
  /**
   * Acknowledges this message and every earlier one this consumer was handed (a no-op for a
   * `read`). Unacknowledged ones come again after the consumer's `ackWaitMs`, before newer ones.
   */
  ack(): void
}

export interface DurablePublishOptions {
  /**
   * Dedupe id: a second publish with the same id within the dedupe window is stored once
   * (and resolves with `duplicate: true`). Producers use (job, node, kind, attempt).
   */
  id: string
  /**
   * Retried (through disconnects, a restarting server, a stream not yet made) until stored or
   * until this time (epoch ms) passes; then rejects with `ApiaryError` code `timeout`.
   */
  deadline: number
  /**
   * Fencing: stored only when the stream's last sequence is still this; otherwise rejects at
   * once with `ApiaryError` code `conflict` (another writer took over). The log's writer uses it.
   * The dedupe id is checked first: a writer's retry of what was stored is a duplicate, not a conflict.
   */
  expectLastSeq?: number
  /** Stops the retries: rejects with `timeout` (or `closed` when the bus closes). */
  signal?: AbortSignal
}

export interface PublishReceipt {
  seq: number
  duplicate: boolean
}

export interface ConsumeOptions {
  /** A message not acknowledged this long after it was handed out is handed out again. */
  ackWaitMs: number
  /** A body larger than this is acknowledged and dropped unread (logged, rate-limited). */
  maxBytes: number
}

export interface ReadOptions {
  /** Starts after this sequence number (0: from the first message the stream holds). */
  afterSeq: number
  /** Keeps reading as new messages come (true), or stops once caught up with the last one (false). */
  follow: boolean
  maxBytes: number
}

export interface StreamReader {
  /** Resolves once the reader is stopped (by `stop`, or, for `follow: false`, once caught up). */
  readonly done: Promise<void>
  stop(): Promise<void>
}

/**
 * A lease on one key of the lease bucket, held by `holder`. Nobody else may hold it until the
 * holder stops renewing and the bucket's TTL passes (no clocks compared across machines).
 */
export interface Lease {
  /**
   * Takes the lease when nobody holds it, or renews it when `holder` does (checked by the
   * key's revision). True when held now; false when another holder has it.
   */
  acquire(): Promise<boolean>
  /** Gives the lease up at once, if held (a clean stop), so a standby need not wait the TTL. */
  release(): Promise<void>
  /** Who holds it now, or null. */
  holder(): Promise<string | null>
}

/** One key's value in a bucket, and the revision it was written at (the bucket stream's sequence). */
export interface Revisioned {
  readonly value: string
  readonly revision: number
}

/**
 * Keys written only with a revision check, shared by every handle on the bucket: create-if-absent
 * and compare-and-set. The SSH workers' claims (`CLAIMS_BUCKET`), keyed by `claimKey`. Its calls
 * reject with `unavailable` until `ensure` made the bucket, while the server is away, or when the
 * identity may not touch the key; with `timeout` when `signal` aborts first (the write may still
 * land).
 */
export interface ClaimStore {
  /** The key's value now, or undefined (never written, deleted, or aged out). */
  get(key: string, opts?: { signal?: AbortSignal }): Promise<Revisioned | undefined>
  /** Writes `value` only if the key holds none: its revision, or undefined when it holds one already. */
  create(key: string, value: string, opts?: { signal?: AbortSignal }): Promise<number | undefined>
  /** Writes `value` only if the key is still at `revision`: the new revision, or undefined when it moved on. */
  update(key: string, value: string, revision: number, opts?: { signal?: AbortSignal }): Promise<number | undefined>
}

/** A `ClaimStore` that may also delete a key at a revision: what a lease is made of. */
export interface RevisionedBucket extends ClaimStore {
  /** Deletes the key if it is still at `revision`; false when it moved on. */
  delete(key: string, revision: number): Promise<boolean>
}

/**
 * A lease over a revisioned bucket, the same for every implementation: taken by a create, renewed
 * by an update at the revision this holder last wrote (one round trip), read back when that fails.
 */
export function leaseOn(bucket: RevisionedBucket, key: string, holder: string): Lease {
  // The revision of this holder's last write: a renewal is then one update, not a read and an
  // update (under load, each round trip is one more chance to miss the renewal's deadline).
  let mine: number | undefined
  return {
    async acquire() {
      if (mine !== undefined) {
        mine = await bucket.update(key, holder, mine)
        if (mine !== undefined) return true
        // Someone wrote it since (or it expired and was taken): read who holds it now.
      }
      const e = await bucket.get(key)
      if (e && e.value !== holder) return false
      // A revision check either way: two standbys racing for a free lease, one wins.
      mine = e ? await bucket.update(key, holder, e.revision) : await bucket.create(key, holder)
      return mine !== undefined
    },
    async release() {
      mine = undefined
      const e = await bucket.get(key)
      if (e?.value === holder) await bucket.delete(key, e.revision)
    },
    async holder() {
      return (await bucket.get(key))?.value ?? null
    },
  }
}

/** How long streams keep what they hold, and how leases expire (set by the queen with `ensure`). */
export interface DurableConfig {
  /** Copies of each stream and of the lease bucket: 1 on a single server, 3 on a cluster. */
  replicas: number
  /** How long `events` keeps a message (it is consumed within seconds; this covers a long outage). */
  eventsMaxAgeMs: number
  /** How long `log` keeps the job log (the queens' indexes keep jobs as long). */
  logMaxAgeMs: number
  /**
   * The most bytes `events` holds of what is not consumed yet (the leader trims what it
   * applied): full, it refuses new messages, whose producers retry until their deadline, and
   * never drops one not yet consumed (a flood on a producer's own subjects delays events, it
   * cannot push them out).
   */
  eventsMaxBytes: number
  /** The most bytes `log` holds; the oldest records go first. */
  logMaxBytes: number
  /**
   * The most bytes the claims bucket holds (a claim with its final event is about 600 bytes).
   * Full, it refuses new claims (an SSH worker then refuses the task, `unclaimed`) and never
   * drops one it holds: a dropped claim would let another SSH worker run its task again.
   */
  claimsMaxBytes: number
  /** A lease not renewed for this long expires. */
  leaseTtlMs: number
  /** How long a dedupe id is remembered. */
  dedupeWindowMs: number
}

/**
 * Small values by key, kept until deleted or until the bucket's max age (the job log's) passes:
 * the queen's wrapped per-job data keys (`APIARY_SECRETS`). Only the queen's identity may use it.
 * Its calls reject with `unavailable` until `ensure` made the bucket, or while the server is away;
 * no message ever holds a value.
 */
export interface SecretStore {
  put(key: string, value: string): Promise<void>
  /** The value, or undefined when there is none (never put, deleted, or aged out). */
  get(key: string): Promise<string | undefined>
  /** Forgets the key and every earlier value of it; forgetting an absent key is no error. */
  delete(key: string): Promise<void>
}

export interface Durable {
  /**
   * Makes (or updates) the streams and the lease bucket. Only the queen may; idempotent. Rejects
   * with a clear message when the server has no JetStream for this account.
   */
  ensure(cfg: DurableConfig): Promise<void>
  /**
   * Stores a message on the stream that holds `subject`; resolves once the stream has it. Plain
   * subscribers of `subject` hear it too, as they hear a plain publish (which the stream also stores).
   * A subject no stream holds is retried until the deadline, like a stream not made yet.
   */
  publish(subject: string, data: unknown, opts: DurablePublishOptions): Promise<PublishReceipt>
  /**
   * Hands the messages of `stream` to the durable consumer `name`, in order, one at a time
   * (the next after the handler returns or its promise settles), from the first it has not
   * acknowledged. A consumer of the same name elsewhere shares the position (one leader at a
   * time uses it). Survives disconnects and server restarts.
   */
  consume(stream: StreamName, name: string, handler: (m: StreamMessage) => void | Promise<void>, opts: ConsumeOptions): StreamReader
  /**
   * Reads `stream` in order without a durable position (a standby's index, a rebuild). Without
   * `follow`, a stream not made yet reads as empty; with it, the reader waits for the stream.
   */
  read(stream: StreamName, handler: (m: StreamMessage) => void | Promise<void>, opts: ReadOptions): StreamReader
  /** The stream's last sequence number (0 when empty or not made yet). */
  lastSeq(stream: StreamName): Promise<number>
  /**
   * Removes the messages of `events` before `belowSeq`: those the leader applied, stored and
   * acknowledged. Only the queen may; it keeps the stream to what is still to be consumed.
   */
  trimEvents(belowSeq: number): Promise<void>
  /** A lease on `key`; its calls reject with `unavailable` until `ensure` made the bucket, or while the server is away. */
  lease(key: string, holder: string): Lease
  /** The secrets bucket (`SECRETS_BUCKET`). */
  readonly secrets: SecretStore
  /** The claims bucket (`CLAIMS_BUCKET`): one key per (region, job, node), `claimKey`. */
  readonly claims: ClaimStore
}

/** The stream names as the server knows them. */
export const STREAMS = { events: 'APIARY_EVENTS', log: 'APIARY_LOG' } as const satisfies Record<StreamName, string>
export const LEASE_BUCKET = 'APIARY_LEASES'
export const SECRETS_BUCKET = 'APIARY_SECRETS'
export const CLAIMS_BUCKET = 'APIARY_CLAIMS'
/**
 * How long a claim is kept after its last write: the longest a grant lives (7 days, so no offer
 * of the task comes later) and a day, as a worker's journal keeps an entry.
 */
export const CLAIMS_MAX_AGE_MS = 8 * 24 * 3600_000
/** The largest claim the bucket takes: its final event is at most some 32 KiB. */
export const CLAIM_MAX_BYTES = 64 * 1024

/**
 * The claims bucket's key of one task: `<region>.<job>.<node>`, the node escaped into one token
 * of letters, digits, `-` and `_` (any other character, the dot of a host name among them, as
 * `=` and its two hex digits). The region comes first so that an SSH worker's credential can be
 * limited to its region's keys (`$KV.APIARY_CLAIMS.<region>.>`).
 */
export function claimKey(region: string, jobId: string, node: string): string {
  const token = node.replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  const key = `${region}.${jobId}.${token}`
  if (!/^[A-Za-z0-9][\w-]*\.j[0-9a-z]+\.[\w=-]+$/.test(key)) throw new ApiaryError('invalid_input', `no claim key for region "${region.slice(0, 64)}", job "${jobId.slice(0, 64)}"`, 'key')
  return key
}

/**
 * A key of a bucket: NATS KV takes letters, digits and `-_=.` (a job id is one). At most 1,024
 * characters: a claim's key holds a node id of up to 253, escaped (the key is part of a subject,
 * and nats-server takes a protocol line of up to 4 KiB).
 */
export function checkBucketKey(key: string): void {
  if (!/^[-\w=]+(\.[-\w=]+)*$/.test(key) || key.length > 1024) throw new ApiaryError('invalid_input', `key "${key.slice(0, 64)}" is not a bucket key (letters, digits, -_= and dots)`, 'key')
}

/** JSON text of a body; `undefined` (which has none) travels as `null`, as over NATS. */
export function toJson(data: unknown): string {
  return JSON.stringify(data) ?? 'null'
}

/** The subjects each stream stores. */
export const STREAM_SUBJECTS = { events: subjects.eventsStream, log: [subjects.log] } as const satisfies Record<StreamName, readonly string[]>

/** The stream that stores `subject`, if any. */
export function streamOf(subject: string): StreamName | undefined {
  for (const name of ['events', 'log'] as const) {
    if (STREAM_SUBJECTS[name].some((p) => subjectMatches(p, subject))) return name
  }
  return undefined
}

/**
 * How many messages a durable consumer may have handed out and not had acknowledged: past it,
 * nothing new comes until acknowledgements or redeliveries catch up (JetStream's max_ack_pending).
 */
export const MAX_ACK_PENDING = 4096

/** What a reader's loop gets: its stop signal, and the one way it hands a message out. */
export interface ReaderLoop {
  readonly signal: AbortSignal
  /** Runs the handler on `m`; a throw or rejection is logged and leaves `m` unacknowledged. */
  hand(m: StreamMessage): Promise<void>
}

/**
 * A `StreamReader` around `loop`, which runs until it returns or `signal` aborts. `stop()`
 * from inside the handler does not wait for the loop (which waits for that handler).
 */
export function startReader(what: string, handler: (m: StreamMessage) => void | Promise<void>, log: Logger, loop: (r: ReaderLoop) => Promise<void>): StreamReader {
  const ac = new AbortController()
  let inHandler = false
  const hand = async (m: StreamMessage) => {
    inHandler = true
    try {
      await handler(m)
    } catch (err) {
      log.error({ err, subject: m.subject, seq: m.seq }, `${what} handler failed`)
    } finally {
      inHandler = false
    }
  }
  const done = (async () => {
    try {
      await loop({ signal: ac.signal, hand })
    } catch (err) {
      if (!ac.signal.aborted) log.error({ err }, `${what} stopped on an error`)
    }
  })()
  return {
    done,
    stop() {
      ac.abort()
      return inHandler ? Promise.resolve() : done
    },
  }
}

/** Per signal, the callbacks of every `linkedSignal` hooked to it, run by one listener. */
const hooked = new WeakMap<AbortSignal, Set<() => void>>()

function hook(s: AbortSignal, fn: () => void): () => void {
  let fns = hooked.get(s)
  if (!fns) {
    const set = new Set<() => void>()
    hooked.set(s, (fns = set))
    s.addEventListener('abort', () => {
      for (const f of [...set]) f()
      set.clear()
    }, { once: true })
  }
  fns.add(fn)
  return () => fns.delete(fn)
}

/**
 * A signal that aborts when any of `signals` does, and `dispose()` to unhook it. Unlike
 * `AbortSignal.any`, nothing stays attached to a long-lived signal once the caller is done.
 * One listener per long-lived signal (a bus's close) serves every link: hooking and unhooking
 * cost O(1), however many publishes are in flight (an EventTarget's removeEventListener walks
 * its listeners).
 */
export function linkedSignal(...signals: Array<AbortSignal | undefined>): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController()
  const abort = () => ac.abort()
  const unhooks: Array<() => void> = []
  for (const s of signals) {
    if (s === undefined) continue
    if (s.aborted) ac.abort()
    else unhooks.push(hook(s, abort))
  }
  return { signal: ac.signal, dispose: () => unhooks.forEach((u) => u()) }
}

/**
 * `p`'s outcome, or the reason of the first of `signals` to abort, whichever comes first. Hooked
 * as `linkedSignal` hooks (no AbortController, no listener added to an EventTarget): cheap
 * enough for every publish.
 */
export function raceSignals<T>(p: Promise<T>, ...signals: Array<AbortSignal | undefined>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const unhooks: Array<() => void> = []
    const unhook = () => {
      for (const u of unhooks) u()
    }
    // Handled first: `p` rejecting after a signal won is never an unhandled rejection.
    p.then(
      (v) => {
        unhook()
        resolve(v)
      },
      (err: unknown) => {
        unhook()
        reject(err)
      },
    )
    for (const s of signals) {
      if (s === undefined) continue
      if (s.aborted) {
        unhook()
        return reject(s.reason as unknown)
      }
      unhooks.push(
        hook(s, () => {
          unhook()
          reject(s.reason as unknown)
        }),
      )
    }
  })
}

/**
 * Resolves after `ms` (never, when infinite), at once when `signal` aborts, or when something
 * calls the wakers in `wakeUp`; the timer never holds the process open.
 */
export function pause(ms: number, signal?: AbortSignal, wakeUp?: Set<() => void>): Promise<void> {
  if (signal?.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      wakeUp?.delete(done)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = Number.isFinite(ms) ? setTimeout(done, Math.max(0, ms)) : undefined
    timer?.unref()
    wakeUp?.add(done)
    signal?.addEventListener('abort', done, { once: true })
  })
}

