import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { ApiaryError, errorMessage, isApiaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
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
  let nc: NatsConnection
  try {
    nc = await connect({
      servers: opts.url,
      name: opts.name,
      timeout: opts.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 10_000,
      // nats.js builds errors with stack traces for every request otherwise: a third of a hive's CPU.
      noAsyncTraces: true,
    })
  } catch (err) {
    throw new ApiaryError('unreachable', `cannot connect to NATS at ${opts.url}: ${errorMessage(err)}`, undefined, { cause: err })
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type, server: opts.url }, `NATS ${s.type}`)
      else if (s.type === 'error') log.error({ nats: s.type }, 'NATS error')
    }
  })().catch(() => undefined)

  const subs = new Set<Subscription>()
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
    async request(subject, data, ropts) {
      if (ropts.signal?.aborted) throw new ApiaryError('timeout', `request to ${subject} was aborted`)
      try {
        const pending = nc.request(subject, enc.encode(JSON.stringify(data)), { timeout: ropts.timeoutMs })
        const m = ropts.signal ? await abortable(pending, ropts.signal, subject) : await pending
        return m.data.length === 0 ? null : JSON.parse(dec.decode(m.data))
      } catch (err) {
        if (isApiaryError(err)) throw err
        const e = err as { name?: string; isNoResponders?: () => boolean; cause?: unknown }
        if (e.isNoResponders?.()) {
          throw new ApiaryError('no_responders', `no responders on ${subject}`, undefined, { cause: err })
        }
        if (e.name === 'TimeoutError' || (e.cause as { name?: string } | undefined)?.name === 'TimeoutError') {
          throw new ApiaryError('timeout', `no reply from ${subject} within ${ropts.timeoutMs} ms`, undefined, { cause: err })
        }
        if (closing || nc.isClosed()) throw new ApiaryError('closed', `the bus closed before ${subject} replied`, undefined, { cause: err })
        throw new ApiaryError('unreachable', `request to ${subject} failed: ${errorMessage(err)}`, undefined, { cause: err })
      }
    },
    flush() {
      return nc.flush()
    },
    async close() {
      closing = true
      if (nc.isClosed()) return
      try {
        await nc.drain()
      } catch {
        await nc.close()
      }
    },
  }
}

/**
 * Settles with `pending`, or rejects with `timeout` as soon as `signal` aborts. nats.js takes
 * no signal, so an abandoned request lives on until its own timeout; its outcome is ignored.
 */
function abortable(pending: Promise<Msg>, signal: AbortSignal, subject: string): Promise<Msg> {
  return new Promise<Msg>((resolve, reject) => {
    const onAbort = () => reject(new ApiaryError('timeout', `request to ${subject} was aborted`, undefined, { cause: signal.reason }))
    signal.addEventListener('abort', onAbort, { once: true })
    // Handling both outcomes here also keeps a rejection after an abort from going unhandled.
    void pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
