import { type Bus, type BusMessage, CLAIM_MAX_BYTES, claimKey, type DurableConfig, isApiaryError, type StreamMessage, subjects } from '@apiary/shared'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { waitUntil } from '../harness/index.ts'

/** What a `Durable` implementation gives the suite for one test: fresh streams, nothing made yet. */
export interface DurableFixture {
  /** The bus whose `durable` is under test. */
  bus: Bus
  /** Another handle on the same streams: a second connection over NATS, the same bus in process. */
  other: () => Promise<Bus>
  /** Closes every bus handed out and stops any server. */
  teardown: () => Promise<void>
}

/** Limits small enough to see a lease expire within a test. */
export const TEST_CONFIG: DurableConfig = {
  replicas: 1,
  eventsMaxAgeMs: 10 * 60_000,
  logMaxAgeMs: 10 * 60_000,
  eventsMaxBytes: 64 * 1024 * 1024,
  logMaxBytes: 64 * 1024 * 1024,
  claimsMaxBytes: 64 * 1024 * 1024,
  leaseTtlMs: 1000,
  dedupeWindowMs: 2 * 60_000,
}

/** A promise plus its resolver, for awaiting an event instead of sleeping. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** Everything a reader is handed, and a way to await the first that matches. */
export function streamCollector(onMessage?: (m: StreamMessage) => void | Promise<void>) {
  const seen: StreamMessage[] = []
  const waiters: Array<{ pred: (m: StreamMessage) => boolean; resolve: () => void }> = []
  return {
    seen,
    handler: async (m: StreamMessage) => {
      seen.push(m)
      await onMessage?.(m)
      for (const w of [...waiters]) {
        if (w.pred(m)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
    },
    until(pred: (m: StreamMessage) => boolean): Promise<void> {
      if (seen.some(pred)) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ pred, resolve }))
    },
  }
}

/** The `n` field of a test body. */
export const nOf = (m: { data: unknown }) => (m.data as { n?: number } | null)?.n

