import { connect, createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { ApiaryError, errorMessage, isApiaryError } from '../errors.ts'
import type { Logger } from '../runtime/log.ts'
import { type Bus, type BusMessage, runHandler } from './bus.ts'

export interface NatsBusOptions {
  url: string
  /** Connection name shown by the server (`apiary-queen`, `apiary-worker:web-1`). */
  name: string
  log: Logger
  /** How long the first connect may take before it fails. */
  connectTimeoutMs?: number
}

const enc = new TextEncoder()
const dec = new TextDecoder()

/**
 * The bus over a NATS connection. Reconnects forever once connected; the first connect
 * fails with `unreachable` so a process started against a dead server says so.
 */
export async function createNatsBus(opts: NatsBusOptions): Promise<Bus> {
  const { log } = opts
  // Credentials may ride in the URL (nats://user:pass@host): never in a log line or an error.
  const shownUrl = opts.url.replace(/\/\/[^@/]*@/g, '//[redacted]@')
  let nc: NatsConnection
  try {
    nc = await connect({
      servers: opts.url,
      name: opts.name,
      timeout: opts.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 10_000,
      // With async traces on, nats.js captures a stack trace for every request.
      noAsyncTraces: true,
    })
  } catch (err) {
    throw new ApiaryError('unreachable', `cannot connect to NATS at ${shownUrl}: ${errorMessage(err).replaceAll(opts.url, shownUrl)}`)
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type, server: shownUrl }, `NATS ${s.type}`)
      else if (s.type === 'error') log.error({ nats: s.type }, 'NATS error')
    }
  })().catch(() => undefined)

  const subs = new Set<Subscription>()

  // Requests share one inbox subscription, replies matched by token. Measured against nats.js's
  // own request() with async traces off (bench/bus-request, 2 cores): as fast one at a time,
  // 1.3× the requests per second at 64 in flight and 1.9× at 1,024 (a hive's window), at about
  // half the client CPU per request; nats.js allocates a timer and a deferred per request.
  const inbox = createInbox()
  let requests = 0
  const inflight = new Map<string, { reply: (m: Msg) => void; fail: (err: ApiaryError) => void }>()
  nc.subscribe(`${inbox}.*`, {
    callback: (err, m) => {
      if (err) return
      inflight.get(m.subject.slice(inbox.length + 1))?.reply(m)
    },
  })
  // Set when close() starts: requests the drain cuts off reject with `closed` even though the
  // connection only reports isClosed() once the drain has finished.
  let closing = false

  function toMessage(m: Msg): BusMessage | undefined {
    let data: unknown
    try {
      data = m.data.length === 0 ? null : JSON.parse(dec.decode(m.data))
    } catch {
      log.warn({ subject: m.subject }, 'dropped a message whose body is not JSON')
      return undefined
    }
    return {
      subject: m.subject,
      data,
      expectsReply: Boolean(m.reply),
      respond(body) {
        if (m.reply) m.respond(enc.encode(JSON.stringify(body)))
      },
    }
  }

  return {
    kind: 'nats',
    publish(subject, data) {
      try {
        nc.publish(subject, enc.encode(JSON.stringify(data)))
      } catch (err) {
        throw new ApiaryError('closed', `cannot publish to ${subject}: ${errorMessage(err)}`, undefined, { cause: err })
      }
    },
    subscribe(subject, handler, sopts) {
      let sub: Subscription
      try {
        sub = nc.subscribe(subject, {
          ...(sopts?.queue ? { queue: sopts.queue } : {}),
          callback: (err, m) => {
            if (err) {
              log.error({ err, subject }, 'subscription failed')
              return
            }
            const msg = toMessage(m)
            if (msg) runHandler(handler, msg, log)
          },
        })
      } catch (err) {
        throw new ApiaryError('closed', `cannot subscribe to ${subject}: ${errorMessage(err)}`, undefined, { cause: err })
      }
      subs.add(sub)
      return {
        unsubscribe() {
          subs.delete(sub)
          sub.unsubscribe()
        },
      }
    },
    request(subject, data, ropts) {
      if (ropts.signal?.aborted) return Promise.reject(new ApiaryError('timeout', `request to ${subject} was aborted`))
      if (closing || nc.isClosed()) return Promise.reject(new ApiaryError('closed', `the bus is closed`))
      const token = (++requests).toString(36)
      return new Promise<unknown>((resolve, reject) => {
        const settle = (fn: () => void) => {
          if (!inflight.delete(token)) return
          clearTimeout(timer)
          ropts.signal?.removeEventListener('abort', onAbort)
          fn()
        }
        const onAbort = () => settle(() => reject(new ApiaryError('timeout', `request to ${subject} was aborted`, undefined, { cause: ropts.signal?.reason })))
        const timer = setTimeout(() => settle(() => reject(new ApiaryError('timeout', `no reply from ${subject} within ${ropts.timeoutMs} ms`))), ropts.timeoutMs)
        ropts.signal?.addEventListener('abort', onAbort, { once: true })
        inflight.set(token, {
          reply: (m) =>
            settle(() => {
              // The server answers 503 at once when nobody subscribes to the subject.
              if (m.headers?.code === 503) return reject(new ApiaryError('no_responders', `no responders on ${subject}`))
              try {
                resolve(m.data.length === 0 ? null : JSON.parse(dec.decode(m.data)))
              } catch (err) {
                reject(new ApiaryError('invalid_input', `reply from ${subject} is not JSON`, undefined, { cause: err }))
              }
            }),
          fail: (err) => settle(() => reject(err)),
        })
        try {
          nc.publish(subject, enc.encode(JSON.stringify(data)), { reply: `${inbox}.${token}` })
        } catch (err) {
          settle(() => reject(new ApiaryError('closed', `cannot send a request to ${subject}: ${errorMessage(err)}`, undefined, { cause: err })))
        }
      })
    },
    flush() {
      return nc.flush()
    },
    async close() {
      closing = true
      for (const p of [...inflight.values()]) p.fail(new ApiaryError('closed', 'the bus closed before the reply came'))
      if (nc.isClosed()) return
      try {
        await nc.drain()
      } catch {
        await nc.close()
      }
    },
  }
}
