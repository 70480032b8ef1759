import { type Bus, type BusMessage, isApiaryError } from '@apiary/shared'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

/** What a bus implementation gives the suite for one test. */
export interface BusFixture {
  /** The bus under test. */
  bus: Bus
  /**
   * A second, separate handle on the same bus: for NATS a second connection to the same
   * server, so messages must cross the server; for the in-process bus the same instance,
   * because two `createMemoryBus()` calls are two unconnected worlds by design (the embedded
   * cluster shares one instance among its roles).
   */
  other: () => Promise<Bus>
  /** Closes every bus handed out (including those from `other()`) and stops any server. */
  teardown: () => Promise<void>
}

/** Small helper: a promise plus its resolver, for awaiting an event instead of sleeping. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** Collects every message of a subscription and resolves `until(pred)` when one arrives. */
function collector() {
  const seen: BusMessage[] = []
  const waiters: Array<{ pred: (m: BusMessage) => boolean; resolve: (m: BusMessage) => void }> = []
  return {
    seen,
    handler: (msg: BusMessage) => {
      seen.push(msg)
      for (const w of [...waiters]) {
        if (w.pred(msg)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(msg)
        }
      }
    },
    until(pred: (m: BusMessage) => boolean): Promise<BusMessage> {
      const already = seen.find(pred)
      if (already) return Promise.resolve(already)
      return new Promise((resolve) => waiters.push({ pred, resolve }))
    },
  }
}

const isSentinel = (m: BusMessage) => (m.data as { sentinel?: boolean } | null)?.sentinel === true

/** Expects `p` to reject with an ApiaryError of `code`; returns how long it took. */
async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<number> {
  const started = performance.now()
  const err = await p.then(
    (v) => {
      throw new Error(`expected a rejection with code ${code}, got a reply: ${JSON.stringify(v)}`)
    },
    (e: unknown) => e,
  )
  expect(isApiaryError(err), `not an ApiaryError: ${String(err)}`).toBe(true)
  expect((err as { code: string }).code).toBe(code)
  return performance.now() - started
}

let counter = 0
/** A subject unique to this test, so tests never see each other's traffic. */
function uniq(base: string): string {
  return `conf.${base}.${process.pid}.${Date.now().toString(36)}.${++counter}`
}

/**
 * The bus conformance suite: every `Bus` implementation must pass it unchanged, so the
 * embedded cluster and the distributed one cannot drift.
 *
 * @example defineBusSuite('memory', async () => { const bus = createMemoryBus(silentLogger()); ... })
 */