/** Expects `p` to reject with an ApiaryError of `code`. */
export async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<Error> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a rejection with code ${code}, got ${JSON.stringify(v)}`)
    },
    (e: unknown) => e,
  )
  expect(isApiaryError(err), `not an ApiaryError: ${String(err)}`).toBe(true)
  expect((err as { code: string }).code).toBe(code)
  return err as Error
}

let counter = 0
/** A node event subject of a job unique to this test. */
export function eventSubject(): string {
  return subjects.nodeEvents('conf', `node-${process.pid}`, `job-${Date.now().toString(36)}-${++counter}`)
}

const soon = () => Date.now() + 20_000

/**
 * The conformance suite of `Durable`: every implementation passes it unchanged, so the
 * embedded cluster's streams and JetStream cannot drift.
 *
 * @example defineDurableSuite('memory', async () => { const bus = createMemoryBus(log); ... })
 */
export function defineDurableSuite(name: string, make: () => Promise<DurableFixture>): void {
  describe(`durable: ${name}`, { timeout: 20_000 }, () => {
    let fx: DurableFixture
    let bus: Bus

    beforeEach(async () => {
      fx = await make()
      bus = fx.bus
    })
    afterEach(async () => {
      await fx.teardown()
    })

    /** Publishes `{ n }` for each n on `subject`, one after another, with ids unique to the subject. */
    async function publishAll(subject: string, ns: number[]): Promise<number[]> {
      const seqs: number[] = []
      for (const n of ns) seqs.push((await bus.durable.publish(subject, { n }, { id: `${subject}/${n}`, deadline: soon() })).seq)
      return seqs
    }

    it('makes the streams empty, and making them again changes nothing', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      await bus.durable.ensure({ ...TEST_CONFIG, eventsMaxAgeMs: TEST_CONFIG.eventsMaxAgeMs * 2 })
      expect(await bus.durable.lastSeq('events')).toBe(0)
      expect(await bus.durable.lastSeq('log')).toBe(0)
      const subject = eventSubject()
      await publishAll(subject, [1])
      await bus.durable.ensure(TEST_CONFIG)
      expect(await bus.durable.lastSeq('events')).toBe(1)
    })

    it('stores a publish once per dedupe id, and a plain subscriber hears it live', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const other = await fx.other()
      const heard: BusMessage[] = []
      const second = deferred()
      other.subscribe(subjects.nodeEventsAll, (m) => {
        heard.push(m)
        if (nOf(m) === 2) second.resolve()
      })
      await other.flush()
      const subject = eventSubject()
      const a = await bus.durable.publish(subject, { n: 1 }, { id: 'a', deadline: soon() })
      const again = await bus.durable.publish(subject, { n: 1 }, { id: 'a', deadline: soon() })
      const b = await bus.durable.publish(subject, { n: 2 }, { id: 'b', deadline: soon() })
      expect(a).toEqual({ seq: 1, duplicate: false })
      expect(again).toEqual({ seq: 1, duplicate: true })
      expect(b).toEqual({ seq: 2, duplicate: false })
      expect(await bus.durable.lastSeq('events')).toBe(2)
      expect(await other.durable.lastSeq('events')).toBe(2)
      await second.promise
      expect(heard[0]).toMatchObject({ subject, data: { n: 1 } })
    })

    it('stores a plain publish on a stream subject too', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const subject = eventSubject()
      bus.publish(subject, { n: 7 })
      await bus.flush()
      const c = streamCollector()
      const r = bus.durable.read('events', c.handler, { afterSeq: 0, follow: true, maxBytes: 1024 })
      await c.until((m) => nOf(m) === 7)
      await r.stop()
      expect(c.seen.map((m) => [m.subject, m.seq])).toEqual([[subject, 1]])
    })

    it('fences the log: a publish expecting another last sequence is refused at once with conflict', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const log = subjects.log
      expect(await bus.durable.publish(log, { n: 1 }, { id: 'l1', deadline: soon(), expectLastSeq: 0 })).toEqual({ seq: 1, duplicate: false })
      expect(await bus.durable.publish(log, { n: 2 }, { id: 'l2', deadline: soon(), expectLastSeq: 1 })).toEqual({ seq: 2, duplicate: false })
      // Another writer that still believes the stream ends at 1.
      const err = await rejectsWithCode(bus.durable.publish(log, { n: 3 }, { id: 'l3', deadline: Date.now() + 60_000, expectLastSeq: 1 }), 'conflict')
      expect(err.message).toMatch(/last sequence/)
      // The writer's own retry of a stored record (its ack lost) is a duplicate, not a conflict.
      expect(await bus.durable.publish(log, { n: 2 }, { id: 'l2', deadline: soon(), expectLastSeq: 1 })).toEqual({ seq: 2, duplicate: true })
      expect(await bus.durable.lastSeq('log')).toBe(2)
    })

    it('waits for a stream not made yet, and stores the publish once it is', async () => {
      const subject = eventSubject()
      const p = bus.durable.publish(subject, { n: 1 }, { id: 'early', deadline: soon() })
      const other = await fx.other()
      await other.durable.ensure(TEST_CONFIG)
      expect(await p).toEqual({ seq: 1, duplicate: false })
    })

    it('hands a consumer and a reader started before the stream is made what comes once it is', async () => {
      const c = streamCollector((m) => m.ack())
      const consumer = bus.durable.consume('events', 'early', c.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
      const f = streamCollector()
      const reader = bus.durable.read('events', f.handler, { afterSeq: 0, follow: true, maxBytes: 1024 })
      await bus.durable.ensure(TEST_CONFIG)
      await publishAll(eventSubject(), [1])
      await Promise.all([c.until((m) => nOf(m) === 1), f.until((m) => nOf(m) === 1)])
      await Promise.all([consumer.stop(), reader.stop()])
      expect([c.seen.length, f.seen.length]).toEqual([1, 1])
    })

    it('gives up at its deadline with timeout when no stream stores the subject', async () => {
      const deadline = Date.now() + 400
      await rejectsWithCode(bus.durable.publish(eventSubject(), { n: 1 }, { id: 'never', deadline }), 'timeout')
      expect(Date.now()).toBeGreaterThanOrEqual(deadline)
      await bus.durable.ensure(TEST_CONFIG)
      // The log's stream does not hold node events, nor the events' stream the log.
      await rejectsWithCode(bus.durable.publish(`${subjects.log}.x`, { n: 1 }, { id: 'nowhere', deadline: Date.now() + 300 }), 'timeout')
    })

    it('stops retrying when its signal aborts', async () => {
      const ac = new AbortController()
      const p = bus.durable.publish(eventSubject(), { n: 1 }, { id: 'aborted', deadline: Date.now() + 60_000, signal: ac.signal })
      ac.abort(new Error('stopping'))
      await rejectsWithCode(p, 'timeout')
      await rejectsWithCode(bus.durable.publish(eventSubject(), { n: 1 }, { id: 'pre', deadline: Date.now() + 60_000, signal: AbortSignal.abort() }), 'timeout')
    })

    it('hands a consumer every message in order, one at a time', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const subject = eventSubject()
      const ns = Array.from({ length: 30 }, (_, i) => i)
      const seqs = await publishAll(subject, ns)
      let running = 0
      let most = 0
      const c = streamCollector(async (m) => {
        most = Math.max(most, ++running)
        await new Promise((r) => setImmediate(r))
        running--
        m.ack()
      })
      const r = bus.durable.consume('events', 'in-order', c.handler, { ackWaitMs: 30_000, maxBytes: 1024 })
      await c.until((m) => nOf(m) === 29)
      await r.stop()
      expect(c.seen.map((m) => m.seq)).toEqual(seqs)
      expect(c.seen.map(nOf)).toEqual(ns)
      expect(c.seen.every((m) => m.deliveries === 1)).toBe(true)
      expect(most).toBe(1)
    })

    it('hands out again what was not acknowledged within ackWaitMs, counting deliveries', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const subject = eventSubject()
      await publishAll(subject, [1])
      const c = streamCollector((m) => {
        if (m.deliveries > 1) m.ack()
      })
      const r = bus.durable.consume('events', 'redeliver', c.handler, { ackWaitMs: 500, maxBytes: 1024 })
      await c.until((m) => m.deliveries === 2)
      await publishAll(subject, [2])
      await c.until((m) => nOf(m) === 2 && m.deliveries === 2)
      await r.stop()
      expect(c.seen.map((m) => [nOf(m), m.deliveries])).toEqual([
        [1, 1],
        [1, 2],
        [2, 1],
        [2, 2],
      ])
    })

    it('goes on, under the same name, from the first message not acknowledged, and an ack covers every earlier one', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const subject = eventSubject()
      await publishAll(subject, [1, 2, 3, 4, 5, 6])
      const stopped = deferred()
      let first!: ReturnType<typeof bus.durable.consume>
      const a = streamCollector(async (m) => {
        // 1 and 2 are never acknowledged themselves: the ack of 3 covers them.
        if (nOf(m) === 3) m.ack()
        if (nOf(m) === 4) {
          await first.stop()
          stopped.resolve()
        }
      })
      // An ack wait far longer than the test: what comes again comes because the new consumer
      // starts from the first unacknowledged message, not because the wait ran out.
      first = bus.durable.consume('events', 'position', a.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
      await stopped.promise
      await first.done
      expect(a.seen.map(nOf)).toEqual([1, 2, 3, 4])

      const other = await fx.other()
      const b = streamCollector((m) => m.ack())
      const second = other.durable.consume('events', 'position', b.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
      await b.until((m) => nOf(m) === 6)
      await second.stop()
      expect(b.seen.map(nOf)).toEqual([4, 5, 6])
      expect(b.seen[0]!.deliveries).toBeGreaterThanOrEqual(2)

      // Everything is acknowledged now: a third starts with what comes next.
      await publishAll(subject, [7])
      const c = streamCollector((m) => m.ack())
      const third = bus.durable.consume('events', 'position', c.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
      await c.until((m) => nOf(m) === 7)
      await third.stop()
      expect(c.seen.map(nOf)).toEqual([7])
    })

    it('acknowledges and drops a body larger than the consumer takes, and goes on', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const subject = eventSubject()
      await bus.durable.publish(subject, { n: 1, pad: 'x'.repeat(4000) }, { id: 'big', deadline: soon() })
      await publishAll(subject, [2])
      const a = streamCollector((m) => m.ack())
      const first = bus.durable.consume('events', 'bounded', a.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
      await a.until((m) => nOf(m) === 2)
      await first.stop()
      expect(a.seen.map(nOf)).toEqual([2])
      // Dropped for good: not handed out again to the next consumer of the name.
      await publishAll(subject, [3])
      const b = streamCollector((m) => m.ack())
      const second = bus.durable.consume('events', 'bounded', b.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
      await b.until((m) => nOf(m) === 3)
      await second.stop()
      expect(b.seen.map(nOf)).toEqual([3])
    })

    it('refuses new events once the stream is full rather than drop what it holds; trimming what was applied makes room, and a waiting publish goes on', async () => {
      await bus.durable.ensure({ ...TEST_CONFIG, eventsMaxBytes: 4096 })
      const subject = eventSubject()
      const body = (n: number) => ({ n, pad: 'x'.repeat(900) })
      let held = 0
      let refused: Error | undefined
      for (let n = 1; n <= 10 && !refused; n++) {
        try {
          await bus.durable.publish(subject, body(n), { id: `full-${n}`, deadline: Date.now() + 500 })
          held = n
        } catch (err) {
          refused = await rejectsWithCode(Promise.reject(err), 'timeout')
        }
      }
      expect(refused, 'a publish past the limit times out').toBeDefined()
      expect(held).toBeGreaterThanOrEqual(2)
      const seqs = async () => {
        const c = streamCollector()
        await bus.durable.read('events', c.handler, { afterSeq: 0, follow: false, maxBytes: 4096 }).done
        return c.seen.map((m) => [m.seq, nOf(m)])
      }
      // Nothing it held was dropped to make room.
      expect(await seqs()).toEqual(Array.from({ length: held }, (_, i) => [i + 1, i + 1]))
      const waiting = bus.durable.publish(subject, body(99), { id: 'full-late', deadline: soon() })
      // What the leader applied (here the first two) is trimmed: room for the one waiting.
      await bus.durable.trimEvents(3)
      expect(await waiting).toEqual({ seq: held + 1, duplicate: false })
      expect(await seqs()).toEqual([...Array.from({ length: held - 2 }, (_, i) => [i + 3, i + 3]), [held + 1, 99]])
      expect(await bus.durable.lastSeq('events')).toBe(held + 1)
      // Everything trimmed: a read that stops once caught up stops at once, having read nothing.
      await bus.durable.trimEvents(held + 2)
      expect(await seqs()).toEqual([])
      expect(await bus.durable.lastSeq('events')).toBe(held + 1)
    })

    it('reads in order from a sequence, and without follow stops once caught up', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const subject = eventSubject()
      await publishAll(subject, [1, 2, 3, 4, 5])
      const c = streamCollector()
      const r = bus.durable.read('events', c.handler, { afterSeq: 2, follow: false, maxBytes: 1024 })
      await r.done
      expect(c.seen.map((m) => [m.seq, nOf(m), m.deliveries])).toEqual([
        [3, 3, 1],
        [4, 4, 1],
        [5, 5, 1],
      ])
      const empty = streamCollector()
      await bus.durable.read('log', empty.handler, { afterSeq: 0, follow: false, maxBytes: 1024 }).done
      expect(empty.seen).toEqual([])
    })

    it('reads on as messages come with follow, skipping bodies over its limit, until stopped', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const subject = eventSubject()
      await publishAll(subject, [1])
      const c = streamCollector()
      const r = bus.durable.read('events', c.handler, { afterSeq: 0, follow: true, maxBytes: 1024 })
      await c.until((m) => nOf(m) === 1)
      await bus.durable.publish(subject, { n: 2, pad: 'x'.repeat(4000) }, { id: 'big', deadline: soon() })
      await publishAll(subject, [3])
      await c.until((m) => nOf(m) === 3)
      await r.stop()
      await r.done
      expect(c.seen.map((m) => [m.seq, nOf(m)])).toEqual([
        [1, 1],
        [3, 3],
      ])
    })

    it('leases a key to one holder at a time, renewed by it, released by it alone', async () => {
      // No bucket before the queen makes it.
      await rejectsWithCode(bus.durable.lease('leader', 'queen-a').acquire(), 'unavailable')
      await bus.durable.ensure(TEST_CONFIG)
      const other = await fx.other()
      const a = bus.durable.lease('leader', 'queen-a')
      const b = other.durable.lease('leader', 'queen-b')
      expect(await a.holder()).toBeNull()
      expect(await a.acquire()).toBe(true)
      expect(await b.acquire()).toBe(false)
      expect(await a.acquire()).toBe(true)
      expect(await b.holder()).toBe('queen-a')
      await b.release() // not b's: nothing changes
      expect(await a.holder()).toBe('queen-a')
      await a.release()
      expect(await a.holder()).toBeNull()
      expect(await b.acquire()).toBe(true)
      expect(await a.acquire()).toBe(false)
      // Another key is another lease.
      expect(await bus.durable.lease('other-key', 'queen-a').acquire()).toBe(true)
    })

    it('lets a lease expire once its holder stops renewing it, and not before', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const other = await fx.other()
      const a = bus.durable.lease('leader', 'queen-a')
      const b = other.durable.lease('leader', 'queen-b')
      expect(await a.acquire()).toBe(true)
      // Renewed across more than one TTL: held all along.
      const renewUntil = Date.now() + TEST_CONFIG.leaseTtlMs * 1.5
      while (Date.now() < renewUntil) {
        await new Promise((r) => setTimeout(r, TEST_CONFIG.leaseTtlMs / 4))
        expect(await a.acquire()).toBe(true)
        expect(await b.acquire()).toBe(false)
      }
      // a stops renewing (it crashed): b gets it once the TTL has passed.
      await waitUntil(() => b.acquire(), 'the lease to expire', TEST_CONFIG.leaseTtlMs * 10, 100)
      expect(await a.holder()).toBe('queen-b')
      expect(await a.acquire()).toBe(false)
    })

    it('gives a lease back to its holder once it expired with nobody taking it, and never to it once another did', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const other = await fx.other()
      const a = bus.durable.lease('leader', 'queen-a')
      expect(await a.acquire()).toBe(true)
      // Nobody renews it past its TTL (a holder that stalled): it is gone, then a renews it anew.
      await waitUntil(async () => (await a.holder()) === null, 'the lease to expire', TEST_CONFIG.leaseTtlMs * 10, 100)
      expect(await a.acquire()).toBe(true)
      expect(await a.holder()).toBe('queen-a')
      expect(await a.acquire()).toBe(true)
      // It stalls again and another takes it meanwhile: a's renewal says no.
      const b = other.durable.lease('leader', 'queen-b')
      await waitUntil(() => b.acquire(), 'the lease to expire and be taken', TEST_CONFIG.leaseTtlMs * 10, 100)
      expect(await a.acquire()).toBe(false)
      expect(await b.acquire()).toBe(true)
      expect(await a.holder()).toBe('queen-b')
    })

    it('keeps a secret by key until it is deleted, for every handle, and refuses before the bucket is made', async () => {
      // No bucket before the queen makes it.
      await rejectsWithCode(bus.durable.secrets.get('jsecret1'), 'unavailable')
      await bus.durable.ensure(TEST_CONFIG)
      const other = await fx.other()
      expect(await bus.durable.secrets.get('jsecret1')).toBeUndefined()
      await bus.durable.secrets.put('jsecret1', 'wrapped-1')
      expect(await other.durable.secrets.get('jsecret1')).toBe('wrapped-1')
      await bus.durable.secrets.put('jsecret2', 'wrapped-2')
      await other.durable.secrets.delete('jsecret1')
      expect(await bus.durable.secrets.get('jsecret1')).toBeUndefined()
      expect(await bus.durable.secrets.get('jsecret2')).toBe('wrapped-2')
      // Forgetting what is not there is no error; a key that cannot be a bucket key is refused, naming it.
      await bus.durable.secrets.delete('jnever-put')
      const err = await rejectsWithCode(bus.durable.secrets.put('no spaces/or slashes', 'v'), 'invalid_input')
      expect((err as { field?: string }).field).toBe('key')
      // A new handle after the deletion sees it gone too.
      expect(await (await fx.other()).durable.secrets.get('jsecret1')).toBeUndefined()
    })

    it('claims a key once among every handle: created if absent, read back, written again only at its revision; refused before the bucket is made', async () => {
      const key = claimKey('conf', 'jclaim0001', 'web-1.eu.example')
      expect(key).toBe('conf.jclaim0001.web-1=2eeu=2eexample')
      // No bucket before the queen makes it: refused, or (JetStream holds a publish no stream
      // takes without an answer) given up on at the signal.
      const early = await bus.durable.claims.create(key, 'ssh-1', { signal: AbortSignal.timeout(500) }).then(String, (e: unknown) => e)
      expect(isApiaryError(early) && ['unavailable', 'timeout'].includes(early.code), String(early)).toBe(true)
      await bus.durable.ensure(TEST_CONFIG)
      const other = await fx.other()
      expect(await other.durable.claims.get(key)).toBeUndefined()
      const first = await bus.durable.claims.create(key, 'ssh-1')
      expect(first).toBeGreaterThan(0)
      // Held: a second create, from either handle, takes nothing.
      expect(await other.durable.claims.create(key, 'ssh-2')).toBeUndefined()
      expect(await bus.durable.claims.create(key, 'ssh-1')).toBeUndefined()
      expect(await other.durable.claims.get(key)).toEqual({ value: 'ssh-1', revision: first })
      // Written again only at the revision it is at.
      expect(await other.durable.claims.update(key, 'ssh-2', first! + 1000)).toBeUndefined()
      const second = await bus.durable.claims.update(key, 'ssh-1: ok', first!)
      expect(second).toBeGreaterThan(first!)
      expect(await other.durable.claims.update(key, 'ssh-2', first!)).toBeUndefined()
      expect(await other.durable.claims.get(key)).toEqual({ value: 'ssh-1: ok', revision: second })
      // Another node of the job is another claim.
      expect(await other.durable.claims.create(claimKey('conf', 'jclaim0001', 'web-2'), 'ssh-2')).toBeGreaterThan(second!)
      // A call whose signal aborted gives up with timeout; a key that cannot be one is refused, naming it.
      await rejectsWithCode(bus.durable.claims.create(claimKey('conf', 'jclaim0001', 'web-3'), 'ssh-1', { signal: AbortSignal.abort() }), 'timeout')
      const err = await rejectsWithCode(bus.durable.claims.get('no spaces/or slashes'), 'invalid_input')
      expect((err as { field?: string }).field).toBe('key')
      expect(await (await fx.other()).durable.claims.get(key)).toEqual({ value: 'ssh-1: ok', revision: second })
    })

    it('refuses a claim over CLAIM_MAX_BYTES, and new claims once full, and never drops one it holds', async () => {
      // A bucket of some 40 claims of 1,000 bytes (its limit counts each key's stored message).
      await bus.durable.ensure({ ...TEST_CONFIG, claimsMaxBytes: 48 * 1024 })
      const other = await fx.other()
      const value = (n: number) => `${String(n).padStart(4, '0')}${'x'.repeat(996)}`
      await rejectsWithCode(bus.durable.claims.create(claimKey('conf', 'jbig0001', 'web-1'), 'x'.repeat(CLAIM_MAX_BYTES + 1)), 'unavailable')
      const held: string[] = []
      let refused: unknown
      for (let n = 0; n < 200 && refused === undefined; n++) {
        const key = claimKey('conf', 'jfull0001', `web-${n}`)
        await bus.durable.claims.create(key, value(n)).then(
          () => held.push(key),
          (err: unknown) => (refused = err),
        )
      }
      expect(isApiaryError(refused, 'unavailable'), String(refused)).toBe(true)
      expect(held.length).toBeGreaterThan(10)
      // Every claim taken is still there, from either handle: none was pushed out to make room.
      for (const [n, key] of held.entries()) expect((await other.durable.claims.get(key))?.value).toBe(value(n))
      // And the refused one was not taken.
      expect(await other.durable.claims.get(claimKey('conf', 'jfull0001', `web-${held.length}`))).toBeUndefined()
    })

    it('stops its readers and consumers when the bus closes', async () => {
      await bus.durable.ensure(TEST_CONFIG)
      const other = await fx.other()
      await publishAll(eventSubject(), [1])
      const c = streamCollector((m) => m.ack())
      const consumer = other.durable.consume('events', 'closing', c.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
      const reader = other.durable.read('events', () => undefined, { afterSeq: 0, follow: true, maxBytes: 1024 })
      await c.until((m) => nOf(m) === 1)
      await other.close()
      await Promise.all([consumer.done, reader.done])
    })
  })
}
