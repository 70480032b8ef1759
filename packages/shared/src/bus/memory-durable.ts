import { ApiaryError } from '../errors.ts'
import type { Logger } from '../runtime/log.ts'
import { readBody } from './bus.ts'
import {
  checkBucketKey,
  CLAIM_MAX_BYTES,
  CLAIMS_MAX_AGE_MS,
  type Durable,
  type DurableConfig,
  leaseOn,
  linkedSignal,
  MAX_ACK_PENDING,
  pause,
  type PublishReceipt,
  type ReaderLoop,
  type Revisioned,
  type RevisionedBucket,
  type SecretStore,
  startReader,
  type StreamMessage,
  type StreamName,
  streamOf,
  toJson,
} from './durable.ts'

/** The process's monotonic clock: ages, windows and lease TTLs do not jump with the wall clock. */
const now = () => performance.now()

interface Stored {
  seq: number
  subject: string
  text: string
  bytes: number
  at: number
}

interface Handed {
  count: number
  /** When it is handed out again unless acknowledged (monotonic ms). */
  due: number
}

interface ConsumerState {
  ackFloor: number
  /** The next sequence never handed out. */
  next: number
  /** Handed out and not acknowledged, in sequence order (Map keeps insertion order). */
  handed: Map<number, Handed>
}

interface MemStream {
  maxAgeMs: number
  maxBytes: number
  /** What happens when full: drop the oldest (`log`), or refuse the new (`events`, so nothing unconsumed is lost). */
  discard: 'old' | 'new'
  dedupeWindowMs: number
  /** msgs[head] holds sequence `first`; the rest follow without gaps. */
  msgs: Stored[]
  head: number
  first: number
  lastSeq: number
  bytes: number
  /** Dedupe ids in the order stored, which is the order they age out. */
  ids: Map<string, { seq: number; at: number }>
  consumers: Map<string, ConsumerState>
}

/** The in-process streams of the memory bus, and its hooks into the bus. */
export interface MemoryDurable extends Durable {
  /** A plain publish on a stream's subject is stored too (without a dedupe id), as JetStream stores it. */
  capture(subject: string, text: string): void
  /** Stops every reader and consumer; publishes reject with `closed`. */
  close(): void
}

/**
 * Streams, durable consumers and leases in the process, for the embedded cluster: every role
 * sharing one memory bus sees one set of streams. Nothing reaches the disk, so the store lives
 * as long as the process; otherwise it keeps JetStream's rules (dedupe window, fencing, limits
 * discarding the oldest log records or refusing new events, redelivery after the ack wait, leases expiring after their TTL).
 *
 * `deliver` hands a stored message to the bus's plain subscribers, as a JetStream publish is
 * heard live by core subscribers.
 */