export function defineBusSuite(name: string, make: () => Promise<BusFixture>): void {
  // A broken bus tends to hang rather than throw; fail well before the global 60 s.
  describe(`bus: ${name}`, { timeout: 20_000 }, () => {
    let fx: BusFixture
    let bus: Bus

    beforeEach(async () => {
      fx = await make()
      bus = fx.bus
    })
    afterEach(async () => {
      await fx.teardown()
    })

    it('names its kind', () => {
      expect(bus.kind).toBe(name)
    })

    it('delivers a published JSON body to a subscriber, structurally equal', async () => {
      const subject = uniq('roundtrip')
      const got = deferred<BusMessage>()
      bus.subscribe(subject, (m) => got.resolve(m))
      await bus.flush()
      const body = { s: 'héllo', n: 42, f: 1.5, b: true, nil: null, arr: [1, 'two', { three: 3 }], nested: { a: { b: [] } } }
      bus.publish(subject, body)
      const msg = await got.promise
      expect(msg.subject).toBe(subject)
      expect(msg.data).toEqual(body)
      expect(msg.expectsReply).toBe(false)
      // A plain publish has nobody to answer; respond must be a harmless no-op.
      expect(() => msg.respond({ ignored: true })).not.toThrow()
    })

    it('passes bodies as copies, never the publisher’s object', async () => {
      const subject = uniq('copy')
      const got = deferred<BusMessage>()
      bus.subscribe(subject, (m) => got.resolve(m))
      await bus.flush()
      const body = { list: [1] }
      bus.publish(subject, body)
      body.list.push(2) // mutating after publish must not change what is delivered
      const msg = await got.promise
      expect(msg.data).toEqual({ list: [1] })
      expect(msg.data).not.toBe(body)
    })

    it('drops unread a body larger than the subscriber takes, or nested deeper than 64, and goes on', async () => {
      const subject = uniq('bounded')
      const c = collector()
      bus.subscribe(subject, c.handler, { maxBytes: 1024 })
      await bus.flush()
      const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)])
      bus.publish(subject, { big: 'x'.repeat(2000) })
      bus.publish(subject, deep(65))
      bus.publish(subject, deep(64))
      bus.publish(subject, { s: '['.repeat(72) }) // brackets in a string do not nest
      bus.publish(subject, { sentinel: true })
      await c.until(isSentinel)
      expect(c.seen.map((m) => m.data)).toEqual([deep(64), { s: '['.repeat(72) }, { sentinel: true }])
    })

    it('refuses a reply that is not a small JSON body', async () => {
      const subject = uniq('big-reply')
      bus.subscribe(subject, (m) => m.respond({ junk: 'x'.repeat(100 * 1024) }))
      await bus.flush()
      await rejectsWithCode(bus.request(subject, {}, { timeoutMs: 5000 }), 'invalid_input')
    })

    it('delivers non-object JSON bodies (string, number, array, null)', async () => {
      const subject = uniq('scalars')
      const c = collector()
      bus.subscribe(subject, c.handler)
      await bus.flush()
      const bodies: unknown[] = ['text', 7, [1, 2], null, { sentinel: true }]
      for (const b of bodies) bus.publish(subject, b)
      await c.until(isSentinel)
      expect(c.seen.map((m) => m.data)).toEqual(bodies)
    })

    it('carries an undefined body as null, in a publish and in a reply', async () => {
      const subject = uniq('undefined')
      const c = collector()
      bus.subscribe(subject, c.handler)
      bus.subscribe(`${subject}.rpc`, (m) => m.respond(undefined))
      await bus.flush()
      bus.publish(subject, undefined)
      bus.publish(subject, { sentinel: true })
      await c.until(isSentinel)
      expect(c.seen.map((m) => m.data)).toEqual([null, { sentinel: true }])
      await expect(bus.request(`${subject}.rpc`, undefined, { timeoutMs: 5000 })).resolves.toBeNull()
    })

    it('matches `*` to exactly one token', async () => {
      const base = uniq('star')
      const c = collector()
      bus.subscribe(`${base}.*.end`, c.handler)
      await bus.flush()
      bus.publish(`${base}.a.end`, { n: 1 })
      bus.publish(`${base}.a.b.end`, { n: 2 }) // two tokens: no match
      bus.publish(`${base}.end`, { n: 3 }) // zero tokens: no match
      bus.publish(`${base}.a.other`, { n: 4 }) // last token differs
      bus.publish(`${base}.z.end`, { sentinel: true })
      await c.until(isSentinel)
      expect(c.seen.map((m) => m.subject)).toEqual([`${base}.a.end`, `${base}.z.end`])
    })

    it('matches `>` to one or more trailing tokens, never zero', async () => {
      const base = uniq('gt')
      const c = collector()
      bus.subscribe(`${base}.>`, c.handler)
      const s = collector()
      bus.subscribe(`${base}`, s.handler) // the bare prefix, used as the sentinel channel
      await bus.flush()
      bus.publish(`${base}.a`, { n: 1 })
      bus.publish(`${base}.a.b.c`, { n: 2 })
      bus.publish(base, { n: 3 }) // no trailing token: `>` must not match
      bus.publish(`${base}x.a`, { n: 4 }) // different first tokens
      bus.publish(`${base}.end`, { sentinel: true })
      await c.until(isSentinel)
      expect(c.seen.map((m) => m.subject)).toEqual([`${base}.a`, `${base}.a.b.c`, `${base}.end`])
      expect(s.seen.map((m) => m.data)).toEqual([{ n: 3 }])
    })

    it('delivers messages in publish order to each subscriber', async () => {
      const subject = uniq('order')
      const a = collector()
      const b = collector()
      bus.subscribe(subject, a.handler)
      bus.subscribe(subject, b.handler)
      await bus.flush()
      const n = 500
      for (let i = 0; i < n; i++) bus.publish(subject, { i })
      bus.publish(subject, { sentinel: true })
      await Promise.all([a.until(isSentinel), b.until(isSentinel)])
      const expected = Array.from({ length: n }, (_, i) => ({ i }))
      expect(a.seen.filter((m) => !isSentinel(m)).map((m) => m.data)).toEqual(expected)
      expect(b.seen.filter((m) => !isSentinel(m)).map((m) => m.data)).toEqual(expected)
    })

    it('gives each message to exactly one member of a queue group, sharing the load, while a plain subscriber gets all', async () => {
      const subject = uniq('queue')
      const other = await fx.other()
      const n = 50
      const ids = new Set<number>()
      const everyIdSeen = deferred()
      const members = [collector(), collector(), collector()]
      // Each member also notes the id in one shared set, to notice when the group has seen all n.
      const member = (c: ReturnType<typeof collector>) => (msg: BusMessage) => {
        c.handler(msg)
        ids.add((msg.data as { i: number }).i)
        if (ids.size === n) everyIdSeen.resolve()
      }
      // Members on both handles: a group spans connections (processes) in real use.
      bus.subscribe(subject, member(members[0]!), { queue: 'workers' })
      bus.subscribe(subject, member(members[1]!), { queue: 'workers' })
      other.subscribe(subject, member(members[2]!), { queue: 'workers' })
      const plain = collector()
      bus.subscribe(subject, plain.handler)
      await Promise.all([bus.flush(), other.flush()])

      for (let i = 0; i < n; i++) bus.publish(subject, { i })
      await plain.until((m) => (m.data as { i: number }).i === n - 1)
      await everyIdSeen.promise
      // A duplicate would still be in flight: a round trip on the publishing handle, then on
      // each subscribing one, puts everything the server routed so far into the handlers.
      await bus.flush()
      await other.flush()

      const received = members.map((m) => m.seen.map((x) => (x.data as { i: number }).i))
      const all = received.flat()
      expect(all).toHaveLength(n)
      expect(new Set(all).size).toBe(n)
      for (const r of received) expect(r.length).toBeGreaterThanOrEqual(1)
      expect(plain.seen.map((m) => (m.data as { i: number }).i)).toEqual(Array.from({ length: n }, (_, i) => i))
    })

    it('keeps queue groups of the same name on different subjects apart', async () => {
      const s1 = uniq('qa')
      const s2 = uniq('qb')
      const a = collector()
      const b = collector()
      bus.subscribe(s1, a.handler, { queue: 'same' })
      bus.subscribe(s2, b.handler, { queue: 'same' })
      await bus.flush()
      for (let i = 0; i < 5; i++) {
        bus.publish(s1, { i })
        bus.publish(s2, { i })
      }
      bus.publish(s1, { sentinel: true })
      bus.publish(s2, { sentinel: true })
      await Promise.all([a.until(isSentinel), b.until(isSentinel)])
      expect(a.seen).toHaveLength(6)
      expect(b.seen).toHaveLength(6)
    })

    it('returns the reply to a request', async () => {
      const subject = uniq('req')
      bus.subscribe(subject, (m) => {
        expect(m.expectsReply).toBe(true)
        m.respond({ echo: m.data, by: 'responder' })
      })
      await bus.flush()
      const reply = await bus.request(subject, { q: 'ping', n: [1, 2] }, { timeoutMs: 5000 })
      expect(reply).toEqual({ echo: { q: 'ping', n: [1, 2] }, by: 'responder' })
    })

    it('returns the reply of an async handler and keeps concurrent requests apart', async () => {
      const subject = uniq('req-many')
      bus.subscribe(subject, async (m) => {
        await Promise.resolve()
        m.respond({ doubled: (m.data as { n: number }).n * 2 })
      })
      await bus.flush()
      const replies = await Promise.all(Array.from({ length: 20 }, (_, n) => bus.request(subject, { n }, { timeoutMs: 5000 })))
      expect(replies).toEqual(Array.from({ length: 20 }, (_, n) => ({ doubled: n * 2 })))
    })

    it('sends a request to one member of a queue group only', async () => {
      const subject = uniq('req-queue')
      let answered = 0
      const responder = (m: BusMessage) => {
        answered++
        m.respond({ ok: true })
      }
      bus.subscribe(subject, responder, { queue: 'hives' })
      bus.subscribe(subject, responder, { queue: 'hives' })
      const plain = collector()
      bus.subscribe(subject, plain.handler)
      await bus.flush()
      await expect(bus.request(subject, { x: 1 }, { timeoutMs: 5000 })).resolves.toEqual({ ok: true })
      // The plain subscriber also saw the request; once it has, the queue delivery has too.
      await plain.until(() => true)
      await bus.flush()
      expect(answered).toBe(1)
    })

    it('rejects a request with no subscriber as no_responders at once, not at the timeout', async () => {
      const timeoutMs = 10_000
      const took = await rejectsWithCode(bus.request(uniq('nobody'), { x: 1 }, { timeoutMs }), 'no_responders')
      expect(took).toBeLessThan(timeoutMs / 4)
    })

    it('rejects a request whose subscriber never answers as timeout', async () => {
      const subject = uniq('silent')
      const heard = deferred()
      bus.subscribe(subject, () => heard.resolve())
      await bus.flush()
      const timeoutMs = 300
      const p = bus.request(subject, { x: 1 }, { timeoutMs })
      await heard.promise // it did reach a subscriber: this is a timeout, not no_responders
      const started = performance.now()
      await rejectsWithCode(p, 'timeout')
      // It waited roughly the deadline, not forever (the test timeout would catch that too).
      expect(performance.now() - started).toBeLessThan(timeoutMs * 10)
    })

    it('rejects a request as timeout when its signal aborts, before the deadline', async () => {
      const subject = uniq('abort')
      const heard = deferred()
      bus.subscribe(subject, () => heard.resolve())
      await bus.flush()
      const ac = new AbortController()
      const p = bus.request(subject, { x: 1 }, { timeoutMs: 10_000, signal: ac.signal })
      await heard.promise
      ac.abort(new Error('user cancelled'))
      const took = await rejectsWithCode(p, 'timeout')
      expect(took).toBeLessThan(5000)
    })

    it('rejects a request at once when its signal is already aborted', async () => {
      const subject = uniq('pre-abort')
      const heard = collector()
      bus.subscribe(subject, heard.handler)
      await bus.flush()
      await rejectsWithCode(bus.request(subject, {}, { timeoutMs: 30_000, signal: AbortSignal.abort() }), 'timeout')
    })

    it('stops delivery after unsubscribe', async () => {
      const subject = uniq('unsub')
      const gone = collector()
      const stays = collector()
      const sub = bus.subscribe(subject, gone.handler)
      bus.subscribe(subject, stays.handler)
      await bus.flush()
      bus.publish(subject, { before: true })
      await stays.until((m) => (m.data as { before?: boolean }).before === true)
      await gone.until((m) => (m.data as { before?: boolean }).before === true)

      sub.unsubscribe()
      await bus.flush()
      bus.publish(subject, { after: true })
      bus.publish(subject, { sentinel: true })
      // Same subject, same handle: once the sentinel reached `stays`, anything for `gone` has too.
      await stays.until(isSentinel)
      await bus.flush()
      expect(gone.seen.map((m) => m.data)).toEqual([{ before: true }])
      // Unsubscribing twice is harmless.
      expect(() => sub.unsubscribe()).not.toThrow()
    })

    it('stops delivery of messages already published but not yet handled when unsubscribed', async () => {
      const subject = uniq('unsub-inflight')
      const got: unknown[] = []
      const sentinel = collector()
      let sub: { unsubscribe(): void } | undefined
      sub = bus.subscribe(subject, (m) => {
        got.push(m.data)
        sub?.unsubscribe() // from inside the first delivery
      })
      bus.subscribe(subject, sentinel.handler)
      await bus.flush()
      for (let i = 0; i < 10; i++) bus.publish(subject, { i })
      bus.publish(subject, { sentinel: true })
      await sentinel.until(isSentinel)
      await bus.flush()
      expect(got).toEqual([{ i: 0 }])
    })

    it('keeps delivering after a handler throws or rejects', async () => {
      const subject = uniq('throws')
      const c = collector()
      bus.subscribe(subject, (m) => {
        c.handler(m)
        const kind = (m.data as { kind: string }).kind
        if (kind === 'throw') throw new Error('handler blew up')
        if (kind === 'reject') return Promise.reject(new Error('handler rejected'))
        return undefined
      })
      bus.subscribe(subject, async (m) => {
        if ((m.data as { kind: string }).kind === 'throw') throw new Error('async handler blew up')
      })
      await bus.flush()
      bus.publish(subject, { kind: 'throw' })
      bus.publish(subject, { kind: 'reject' })
      bus.publish(subject, { kind: 'throw' })
      bus.publish(subject, { kind: 'fine', sentinel: true })
      await c.until(isSentinel)
      expect(c.seen.map((m) => (m.data as { kind: string }).kind)).toEqual(['throw', 'reject', 'throw', 'fine'])
      // And the bus still works for requests.
      bus.subscribe(`${subject}.req`, (m) => m.respond('still here'))
      await bus.flush()
      await expect(bus.request(`${subject}.req`, null, { timeoutMs: 5000 })).resolves.toBe('still here')
    })

    it('lets two separate handles talk to each other: publish, queue and request both ways', async () => {
      const other = await fx.other()
      const subject = uniq('cross')
      const onOther = collector()
      other.subscribe(subject, onOther.handler)
      other.subscribe(`${subject}.rpc`, (m) => m.respond({ from: 'other', got: m.data }))
      const onBus = collector()
      bus.subscribe(`${subject}.back`, onBus.handler)
      await Promise.all([bus.flush(), other.flush()])

      bus.publish(subject, { hello: 'from bus', sentinel: true })
      expect((await onOther.until(isSentinel)).data).toEqual({ hello: 'from bus', sentinel: true })
      other.publish(`${subject}.back`, { hello: 'from other', sentinel: true })
      expect((await onBus.until(isSentinel)).data).toEqual({ hello: 'from other', sentinel: true })
      await expect(bus.request(`${subject}.rpc`, { n: 1 }, { timeoutMs: 5000 })).resolves.toEqual({ from: 'other', got: { n: 1 } })
    })

    it('rejects pending requests with closed when the bus closes', async () => {
      const subject = uniq('closing')
      const heard = deferred()
      bus.subscribe(subject, () => heard.resolve())
      await bus.flush()
      const p = bus.request(subject, { x: 1 }, { timeoutMs: 30_000 })
      await heard.promise
      const closing = bus.close()
      const took = await rejectsWithCode(p, 'closed')
      await closing
      expect(took).toBeLessThan(5000)
    })

    it('refuses to publish or request once closed, and close is idempotent', async () => {
      await bus.close()
      await bus.close()
      let thrown: unknown
      try {
        bus.publish(uniq('after-close'), { x: 1 })
      } catch (err) {
        thrown = err
      }
      expect(isApiaryError(thrown, 'closed'), `publish after close threw ${String(thrown)}`).toBe(true)
      await rejectsWithCode(bus.request(uniq('after-close'), {}, { timeoutMs: 5000 }), 'closed')
    })

    it('refuses to subscribe once closed', async () => {
      await bus.close()
      let thrown: unknown
      try {
        bus.subscribe(uniq('sub-after-close'), () => undefined)
      } catch (err) {
        thrown = err
      }
      expect(isApiaryError(thrown, 'closed'), `subscribe after close threw ${String(thrown)}`).toBe(true)
    })

    it('delivers nothing more to the subscribers of a closed handle', async () => {
      const other = await fx.other()
      const subject = uniq('closed-sub')
      const c = collector()
      bus.subscribe(subject, c.handler)
      if (other === bus) {
        // One shared instance (memory): once closed, nobody can publish, so the only messages
        // left are those queued before close; they must not reach a handler after it.
        await bus.flush()
        bus.publish(subject, { queued: true })
        await bus.close()
        await bus.flush()
        expect(c.seen).toEqual([])
        return
      }
      const witness = collector()
      other.subscribe(subject, witness.handler)
      await Promise.all([bus.flush(), other.flush()])
      await bus.close()
      other.publish(subject, { sentinel: true })
      await witness.until(isSentinel)
      await other.flush()
      expect(c.seen).toEqual([])
    })
  })
}
