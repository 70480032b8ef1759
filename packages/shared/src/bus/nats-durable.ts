import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  JetStreamApiError,
  JetStreamApiCodes,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream'
import { type KV, Kvm } from '@nats-io/kv'
import { type NatsConnection, nanos } from '@nats-io/transport-node'
import { ApiaryError, errorMessage, isApiaryError } from '../errors.ts'
import type { Logger } from '../runtime/log.ts'
import { abortable } from '../runtime/abort.ts'
import { warnRateLimited } from '../runtime/rate-limit.ts'
import { readBytes } from './bus.ts'
import {
  checkBucketKey,
  CLAIM_MAX_BYTES,
  CLAIMS_BUCKET,
  CLAIMS_MAX_AGE_MS,
  type Durable,
  type DurableConfig,
  LEASE_BUCKET,
  leaseOn,
  linkedSignal,
  MAX_ACK_PENDING,
  pause,
  type PublishReceipt,
  raceSignals,
  type ReaderLoop,
  type RevisionedBucket,
  SECRETS_BUCKET,
  type SecretStore,
  STREAM_SUBJECTS,
  startReader,
  type StreamName,
  STREAMS,
  toJson,
} from './durable.ts'

/** The streams and leases of a NATS bus, and the hook its `close()` calls first. */
export interface NatsDurable extends Durable {
  /** Stops every reader and consumer and every publish still retrying. */
  close(): void
}

const enc = new TextEncoder()
const dec = new TextDecoder()

/**
 * How many messages one pull asks for (they wait in the client, handed out one at a time, so
 * their ack wait runs meanwhile), and how long a pull lasts: a server that dies under a reader
 * is noticed after two missed heartbeats, half that each.
 */
const PULL = { max_messages: 256, expires: 10_000 }
/** One publish attempt waits this long for the stream's acknowledgement before it tries again. */
const ATTEMPT_MS = 2000
/** How long `ensure` retries while JetStream is not ready (a cluster still electing its leader). */
const ENSURE_PATIENCE_MS = 30_000
/** How often a read that stops once caught up checks whether what was left of it was trimmed. */
const READ_WATCH_MS = 500
/**
 * How long a following reader may hear nothing while its stream holds messages past where it
 * got to before it makes its consumer again: what nats.js would notice only after two missed
 * heartbeats, or after a backoff as long as a pull, once a restarted server lost its consumer.
 */
const FOLLOW_STALL_MS = 2000

/** Milliseconds before retry `n` (0-based): 100 ms doubling to 2 s, with jitter so retries spread. */
function backoff(n: number): number {
  const base = Math.min(2000, 100 * 2 ** Math.min(n, 5))
  return base / 2 + Math.random() * (base / 2)
}

const apiCode = (err: unknown): number | undefined => (err instanceof JetStreamApiError ? err.code : undefined)
const isNotFound = (err: unknown) => apiCode(err) === JetStreamApiCodes.StreamNotFound || apiCode(err) === JetStreamApiCodes.ConsumerNotFound
const isWrongLastSeq = (err: unknown) => apiCode(err) === JetStreamApiCodes.StreamWrongLastSequence || apiCode(err) === JetStreamApiCodes.StreamWrongLastSequenceUnknown
/** No responders on the JetStream API, or JetStream off for the account. */
const isNoJetStream = (err: unknown) => (err as { name?: unknown } | null)?.name === 'JetStreamNotEnabled' || apiCode(err) === JetStreamApiCodes.JetStreamNotEnabledForAccount
/** A refusal that retrying cannot change (a bad request), as opposed to a server that is not ready. */
const isRefusal = (err: unknown) => err instanceof JetStreamApiError && err.status < 500 && !isNotFound(err)

/** The first part of a stream's config: what apiary relies on, the same on every `ensure`. */
function streamConfig(name: string, subjects: readonly string[], maxAgeMs: number, maxBytes: number, cfg: DurableConfig, discard: DiscardPolicy = DiscardPolicy.Old): Partial<StreamConfig> & { name: string } {
  return {
    name,
    subjects: [...subjects],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard,
    max_age: nanos(maxAgeMs),
    max_bytes: maxBytes,
    // The server refuses a dedupe window longer than the stream keeps messages.
    duplicate_window: nanos(Math.min(cfg.dedupeWindowMs, maxAgeMs)),
    num_replicas: cfg.replicas,
  }
}

