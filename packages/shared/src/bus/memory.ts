import { ApiaryError } from '../errors.ts'
import type { Logger } from '../runtime/log.ts'
import { type Bus, type BusHandler, type BusMessage, type BusSubscription, MAX_BODY_BYTES, MAX_REPLY_BYTES, readBody, type RequestOptions, runHandler, subjectMatches } from './bus.ts'
import { toJson } from './durable.ts'
import { createMemoryDurable } from './memory-durable.ts'

interface Sub {
  pattern: string
  handler: BusHandler
  queue: string | undefined
  maxBytes: number
  active: boolean
}

/**
 * The in-process bus of the embedded cluster. It behaves like NATS where it matters: bodies
 * travel as JSON text (no shared objects), delivery is asynchronous and in order per
 * subscriber, queue groups pick one member, a request with no subscriber fails at once.
 * Its streams (`durable`) live in the same process and every role sharing the bus sees them.
 */
export function createMemoryBus(log: Logger): Bus {
  const subs = new Set<Sub>()
  let closed = false
  let inbox = 0
  const pendingReplies = new Map<string, (text: string) => void>()
  const pendingClosers = new Map<string, () => void>()
  const rr = new Map<string, number>()
  // One FIFO drained on a macrotask keeps order and never re-enters a publisher.
  const queue: Array<() => void> = []
  let scheduled = false
  let idleWaiters: Array<() => void> = []

  function schedule(job: () => void) {
    queue.push(job)
    if (!scheduled) {
      scheduled = true
      setImmediate(drain)
    }
  }
  function drain() {
    // Bounded per turn so a flood cannot starve timers and I/O.
    for (let n = 0; n < 10_000 && queue.length > 0; n++) queue.shift()!()
    if (queue.length > 0) {
      setImmediate(drain)
      return
    }
    scheduled = false
    const waiters = idleWaiters
    idleWaiters = []
    for (const w of waiters) w()
  }

  function deliver(subject: string, text: string, reply: string | undefined): number {
    const targets: Sub[] = []
    const groups = new Map<string, Sub[]>()
    for (const sub of subs) {
      if (!sub.active || !subjectMatches(sub.pattern, subject)) continue
      if (sub.queue === undefined) targets.push(sub)
      else {
        const key = `${sub.pattern}\u0000${sub.queue}`
        const members = groups.get(key) ?? []
        members.push(sub)
        groups.set(key, members)
      }
    }
    for (const [key, members] of groups) {
      const i = (rr.get(key) ?? 0) % members.length
      rr.set(key, i + 1)
      targets.push(members[i]!)
    }
    for (const sub of targets) {
      schedule(() => {
        if (!sub.active || closed) return
        const body = readBody(text, Buffer.byteLength(text), subject, sub.maxBytes, log)
        if (!body) return
        const msg: BusMessage = {
          subject,
          data: body.data,
          expectsReply: reply !== undefined,
          respond: (body: unknown) => {
            if (reply !== undefined) bus.publish(reply, body)
          },
        }
        runHandler(sub.handler, msg, log)
      })
    }
    return targets.length
  }

  const durable = createMemoryDurable(log, (subject, text) => void deliver(subject, text, undefined))

  const bus: Bus = {
    kind: 'memory',
    durable,
    publish(subject, data) {
      if (closed) throw new ApiaryError('closed', 'the bus is closed')
      const text = toJson(data)
      const waiter = pendingReplies.get(subject)
      if (waiter) {
        schedule(() => waiter(text))
        return
      }
      // A stream's subject is stored as well as delivered, as JetStream captures a core publish.
      durable.capture(subject, text)
    },
    subscribe(pattern, handler, opts) {
      if (closed) throw new ApiaryError('closed', 'the bus is closed')
      const sub: Sub = { pattern, handler, queue: opts?.queue, maxBytes: opts?.maxBytes ?? MAX_BODY_BYTES, active: true }
      subs.add(sub)
      const handle: BusSubscription = {
        unsubscribe() {
          sub.active = false
          subs.delete(sub)
        },
      }
      return handle
    },
    request(subject, data, opts: RequestOptions) {
      if (closed) return Promise.reject(new ApiaryError('closed', 'the bus is closed'))
      const reply = `_INBOX.${++inbox}`
      return new Promise<unknown>((resolve, reject) => {
        const done = () => {
          pendingReplies.delete(reply)
          pendingClosers.delete(reply)
          clearTimeout(timer)
          opts.signal?.removeEventListener('abort', onAbort)
        }
        const onAbort = () => {
          done()
          reject(new ApiaryError('timeout', `request to ${subject} was aborted`, undefined, { cause: opts.signal?.reason }))
        }
        const timer = setTimeout(() => {
          done()
          reject(new ApiaryError('timeout', `no reply from ${subject} within ${opts.timeoutMs} ms`))
        }, opts.timeoutMs)
        if (opts.signal?.aborted) return onAbort()
        opts.signal?.addEventListener('abort', onAbort, { once: true })
        pendingClosers.set(reply, () => {
          done()
          reject(new ApiaryError('closed', `the bus closed before ${subject} replied`))
        })
        pendingReplies.set(reply, (text) => {
          done()
          const body = readBody(text, Buffer.byteLength(text), subject, MAX_REPLY_BYTES, log)
          if (body) resolve(body.data)
          else reject(new ApiaryError('invalid_input', `reply from ${subject} is not JSON, too large or nested too deep`))
        })
        const n = deliver(subject, toJson(data), reply)
        if (n === 0) {
          done()
          reject(new ApiaryError('no_responders', `no responders on ${subject}`))
        }
      })
    },
    flush() {
      if (!scheduled) return Promise.resolve()
      return new Promise<void>((resolve) => idleWaiters.push(resolve))
    },
    async close() {
      closed = true
      durable.close()
      for (const sub of subs) sub.active = false
      subs.clear()
      for (const fail of [...pendingClosers.values()]) fail()
    },
  }
  return bus
}