export function createMemoryDurable(log: Logger, deliver: (subject: string, text: string) => void): MemoryDurable {
  const streams = new Map<StreamName, MemStream>()
  const leases = new MemoryBucket('lease', () => closed)
  const claims = new MemoryBucket('claims', () => closed)
  const secrets = memorySecrets(() => closed)
  let closed = false
  const closing = new AbortController()
  // Everything waiting for a change (a message stored, an ack, a stream made) parks here.
  const waiting = new Set<() => void>()
  const changed = () => {
    for (const w of [...waiting]) w()
  }

  function at(s: MemStream, seq: number): Stored | undefined {
    return seq < s.first || seq > s.lastSeq ? undefined : s.msgs[s.head + seq - s.first]
  }

  /** Drops what the limits no longer allow, oldest first: past its age, and (discard old) past its bytes. */
  function prune(s: MemStream) {
    const t = now()
    while (s.msgs[s.head] && ((s.discard === 'old' && s.bytes > s.maxBytes) || s.msgs[s.head]!.at < t - s.maxAgeMs)) dropFirst(s)
    compact(s)
    for (const [id, e] of s.ids) {
      if (e.at >= t - s.dedupeWindowMs) break
      s.ids.delete(id)
    }
  }

  function dropFirst(s: MemStream) {
    s.bytes -= s.msgs[s.head]!.bytes
    s.head++
    s.first++
  }

  function compact(s: MemStream) {
    if (s.head > 1024 && s.head * 2 > s.msgs.length) {
      s.msgs = s.msgs.slice(s.head)
      s.head = 0
    }
  }

  /** Whether a discard-new stream has no room for `bytes` more. */
  const full = (s: MemStream, bytes: number) => s.discard === 'new' && s.bytes + bytes > s.maxBytes

  function append(s: MemStream, subject: string, text: string): number {
    const bytes = Buffer.byteLength(text)
    const seq = ++s.lastSeq
    s.msgs.push({ seq, subject, text, bytes, at: now() })
    s.bytes += bytes
    prune(s)
    deliver(subject, text)
    changed()
    return seq
  }

  function checkOpen() {
    if (closed) throw new ApiaryError('closed', 'the bus is closed')
  }

  /** Waits until `stream` is made (or the signal aborts): a reader may start before the queen's ensure. */
  async function made(stream: StreamName, signal: AbortSignal): Promise<MemStream | undefined> {
    for (;;) {
      const s = streams.get(stream)
      if (s || signal.aborted) return s
      await pause(Infinity, signal, waiting)
    }
  }

  function message(s: MemStream, m: Stored, deliveries: number, maxBytes: number, ack: () => void): StreamMessage | undefined {
    const body = readBody(m.text, m.bytes, m.subject, maxBytes, log)
    if (!body) return undefined
    return { subject: m.subject, data: body.data, seq: m.seq, deliveries, ack }
  }

  /** The next message for a consumer: a due redelivery first (lowest sequence), then the next new one. */
  function pick(s: MemStream, c: ConsumerState): { seq: number } | { wait: number } {
    const t = now()
    let soonest = Infinity
    for (const [seq, h] of c.handed) {
      if (seq < s.first) {
        c.handed.delete(seq)
        continue
      }
      if (h.due <= t) return { seq }
      soonest = Math.min(soonest, h.due)
    }
    c.next = Math.max(c.next, s.first)
    if (c.next <= s.lastSeq && c.handed.size < MAX_ACK_PENDING) return { seq: c.next++ }
    return { wait: soonest - t }
  }

  function ackThrough(c: ConsumerState, seq: number) {
    if (seq <= c.ackFloor) return
    c.ackFloor = seq
    for (const k of c.handed.keys()) {
      if (k > seq) break
      c.handed.delete(k)
    }
    changed()
  }

  return {
    async ensure(cfg: DurableConfig) {
      checkOpen()
      const limits = {
        events: { maxAgeMs: cfg.eventsMaxAgeMs, maxBytes: cfg.eventsMaxBytes },
        log: { maxAgeMs: cfg.logMaxAgeMs, maxBytes: cfg.logMaxBytes },
      }
      for (const name of ['events', 'log'] as const) {
        const s = streams.get(name)
        const l = { ...limits[name], dedupeWindowMs: cfg.dedupeWindowMs, discard: name === 'events' ? ('new' as const) : ('old' as const) }
        if (s) {
          Object.assign(s, l)
          prune(s)
        } else {
          streams.set(name, { ...l, msgs: [], head: 0, first: 1, lastSeq: 0, bytes: 0, ids: new Map(), consumers: new Map() })
        }
      }
      leases.made(cfg.leaseTtlMs, Infinity)
      claims.made(CLAIMS_MAX_AGE_MS, cfg.claimsMaxBytes, CLAIM_MAX_BYTES)
      secrets.made(cfg.logMaxAgeMs)
      changed()
    },

    async publish(subject, data, opts): Promise<PublishReceipt> {
      const text = toJson(data)
      const stream = streamOf(subject)
      for (;;) {
        checkOpen()
        if (opts.signal?.aborted) throw new ApiaryError('timeout', `publish to ${subject} was aborted`, undefined, { cause: opts.signal.reason })
        const s = stream && streams.get(stream)
        if (s) {
          prune(s)
          const seen = s.ids.get(opts.id)
          if (seen) return { seq: seen.seq, duplicate: true }
          if (opts.expectLastSeq !== undefined && s.lastSeq !== opts.expectLastSeq) {
            throw new ApiaryError('conflict', `${subject}: the stream's last sequence is ${s.lastSeq}, not ${opts.expectLastSeq} (another writer took over)`)
          }
          // Full: retried, as JetStream's "maximum bytes exceeded" is, until the leader trims.
          if (!full(s, Buffer.byteLength(text))) {
            const seq = append(s, subject, text)
            s.ids.set(opts.id, { seq, at: now() })
            return { seq, duplicate: false }
          }
        }
        const left = opts.deadline - Date.now()
        if (left <= 0) throw new ApiaryError('timeout', s ? `${subject} was not stored before its deadline: the stream is full` : `no stream stored ${subject} before its deadline`)
        const linked = linkedSignal(closing.signal, opts.signal)
        await pause(left, linked.signal, waiting)
        linked.dispose()
      }
    },

    consume(stream, name, handler, opts) {
      return startReader(`consumer ${name}`, handler, log, async (r: ReaderLoop) => {
        const { signal } = linkedSignal(r.signal, closing.signal)
        const s = await made(stream, signal)
        if (!s) return
        let c = s.consumers.get(name)
        if (!c) s.consumers.set(name, (c = { ackFloor: 0, next: s.first, handed: new Map() }))
        // A new instance goes on from the first unacknowledged message: whatever an earlier
        // one was handed and did not acknowledge is due again at once.
        for (const h of c.handed.values()) h.due = 0
        while (!signal.aborted) {
          prune(s)
          const p = pick(s, c)
          if ('wait' in p) {
            await pause(p.wait, signal, waiting)
            continue
          }
          const stored = at(s, p.seq)
          if (!stored) continue
          const h = c.handed.get(p.seq) ?? { count: 0, due: 0 }
          h.count++
          h.due = now() + opts.ackWaitMs
          c.handed.set(p.seq, h)
          const consumer = c
          const msg = message(s, stored, h.count, opts.maxBytes, () => ackThrough(consumer, stored.seq))
          if (msg) await r.hand(msg)
          else ackThrough(c, stored.seq)
        }
      })
    },

    read(stream, handler, opts) {
      return startReader(`reader of ${stream}`, handler, log, async (r: ReaderLoop) => {
        const { signal } = linkedSignal(r.signal, closing.signal)
        // A stream not made yet reads as empty.
        const s = opts.follow ? await made(stream, signal) : streams.get(stream)
        if (!s) return
        const until = opts.follow ? Infinity : s.lastSeq
        let next = opts.afterSeq + 1
        while (!signal.aborted && next <= until) {
          prune(s)
          next = Math.max(next, s.first)
          // What was left to read aged out or was trimmed: caught up.
          if (next > until) break
          const stored = at(s, next)
          if (!stored) {
            if (next > s.lastSeq) await pause(Infinity, signal, waiting)
            continue
          }
          next++
          const msg = message(s, stored, 1, opts.maxBytes, () => undefined)
          if (msg) await r.hand(msg)
        }
      })
    },

    async lastSeq(stream) {
      checkOpen()
      return streams.get(stream)?.lastSeq ?? 0
    },

    async trimEvents(belowSeq) {
      checkOpen()
      const s = streams.get('events')
      if (!s) return
      while (s.msgs[s.head] && s.first < belowSeq) dropFirst(s)
      compact(s)
      // Room made: publishes waiting for it go on.
      changed()
    },

    lease: (key, holder) => leaseOn(leases, key, holder),

    secrets: secrets.store,

    claims,

    capture(subject, text) {
      const stream = streamOf(subject)
      const s = stream && streams.get(stream)
      // A full discard-new stream does not store it; its plain subscribers still hear it.
      if (s && !full(s, Buffer.byteLength(text))) append(s, subject, text)
      else deliver(subject, text)
    },

    close() {
      closed = true
      closing.abort()
    },
  }
}