/**
 * Streams, durable consumers and leases over JetStream, on the bus's own connection (so its
 * reply inbox prefix, and with it its permissions, apply). Publishes retry until their deadline
 * through disconnects and restarts; consumers and readers re-pull after them.
 *
 * A durable consumer acknowledges with AckAll (nats-server accepts it for pull consumers): an
 * ack covers every earlier message. It holds at most `MAX_ACK_PENDING` unacknowledged.
 *
 * What an acknowledged write survives: nats-server 2.9 cannot be told to fsync each write (it
 * refuses `sync_interval`, which 2.10 brought, with `always` among its values): a stored message
 * is in the OS page cache, so it outlives the server's crash (kill -9, tested) but not the
 * machine's power loss unless other replicas (R3) hold it.
 */
export function createNatsDurable(nc: NatsConnection, log: Logger): NatsDurable {
  // No API call at creation: a worker that only publishes needs no rights beyond its subjects.
  const js: JetStreamClient = jetstream(nc)
  let jsmP: Promise<JetStreamManager> | undefined
  const jsm = () => (jsmP ??= jetstreamManager(nc, { checkAPI: false }))
  // Read from the stream leader (no direct get from a replica that may lag), so a lease's
  // revision is always the latest.
  const leases = natsBucket(js, LEASE_BUCKET, { direct: false })
  const closing = new AbortController()
  const gone = () => closing.signal.aborted || nc.isClosed()
  // The first sequence a consumer restarted in this process must start from, should its
  // re-creation fail between the delete and the create.
  const restartAt = new Map<string, number>()
  // What each running consumer and reader does when the connection is back: it makes its
  // consumer again at once, from where it got to, rather than wait for nats.js to find out.
  const onReconnect = new Set<() => void>()
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') for (const fn of [...onReconnect]) fn()
  })().catch(() => undefined)

  async function ensureOnce(cfg: DurableConfig): Promise<void> {
    const m = await jsm()
    const wanted = [
      // Full, events refuses new messages (retried until their deadline) rather than drop ones
      // not consumed yet; the leader trims what it applied (`trimEvents`).
      streamConfig(STREAMS.events, STREAM_SUBJECTS.events, cfg.eventsMaxAgeMs, cfg.eventsMaxBytes, cfg, DiscardPolicy.New),
      streamConfig(STREAMS.log, STREAM_SUBJECTS.log, cfg.logMaxAgeMs, cfg.logMaxBytes, cfg),
      // The lease bucket, with the TTL as max age.
      bucketConfig(LEASE_BUCKET, cfg.leaseTtlMs, -1, cfg, { discard: DiscardPolicy.New, purge: true, direct: false }),
      // The secrets bucket, kept as long as the job log (a job runs no longer than the log keeps
      // it). Full, it refuses a new key rather than drop a running job's; a purge (rollup) takes
      // every earlier revision of a key with it.
      bucketConfig(SECRETS_BUCKET, cfg.logMaxAgeMs, SECRETS_MAX_BYTES, cfg, { discard: DiscardPolicy.New, purge: true, direct: false }),
      // The claims bucket: full, it refuses new claims (their SSH tasks are refused) and never
      // drops a held one, whose task another SSH worker would then run again; no claim over
      // CLAIM_MAX_BYTES, so no credential fills it with a few writes. Nobody purges it (no
      // rollups: an SSH worker cannot wipe a key's history), and it is read with direct gets,
      // whose subject names the key, so that an SSH worker's credential can be limited to its
      // region's keys.
      bucketConfig(CLAIMS_BUCKET, CLAIMS_MAX_AGE_MS, cfg.claimsMaxBytes, cfg, { discard: DiscardPolicy.New, purge: false, direct: true, maxMsgBytes: CLAIM_MAX_BYTES }),
    ]
    for (const sc of wanted) {
      try {
        await m.streams.info(sc.name)
        await m.streams.update(sc.name, sc)
      } catch (err) {
        if (!isNotFound(err)) throw err
        await m.streams.add(sc)
      }
    }
  }

  async function streamInfo(stream: StreamName) {
    try {
      return await (await jsm()).streams.info(STREAMS[stream])
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  /**
   * The durable consumer `name`, made when absent. When an earlier instance was handed messages
   * it did not acknowledge, it is made again from the first of them: JetStream would otherwise
   * hand out newer ones first and those only after their ack wait.
   */
  async function prepare(stream: StreamName, name: string, ackWaitMs: number): Promise<{ info: ConsumerInfo; seenThrough: number }> {
    const m = await jsm()
    const sname = STREAMS[stream]
    const key = `${sname}/${name}`
    const base: Partial<ConsumerConfig> = {
      durable_name: name,
      ack_policy: AckPolicy.All,
      ack_wait: nanos(ackWaitMs),
      max_ack_pending: MAX_ACK_PENDING,
      max_deliver: -1,
    }
    const create = (startSeq: number | undefined) =>
      m.consumers.add(sname, startSeq === undefined ? { ...base, deliver_policy: DeliverPolicy.All } : { ...base, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq })
    let info: ConsumerInfo
    try {
      info = await m.consumers.info(sname, name)
    } catch (err) {
      if (apiCode(err) !== JetStreamApiCodes.ConsumerNotFound) throw err
      info = await create(restartAt.get(key))
      restartAt.delete(key)
      return { info, seenThrough: 0 }
    }
    const floor = info.ack_floor.stream_seq
    const seenThrough = info.delivered.stream_seq
    if (seenThrough <= floor) {
      if (info.config.ack_wait !== base.ack_wait) info = await m.consumers.update(sname, name, { ack_wait: base.ack_wait })
      return { info, seenThrough: 0 }
    }
    restartAt.set(key, floor + 1)
    await m.consumers.delete(sname, name)
    info = await create(floor + 1)
    restartAt.delete(key)
    return { info, seenThrough }
  }

  /** Logs a failure of a reader's loop once per interval (the loop retries). */
  function retrying(what: string, err: unknown) {
    if (isNotFound(err)) return // the queen has not made the stream yet: quietly wait for it
    warnRateLimited(log, `${what}: JetStream failed, retrying`, { err: errorMessage(err) })
  }

  return {
    async ensure(cfg) {
      const until = Date.now() + ENSURE_PATIENCE_MS
      for (let n = 0; ; n++) {
        try {
          // The one call that asks whether the account has JetStream at all ($JS.API.INFO).
          await jetstreamManager(nc)
          return await ensureOnce(cfg)
        } catch (err) {
          if (gone()) throw new ApiaryError('closed', 'the bus is closed', undefined, { cause: err })
          if (isNoJetStream(err)) {
            throw new ApiaryError(
              'unavailable',
              `NATS has no JetStream for this account (${errorMessage(err)}): streams and leases need it; enable jetstream on the server (and, in operator mode, for the account)`,
              undefined,
              { cause: err },
            )
          }
          if (isRefusal(err)) throw new ApiaryError('invalid_input', `JetStream refused the streams' configuration: ${errorMessage(err)}`, undefined, { cause: err })
          if (Date.now() > until) throw new ApiaryError('unavailable', `JetStream did not make the streams within ${ENSURE_PATIENCE_MS} ms: ${errorMessage(err)}`, undefined, { cause: err })
          // A cluster still electing its leader, a server restarting: again.
          await pause(backoff(n), closing.signal)
        }
      }
    },

    async publish(subject, data, opts): Promise<PublishReceipt> {
      const payload = enc.encode(toJson(data))
      // Whether it was told to stop; a signal to pause on is made only for a retry.
      const stopped = () => opts.signal?.aborted === true || gone()
      const aborted = () =>
        gone()
          ? new ApiaryError('closed', `the bus closed before ${subject} was stored`)
          : new ApiaryError('timeout', `publish to ${subject} was aborted`, undefined, { cause: opts.signal?.reason })
      let last: unknown
      for (let n = 0; ; n++) {
        if (stopped()) throw aborted()
        const left = opts.deadline - Date.now()
        if (left <= 0) {
          throw new ApiaryError('timeout', `${subject} was not stored before its deadline${last === undefined ? '' : `: ${errorMessage(last)}`}`, undefined, { cause: last })
        }
        try {
          // An attempt cut off by the signal may still land: its dedupe id makes that harmless.
          const ack = await raceSignals(
            js.publish(subject, payload, {
              msgID: opts.id,
              timeout: Math.max(1, Math.min(left, ATTEMPT_MS)),
              ...(opts.expectLastSeq !== undefined ? { expect: { lastSequence: opts.expectLastSeq } } : {}),
            }),
            opts.signal,
            closing.signal,
          )
          return { seq: ack.seq, duplicate: ack.duplicate }
        } catch (err) {
          if (stopped()) throw aborted()
          // The server checks the dedupe id first: a retry of a stored message is a duplicate, never a conflict.
          if (isWrongLastSeq(err)) throw new ApiaryError('conflict', `${subject}: ${errorMessage(err)}, not ${opts.expectLastSeq} (another writer took over)`, undefined, { cause: err })
          if (isRefusal(err)) throw new ApiaryError('invalid_input', `JetStream refused ${subject}: ${errorMessage(err)}`, undefined, { cause: err })
          // A timeout, no responders (no stream yet, a server restarting), a disconnect: again.
          last = err
        }
        const { signal, dispose } = linkedSignal(opts.signal, closing.signal)
        try {
          await pause(Math.min(backoff(n), opts.deadline - Date.now()), signal)
        } finally {
          dispose()
        }
      }
    },

    consume(stream, name, handler, opts) {
      return startReader(`consumer ${name}`, handler, log, async (r: ReaderLoop) => {
        const { signal } = linkedSignal(r.signal, closing.signal)
        for (let n = 0; !signal.aborted && !gone(); n++) {
          try {
            const { info, seenThrough } = await prepare(stream, name, opts.ackWaitMs)
            const messages = await js.consumers.getConsumerFromInfo(info).consume(PULL)
            const stop = () => void messages.stop()
            signal.addEventListener('abort', stop, { once: true })
            onReconnect.add(stop)
            // Stopped while the consumer was being made: the listener came too late to hear it.
            if (signal.aborted) stop()
            try {
              // The consumer's delivery sequence of the last message handed out in this pull.
              let handed = 0
              for await (const m of messages) {
                n = 0
                if (signal.aborted) break
                // A delivery that never came (lost with the server that routed it, or numbered
                // again by a new consumer leader): acknowledging a later one would acknowledge it
                // unread (AckAll), and a handler that skips what is below its last would skip it.
                // The consumer is made again from its ack floor, so every message comes in order.
                const dseq = m.info.deliverySequence
                if (handed !== 0 && dseq !== handed + 1) {
                  warnRateLimited(log, `consumer ${name} of ${STREAMS[stream]}: a delivery went missing; starting again from the last acknowledged`, { after: handed, got: dseq })
                  break
                }
                handed = dseq
                const body = readBytes(m.data, m.subject, opts.maxBytes, log)
                if (!body) {
                  m.ack()
                  continue
                }
                // Handed out before the consumer was made again: at least once more than it counts.
                const deliveries = m.info.deliveryCount + (m.seq <= seenThrough ? 1 : 0)
                await r.hand({ subject: m.subject, data: body.data, seq: m.seq, deliveries, ack: () => m.ack() })
              }
            } finally {
              signal.removeEventListener('abort', stop)
              onReconnect.delete(stop)
              await messages.close().catch(() => undefined)
            }
          } catch (err) {
            if (signal.aborted || gone()) return
            retrying(`consumer ${name} of ${STREAMS[stream]}`, err)
          }
          await pause(backoff(n), signal)
        }
      })
    },

    read(stream, handler, opts) {
      return startReader(`reader of ${stream}`, handler, log, async (r: ReaderLoop) => {
        const { signal } = linkedSignal(r.signal, closing.signal)
        let next = opts.afterSeq + 1
        let until = Infinity
        if (!opts.follow) {
          // Caught up means: up to the last sequence when the read started. A stream not made yet reads as empty.
          const info = await streamInfo(stream)
          if (!info || info.state.last_seq < next || info.state.first_seq > info.state.last_seq) return
          until = info.state.last_seq
        }
        for (let n = 0; !signal.aborted && !gone(); n++) {
          try {
            // An ordered consumer: ephemeral, in memory, made again from where it got to after a gap or a restart.
            const c = await js.consumers.get(STREAMS[stream], { opt_start_seq: next })
            const messages = await c.consume(PULL)
            const stop = () => void messages.stop()
            signal.addEventListener('abort', stop, { once: true })
            onReconnect.add(stop)
            // Stopped while the consumer was being made: the listener came too late to hear it.
            if (signal.aborted) stop()
            // Caught up also when what was left was trimmed or aged out from the front before it
            // came: no message may come to say so. A follower that hears nothing while the
            // stream holds more makes its consumer again.
            let trimmed = false
            let heard = performance.now()
            const watch = opts.follow
              ? setInterval(() => {
                  if (performance.now() - heard < FOLLOW_STALL_MS) return
                  void streamInfo(stream).then(
                    (i) => {
                      // Messages it has not had: past where it got to, and not aged out (an empty stream keeps its last sequence).
                      const waiting = i !== undefined && i.state.messages > 0 && i.state.last_seq >= Math.max(next, i.state.first_seq)
                      if (waiting && performance.now() - heard >= FOLLOW_STALL_MS) {
                        warnRateLimited(log, `reader of ${STREAMS[stream]}: nothing came while the stream holds more; making its consumer again`, { next, last: i?.state.last_seq })
                        stop()
                      } else if (!waiting) heard = performance.now() // idle, not stalled: the next check a stall period from now
                    },
                    () => undefined,
                  )
                }, FOLLOW_STALL_MS / 2)
              : setInterval(() => {
                  void streamInfo(stream).then(
                    (i) => {
                      if ((i?.state.first_seq ?? Infinity) > until) {
                        trimmed = true
                        stop()
                      }
                    },
                    () => undefined,
                  )
                }, READ_WATCH_MS)
            watch?.unref()
            try {
              for await (const m of messages) {
                n = 0
                heard = performance.now()
                if (signal.aborted || m.seq < next) continue
                next = m.seq + 1
                const body = readBytes(m.data, m.subject, opts.maxBytes, log)
                if (body) await r.hand({ subject: m.subject, data: body.data, seq: m.seq, deliveries: 1, ack: () => undefined })
                heard = performance.now()
                if (!opts.follow && m.seq >= until) return
                // Nothing more here yet (a replica catching up), or the rest aged out (from the front).
                if (!opts.follow && m.info.pending === 0 && ((await streamInfo(stream))?.state.first_seq ?? Infinity) > until) return
              }
            } finally {
              clearInterval(watch)
              signal.removeEventListener('abort', stop)
              onReconnect.delete(stop)
              await messages.close().catch(() => undefined)
            }
            if (trimmed) return
          } catch (err) {
            if (signal.aborted || gone()) return
            retrying(`reader of ${STREAMS[stream]}`, err)
          }
          await pause(backoff(n), signal)
        }
      })
    },

    async lastSeq(stream) {
      try {
        return (await streamInfo(stream))?.state.last_seq ?? 0
      } catch (err) {
        throw new ApiaryError(gone() ? 'closed' : 'unavailable', `cannot read the last sequence of ${STREAMS[stream]}: ${errorMessage(err)}`, undefined, { cause: err })
      }
    },

    async trimEvents(belowSeq) {
      try {
        await (await jsm()).streams.purge(STREAMS.events, { seq: belowSeq })
      } catch (err) {
        throw new ApiaryError(gone() ? 'closed' : 'unavailable', `cannot trim ${STREAMS.events} below ${belowSeq}: ${errorMessage(err)}`, undefined, { cause: err })
      }
    },

    lease: (key, holder) => leaseOn(leases, key, holder),

    secrets: natsSecrets(js),

    claims: natsBucket(js, CLAIMS_BUCKET, { direct: true }),

    close() {
      closing.abort()
    },
  }
}

/** The most bytes the secrets bucket holds: a wrapped data key is about 100 bytes, so some 100,000 running jobs with secrets. */
const SECRETS_MAX_BYTES = 16 * 1024 * 1024

/**
 * A bucket's stream as @nats-io/kv makes one: one revision per key, `maxAgeMs` as its TTL.
 * `purge`: a key may be purged (a rollup header, which also takes its earlier revisions);
 * `direct`: read by direct gets, from any replica.
 */
function bucketConfig(
  bucket: string,
  maxAgeMs: number,
  maxBytes: number,
  cfg: DurableConfig,
  o: { discard: DiscardPolicy; purge: boolean; direct: boolean; maxMsgBytes?: number },
): Partial<StreamConfig> & { name: string } {
  return {
    ...streamConfig(`KV_${bucket}`, [`$KV.${bucket}.>`], maxAgeMs, maxBytes, cfg, o.discard),
    ...(o.maxMsgBytes !== undefined ? { max_msg_size: o.maxMsgBytes } : {}),
    max_msgs_per_subject: 1,
    allow_rollup_hdrs: o.purge,
    deny_delete: true,
    deny_purge: !o.purge,
    allow_direct: o.direct,
  }
}

/**
 * A bucket's keys with revision checks over JetStream KV, bound without an API call. Without
 * `direct`, read from the stream's leader (`STREAM.MSG.GET`: a replica that lags cannot hand out
 * an old revision); with it, by a direct get whose subject names the key, which any replica
 * answers and a permission can limit to some keys.
 */
function natsBucket(js: JetStreamClient, name: string, o: { direct: boolean }): RevisionedBucket {
  let kvP: Promise<KV> | undefined
  const bucket = () => (kvP ??= new Kvm(js).open(name, { allow_direct: o.direct }))
  const call = async <T>(what: string, key: string, signal: AbortSignal | undefined, op: (kv: KV) => Promise<T>): Promise<T> => {
    checkBucketKey(key)
    try {
      const p = bucket().then(op)
      return await (signal ? abortable(p, signal) : p)
    } catch (err) {
      if (signal?.aborted) throw new ApiaryError('timeout', `${name}: gave up on ${what} ${key}`, undefined, { cause: err })
      if (isApiaryError(err)) throw err
      throw new ApiaryError('unavailable', `${name}: cannot ${what} ${key}: ${errorMessage(err)}`, undefined, { cause: err })
    }
  }
  /** A write's revision, or undefined when the key's revision was not the one expected. */
  const checked = async (write: Promise<number>) => {
    try {
      return await write
    } catch (err) {
      if (isWrongLastSeq(err)) return undefined
      throw err
    }
  }
  return {
    get: (key, opts) =>
      call('read', key, opts?.signal, async (kv) => {
        const e = await kv.get(key)
        return e && e.operation === 'PUT' ? { value: dec.decode(e.value), revision: e.revision } : undefined
      }),
    // A key whose last write was a delete counts as absent (@nats-io/kv writes over the marker).
    create: (key, value, opts) => call('create', key, opts?.signal, (kv) => checked(kv.create(key, enc.encode(value)))),
    update: (key, value, revision, opts) => call('update', key, opts?.signal, (kv) => checked(kv.update(key, enc.encode(value), revision))),
    delete: (key, revision) =>
      call('delete', key, undefined, async (kv) => {
        try {
          await kv.delete(key, { previousSeq: revision })
          return true
        } catch (err) {
          if (isWrongLastSeq(err)) return false
          throw err
        }
      }),
  }
}

/** The secrets bucket over JetStream KV, read from the stream leader (no direct get from a replica that lags). */
function natsSecrets(js: JetStreamClient): SecretStore {
  let kvP: Promise<KV> | undefined
  const bucket = () => (kvP ??= new Kvm(js).open(SECRETS_BUCKET, { allow_direct: false }))
  // The value is never in the message: only the key, the call and the server's reason.
  const fail = (err: unknown, what: string, key: string) => new ApiaryError('unavailable', `secrets bucket: cannot ${what} ${key}: ${errorMessage(err)}`, undefined, { cause: err })
  return {
    async put(key, value) {
      checkBucketKey(key)
      try {
        await (await bucket()).put(key, enc.encode(value))
      } catch (err) {
        throw fail(err, 'store', key)
      }
    },
    async get(key) {
      checkBucketKey(key)
      try {
        const e = await (await bucket()).get(key)
        return e && e.operation === 'PUT' ? dec.decode(e.value) : undefined
      } catch (err) {
        throw fail(err, 'read', key)
      }
    },
    async delete(key) {
      checkBucketKey(key)
      try {
        await (await bucket()).purge(key)
      } catch (err) {
        throw fail(err, 'purge', key)
      }
    },
  }
}