/** The secrets bucket in the process: values by key, each kept at most `maxAgeMs` (the bucket's max age). */
function memorySecrets(isClosed: () => boolean): { store: SecretStore; made(maxAgeMs: number): void } {
  const values = new Map<string, { value: string; at: number }>()
  let maxAgeMs: number | undefined
  const ready = (key: string): number => {
    if (isClosed()) throw new ApiaryError('closed', 'the bus is closed')
    if (maxAgeMs === undefined) throw new ApiaryError('unavailable', 'the secrets bucket is not made yet (the queen makes it with ensure)')
    checkBucketKey(key)
    return maxAgeMs
  }
  return {
    made(ms) {
      maxAgeMs = ms
    },
    store: {
      async put(key, value) {
        ready(key)
        values.set(key, { value, at: now() })
      },
      async get(key) {
        const age = ready(key)
        const e = values.get(key)
        if (e && e.at < now() - age) values.delete(key)
        return values.get(key)?.value
      },
      async delete(key) {
        ready(key)
        values.delete(key)
      },
    },
  }
}

/**
 * A bucket's keys with revision checks in the process, as a JetStream KV bucket keeps them: one
 * revision per key, numbered from one sequence for the whole bucket; a key `maxAgeMs` after its
 * last write is gone (a lease's TTL); a write past `maxBytes`, or of a value over `maxValueBytes`,
 * is refused (`unavailable`) and what the bucket holds stays.
 */
class MemoryBucket implements RevisionedBucket {
  readonly #entries = new Map<string, Revisioned & { at: number; bytes: number }>()
  readonly #what: string
  readonly #closed: () => boolean
  #limits: { maxAgeMs: number; maxBytes: number; maxValueBytes: number } | undefined
  #revision = 0
  #bytes = 0

  constructor(what: string, closed: () => boolean) {
    this.#what = what
    this.#closed = closed
  }

  /** `ensure` made the bucket, or changed its limits. */
  made(maxAgeMs: number, maxBytes: number, maxValueBytes = Infinity): void {
    this.#limits = { maxAgeMs, maxBytes, maxValueBytes }
  }

  async get(key: string, opts?: { signal?: AbortSignal }): Promise<Revisioned | undefined> {
    const e = this.#live(key, opts?.signal)
    return e && { value: e.value, revision: e.revision }
  }

  async create(key: string, value: string, opts?: { signal?: AbortSignal }): Promise<number | undefined> {
    return this.#live(key, opts?.signal) ? undefined : this.#write(key, value)
  }

  async update(key: string, value: string, revision: number, opts?: { signal?: AbortSignal }): Promise<number | undefined> {
    return this.#live(key, opts?.signal)?.revision === revision ? this.#write(key, value) : undefined
  }

  async delete(key: string, revision: number): Promise<boolean> {
    const e = this.#live(key)
    if (e?.revision !== revision) return false
    this.#drop(key, e)
    return true
  }

  /** The key's entry, unless it aged out; every call checks that the bucket may be used. */
  #live(key: string, signal?: AbortSignal) {
    if (this.#closed()) throw new ApiaryError('closed', 'the bus is closed')
    if (signal?.aborted) throw new ApiaryError('timeout', `${this.#what}: gave up on ${key}`, undefined, { cause: signal.reason })
    if (!this.#limits) throw new ApiaryError('unavailable', `the ${this.#what} bucket is not made yet (the queen makes it with ensure)`)
    checkBucketKey(key)
    const e = this.#entries.get(key)
    if (e && e.at <= now() - this.#limits.maxAgeMs) {
      this.#drop(key, e)
      return undefined
    }
    return e
  }

  #write(key: string, value: string): number {
    const limits = this.#limits!
    // What aged out is gone before room is counted (the Map is in the order keys were written).
    for (const [k, e] of this.#entries) {
      if (e.at > now() - limits.maxAgeMs) break
      this.#drop(k, e)
    }
    const old = this.#entries.get(key)
    const valueBytes = Buffer.byteLength(value)
    const bytes = key.length + valueBytes
    if (valueBytes > limits.maxValueBytes) throw new ApiaryError('unavailable', `the ${this.#what} bucket refuses ${key}: ${valueBytes} bytes, over its ${limits.maxValueBytes}`)
    if (this.#bytes - (old?.bytes ?? 0) + bytes > limits.maxBytes) throw new ApiaryError('unavailable', `the ${this.#what} bucket is full (${limits.maxBytes} bytes): ${key} refused`)
    if (old) this.#drop(key, old)
    // Last written last: the Map's order is the order keys age out.
    const e = { value, revision: ++this.#revision, at: now(), bytes }
    this.#entries.set(key, e)
    this.#bytes += bytes
    return e.revision
  }

  #drop(key: string, e: { bytes: number }): void {
    this.#entries.delete(key)
    this.#bytes -= e.bytes
  }
}
