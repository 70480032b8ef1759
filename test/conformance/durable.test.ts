import { randomBytes } from 'node:crypto'
import { type Bus, claimKey, subjects } from '@apiary/shared'
import { createLogger, silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { createNatsBus } from '@apiary/shared/nats'
import { connect, usernamePasswordAuthenticator } from '@nats-io/transport-node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type JetStreamNats, type NatsCluster, startJetStreamNats, startNatsCluster, type TempDir, tempDir, waitUntil } from '../harness/index.ts'
import { startAuthNats, type TestUser, writeCredential } from '../harness/nats-auth.ts'
import { defineDurableSuite, eventSubject, nOf, rejectsWithCode, streamCollector, TEST_CONFIG } from './durable-suite.ts'

defineDurableSuite('memory', async () => {
  const bus = createMemoryBus(silentLogger())
  // Every role of the embedded cluster shares one bus instance, so "another handle" is that instance.
  return { bus, other: async () => bus, teardown: () => bus.close() }
})

const secret = () => randomBytes(18).toString('base64url')

/** Buses that authenticate as `user` (from a 0600 file), closed together. */
async function busesOf(dir: string, url: string, user: string, password: string) {
  const userFile = await writeCredential(dir, `${user}.user`, `${user}\n${password}`)
  const opened: Bus[] = []
  return {
    async open(name: string, identity?: Parameters<typeof createNatsBus>[0]['identity']): Promise<Bus> {
      const b = await createNatsBus({ url, name, log: silentLogger(), userFile, ...(identity ? { identity } : {}) })
      opened.push(b)
      return b
    },
    close: () => Promise.all(opened.map((b) => b.close())),
  }
}

defineDurableSuite('nats', async () => {
  // A server per test, so every test starts with no streams.
  const dir = await tempDir('durable')
  const password = secret()
  const server = await startJetStreamNats(dir.path, { users: [{ user: 'apiary', password }] })
  const buses = await busesOf(dir.path, server.url, 'apiary', password)
  const bus = await buses.open('durable')
  return {
    bus,
    other: () => buses.open('durable-other'),
    async teardown() {
      await buses.close()
      await server.stop()
      await dir.remove()
    },
  }
})

const soon = () => Date.now() + 30_000

describe('durable: nats only', { timeout: 30_000 }, () => {
  let dir: TempDir
  // What each test started, stopped after it in reverse order.
  let started: Array<() => Promise<unknown>>
  beforeEach(async () => {
    dir = await tempDir('durable-nats')
    started = []
  })
  afterEach(async () => {
    for (const stop of started.reverse()) await stop()
    await dir.remove()
  })
  /** A JetStream server whose users are `users`, stopped after the test. */
  async function jetStream(users: TestUser[]): Promise<JetStreamNats> {
    const server = await startJetStreamNats(dir.path, { users })
    started.push(() => server.stop())
    return server
  }
  /** Buses of `user`, closed after the test (before the server stops). */
  async function busesFor(url: string, user: string, password: string) {
    const b = await busesOf(dir.path, url, user, password)
    started.push(b.close)
    return b
  }

  it('acknowledges and drops a body that is not JSON, and goes on', async () => {
    const password = secret()
    const server = await jetStream([{ user: 'apiary', password }])
    const buses = await busesFor(server.url, 'apiary', password)
    const raw = await connect({ servers: server.url, authenticator: usernamePasswordAuthenticator('apiary', password) })
    started.push(() => raw.close())
    const bus = await buses.open('not-json')
    await bus.durable.ensure(TEST_CONFIG)
    const subject = eventSubject()
    raw.publish(subject, new TextEncoder().encode('this is {not json'))
    await raw.flush()
    await bus.durable.publish(subject, { n: 2 }, { id: 'ok', deadline: soon() })
    const c = streamCollector((m) => m.ack())
    const r = bus.durable.consume('events', 'not-json', c.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
    await c.until((m) => nOf(m) === 2)
    await r.stop()
    expect(c.seen.map((m) => [m.seq, nOf(m)])).toEqual([[2, 2]])
  })

  it('says clearly that streams need JetStream when the server has none', async () => {
    const password = secret()
    const server = await startAuthNats(dir.path, { users: [{ user: 'apiary', password }] })
    started.push(() => server.stop())
    const buses = await busesFor(server.url, 'apiary', password)
    const bus = await buses.open('no-jetstream')
    const err = await rejectsWithCode(bus.durable.ensure(TEST_CONFIG), 'unavailable')
    expect(err.message).toMatch(/no JetStream/)
  })

  it('goes on through a server killed with SIGKILL and restarted on its store: publishes retried, the consumer resumed, the lease kept', async () => {
    const password = secret()
    const server = await jetStream([{ user: 'apiary', password }])
    const buses = await busesFor(server.url, 'apiary', password)
    const bus = await buses.open('restart')
    // A lease that outlives the outage: held across it without a renewal.
    await bus.durable.ensure({ ...TEST_CONFIG, leaseTtlMs: 60_000 })
    const lease = bus.durable.lease('leader', 'queen-a')
    expect(await lease.acquire()).toBe(true)
    const subject = eventSubject()
    const publish = (n: number) => bus.durable.publish(subject, { n }, { id: `${subject}/${n}`, deadline: soon() })
    const c = streamCollector((m) => m.ack())
    const r = bus.durable.consume('events', 'queen', c.handler, { ackWaitMs: 2000, maxBytes: 1024 })
    for (let n = 1; n <= 10; n++) await publish(n)
    await c.until((m) => nOf(m) === 10)

    await server.kill()
    // Published while no server runs: each retries until it is back.
    const during = Array.from({ length: 10 }, (_, i) => publish(11 + i))
    await server.restart()
    const receipts = await Promise.all(during)
    expect(receipts.map((x) => x.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i))
    for (let n = 21; n <= 25; n++) await publish(n)
    await c.until((m) => nOf(m) === 25)
    await waitAll(c, 25)
    await r.stop()
    expect(await bus.durable.lastSeq('events')).toBe(25)
    expect(await bus.durable.lease('leader', 'queen-b').acquire()).toBe(false)
    expect(await lease.holder()).toBe('queen-a')
  })

  it('a following reader whose consumer is gone (lost with a restarted server) makes it again and reads on from where it got to', async () => {
    const password = secret()
    const server = await jetStream([{ user: 'apiary', password }])
    const buses = await busesFor(server.url, 'apiary', password)
    const writer = await buses.open('writer')
    await writer.durable.ensure(TEST_CONFIG)
    const lines: string[] = []
    const userFile = await writeCredential(dir.path, 'follower.user', `apiary\n${password}`)
    const log = createLogger({ component: 'test', level: 'warn', destination: { write: (s: string) => void lines.push(s) } })
    const follower = await createNatsBus({ url: server.url, name: 'follower', log, userFile })
    started.push(() => follower.close())
    const raw = await connect({ servers: server.url, authenticator: usernamePasswordAuthenticator('apiary', password) })
    started.push(() => raw.close())
    const c = streamCollector()
    const r = follower.durable.read('log', c.handler, { afterSeq: 0, follow: true, maxBytes: 1024 })
    const write = (n: number) => writer.durable.publish(subjects.log, { n }, { id: `log/${n}`, deadline: soon() })
    await write(1)
    await c.until((m) => nOf(m) === 1)
    // What a server restarted on its store does to an ordered consumer (kept in memory): gone.
    const { consumers } = (await raw.request('$JS.API.CONSUMER.NAMES.APIARY_LOG', '{}')).json<{ consumers: string[] }>()
    expect(consumers).toHaveLength(1)
    await raw.request(`$JS.API.CONSUMER.DELETE.APIARY_LOG.${consumers[0]}`)
    await write(2)
    await write(3)
    await c.until((m) => nOf(m) === 3)
    await r.stop()
    expect(c.seen.map((m) => [m.seq, nOf(m)])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ])
    // Made again by the reader itself (nats.js alone would wait out a pull and two heartbeats).
    expect(lines.join('')).toMatch(/nothing came while the stream holds more; making its consumer again/)
  })

  it('a following reader behind a log whose records all aged out waits for the next one without making its consumer again and again', async () => {
    const password = secret()
    const server = await jetStream([{ user: 'apiary', password }])
    const buses = await busesFor(server.url, 'apiary', password)
    const writer = await buses.open('writer')
    await writer.durable.ensure({ ...TEST_CONFIG, logMaxAgeMs: 1000, dedupeWindowMs: 1000 })
    const write = (n: number) => writer.durable.publish(subjects.log, { n }, { id: `aged/${n}`, deadline: soon() })
    for (let n = 1; n <= 3; n++) await write(n)
    const raw = await connect({ servers: server.url, authenticator: usernamePasswordAuthenticator('apiary', password) })
    started.push(() => raw.close())
    const held = async () => (await raw.request('$JS.API.STREAM.INFO.APIARY_LOG', '{}')).json<{ state: { messages: number } }>().state.messages
    await waitUntil(async () => (await held()) === 0, 'the log to age out', 10_000)
    const lines: string[] = []
    const log = createLogger({ component: 'test', level: 'warn', destination: { write: (s: string) => void lines.push(s) } })
    const follower = await createNatsBus({ url: server.url, name: 'behind', log, userFile: await writeCredential(dir.path, 'behind.user', `apiary\n${password}`) })
    started.push(() => follower.close())
    let made = 0
    const advisories = raw.subscribe('$JS.EVENT.ADVISORY.CONSUMER.CREATED.APIARY_LOG.>', { callback: () => void made++ })
    // At the server before the reader makes its consumer, or that advisory is missed.
    await raw.flush()
    const c = streamCollector()
    const r = follower.durable.read('log', c.handler, { afterSeq: 0, follow: true, maxBytes: 1024 })
    // Nothing to await here but time: three of its stall checks pass with nothing to read.
    await new Promise((resolve) => setTimeout(resolve, 3 * 2000))
    await write(4)
    await c.until((m) => nOf(m) === 4)
    await r.stop()
    advisories.unsubscribe()
    expect(c.seen.map(nOf)).toEqual([4])
    expect(lines.join('')).not.toMatch(/making its consumer again/)
    expect(made).toBe(1)
  })

  it('runs on the permissions a role is given: a worker only publishes its events, a queen uses only the JetStream API it needs', async () => {
    const workerPass = secret()
    const queenPass = secret()
    const worker = { role: 'worker', id: 'web-1', region: 'conf' } as const
    const queen = { role: 'queen', id: 'q1' } as const
    const users: TestUser[] = [
      {
        user: 'worker',
        password: workerPass,
        permissions: { publish: [`${subjects.prefix}.ev.conf.web-1.*`], subscribe: [`${subjects.inboxPrefix('worker', 'web-1', 'conf')}.>`] },
      },
      { user: 'queen', password: queenPass, permissions: { publish: [subjects.log, ...QUEEN_JETSTREAM], subscribe: [`${subjects.inboxPrefix('queen', 'q1')}.>`] } },
    ]
    const server = await jetStream(users)
    const workers = await busesFor(server.url, 'worker', workerPass)
    const queens = await busesFor(server.url, 'queen', queenPass)
    const q = await queens.open('queen', queen)
    await q.durable.ensure(TEST_CONFIG)
    const w = await workers.open('worker', worker)
    const subject = subjects.nodeEvents('conf', 'web-1', 'job-1')
    expect(await w.durable.publish(subject, { n: 1 }, { id: 'e1', deadline: soon() })).toEqual({ seq: 1, duplicate: false })
    expect(await w.durable.publish(subject, { n: 1 }, { id: 'e1', deadline: soon() })).toEqual({ seq: 1, duplicate: true })
    // Another node's subject: the server refuses it, and the publish gives up at its deadline.
    await rejectsWithCode(w.durable.publish(subjects.nodeEvents('conf', 'web-2', 'job-1'), { n: 9 }, { id: 'forged', deadline: Date.now() + 500 }), 'timeout')

    const c = streamCollector((m) => m.ack())
    const consumer = q.durable.consume('events', 'queen', c.handler, { ackWaitMs: 60_000, maxBytes: 1024 })
    await c.until((m) => nOf(m) === 1)
    await consumer.stop()
    expect(await q.durable.publish(subjects.log, { n: 1 }, { id: 'l1', deadline: soon(), expectLastSeq: 0 })).toEqual({ seq: 1, duplicate: false })
    const log = streamCollector()
    await q.durable.read('log', log.handler, { afterSeq: 0, follow: false, maxBytes: 1024 }).done
    expect(log.seen.map(nOf)).toEqual([1])
    expect(await q.durable.lastSeq('events')).toBe(1)
    const lease = q.durable.lease('leader', 'q1')
    expect(await lease.acquire()).toBe(true)
    expect(await lease.acquire()).toBe(true)
    expect(await lease.holder()).toBe('q1')
    await lease.release()
    expect(await lease.holder()).toBeNull()
    await q.durable.secrets.put('jconf0001', 'wrapped')
    expect(await q.durable.secrets.get('jconf0001')).toBe('wrapped')
    await q.durable.secrets.delete('jconf0001')
    expect(await q.durable.secrets.get('jconf0001')).toBeUndefined()
    // A worker may not touch the bucket: its reads and writes are refused (no permission) and fail.
    await rejectsWithCode(w.durable.secrets.get('jconf0001'), 'unavailable')
    await rejectsWithCode(w.durable.secrets.put('jconf0001', 'forged'), 'unavailable')
  })
})

/**
 * What the queen's connection publishes to use streams and leases (besides `apiary.log`):
 * the JetStream API of its two streams and the lease bucket, acknowledgements of its durable
 * consumers, and the bucket's keys; it makes the claims bucket and touches none of its keys. Replies and deliveries come to its inbox.
 */
const QUEEN_JETSTREAM = (() => {
  const api = '$JS.API'
  const kv = 'KV_APIARY_LEASES'
  const secrets = 'KV_APIARY_SECRETS'
  const claims = 'KV_APIARY_CLAIMS'
  const streams = ['APIARY_EVENTS', 'APIARY_LOG']
  return [
    `${api}.INFO`,
    ...[...streams, kv, secrets, claims].flatMap((s) => [`${api}.STREAM.CREATE.${s}`, `${api}.STREAM.UPDATE.${s}`, `${api}.STREAM.INFO.${s}`]),
    ...streams.flatMap((s) => [`${api}.CONSUMER.CREATE.${s}.>`, `${api}.CONSUMER.INFO.${s}.*`, `${api}.CONSUMER.DELETE.${s}.*`, `${api}.CONSUMER.MSG.NEXT.${s}.*`]),
    ...streams.map((s) => `$JS.ACK.${s}.>`),
    `${api}.STREAM.MSG.GET.${kv}`,
    '$KV.APIARY_LEASES.>',
    `${api}.STREAM.MSG.GET.${secrets}`,
    '$KV.APIARY_SECRETS.>',
  ]
})()

/** Resolves once every n in 1..count was handed out at least once. */
async function waitAll(c: ReturnType<typeof streamCollector>, count: number): Promise<void> {
  for (let n = 1; n <= count; n++) await c.until((m) => nOf(m) === n)
}

describe('durable: nats cluster (R3)', { timeout: 45_000 }, () => {
  let dir: TempDir
  let cluster: NatsCluster
  let buses: Awaited<ReturnType<typeof busesOf>>
  let bus: Bus
  const R3 = { ...TEST_CONFIG, replicas: 3, leaseTtlMs: 3000 }

  beforeAll(async () => {
    dir = await tempDir('durable-cluster')
    const password = secret()
    cluster = await startNatsCluster(dir.path, { users: [{ user: 'apiary', password }] })
    buses = await busesOf(dir.path, cluster.url, 'apiary', password)
    bus = await buses.open('cluster')
    await bus.durable.ensure(R3)
  })
  afterAll(async () => {
    await buses?.close()
    await cluster?.stop()
    await dir?.remove()
  })

  it('publishes and consumes on while the stream leader is killed: nothing lost, nothing stored twice', async () => {
    const subject = eventSubject()
    const base = await bus.durable.lastSeq('events')
    const c = streamCollector((m) => m.ack())
    const r = bus.durable.consume('events', 'cluster-queen', c.handler, { ackWaitMs: 3000, maxBytes: 1024 })
    // A standby's reader follows along all the while.
    const followed = streamCollector()
    const follower = bus.durable.read('events', followed.handler, { afterSeq: base, follow: true, maxBytes: 1024 })
    const publish = (n: number) => bus.durable.publish(subject, { n }, { id: `${subject}/${n}`, deadline: soon() })
    const total = 60
    let killed: JetStreamNats | undefined
    for (let n = 1; n <= total; n++) {
      await publish(n)
      if (n === 20) {
        killed = await cluster.leaderOf('APIARY_EVENTS')
        await killed.kill()
      }
      if (n === 40) await killed!.restart()
    }
    await waitAll(c, total)
    await r.stop()
    await followed.until((m) => nOf(m) === total)
    await follower.stop()
    expect(followed.seen.map(nOf)).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    expect(await bus.durable.lastSeq('events')).toBe(base + total)
    const stored = streamCollector()
    await bus.durable.read('events', stored.handler, { afterSeq: base, follow: false, maxBytes: 1024 }).done
    expect(stored.seen.map(nOf)).toEqual(Array.from({ length: total }, (_, i) => i + 1))
  })

  it('keeps secrets on three servers: a value stored survives its bucket leader killed, and a deletion holds', async () => {
    const other = await buses.open('cluster-secrets')
    // The bucket's stream may still be electing a leader (a server of the cluster was restarted by the test before).
    await waitUntil(() => bus.durable.secrets.put('jcluster01', 'wrapped-r3').then(() => true, () => false), 'the value stored', 20_000, 200)
    const down = await cluster.leaderOf('KV_APIARY_SECRETS')
    await down.kill()
    try {
      await waitUntil(async () => (await other.durable.secrets.get('jcluster01').catch(() => undefined)) === 'wrapped-r3', 'the value read under a new bucket leader', 20_000, 200)
      await waitUntil(() => bus.durable.secrets.delete('jcluster01').then(() => true, () => false), 'the deletion under a new bucket leader', 20_000, 200)
      expect(await other.durable.secrets.get('jcluster01')).toBeUndefined()
    } finally {
      await down.restart()
    }
    expect(await bus.durable.secrets.get('jcluster01')).toBeUndefined()
  })

  it('keeps claims on three servers: one taken before its bucket leader is killed stays held, and new ones are taken once under the next', async () => {
    const other = await buses.open('cluster-claims')
    const key = claimKey('conf', 'jclaimr301', 'web-1')
    // The bucket's stream may still be electing a leader (a server of the cluster was restarted by the test before).
    let revision: number | undefined
    await waitUntil(
      async () => {
        revision = await bus.durable.claims.create(key, 'ssh-1').catch(() => undefined)
        // Taken by an earlier try whose answer was lost.
        if (revision === undefined) revision = await bus.durable.claims.get(key).then((h) => (h?.value === 'ssh-1' ? h.revision : undefined), () => undefined)
        return revision !== undefined
      },
      'a first claim',
      20_000,
      200,
    )
    expect(revision).toBeGreaterThan(0)
    const down = await cluster.leaderOf('KV_APIARY_CLAIMS')
    await down.kill()
    try {
      // A new bucket leader takes some seconds to be elected: until then the calls fail, and then hold.
      const next = claimKey('conf', 'jclaimr301', 'web-2')
      let taken: number | undefined
      await waitUntil(async () => (taken = await other.durable.claims.create(next, 'ssh-2').catch(() => undefined)) !== undefined, 'a claim under a new bucket leader', 20_000, 200)
      expect(await bus.durable.claims.create(next, 'ssh-1')).toBeUndefined()
      expect(await other.durable.claims.create(key, 'ssh-2')).toBeUndefined()
      // Read from a replica: it may lag the write, not hand out another holder.
      await waitUntil(async () => (await other.durable.claims.get(key))?.value === 'ssh-1', 'the first claim read back', 20_000, 200)
      expect(await other.durable.claims.update(next, 'ssh-2: ok', taken!)).toBeGreaterThan(taken!)
      expect(await bus.durable.claims.update(next, 'ssh-1', taken!)).toBeUndefined()
    } finally {
      await down.restart()
    }
  })

  it('keeps leases working while the bucket leader is down', async () => {
    const a = bus.durable.lease('cluster-leader', 'queen-a')
    const other = await buses.open('cluster-other')
    const b = other.durable.lease('cluster-leader', 'queen-b')
    // The bucket's stream may still be electing a leader (a server of the cluster was restarted by the test before).
    await waitUntil(() => a.acquire().catch(() => false), 'the lease taken', 20_000, 200)
    const down = await cluster.leaderOf('KV_APIARY_LEASES')
    await down.kill()
    try {
      // A new bucket leader takes some seconds to be elected: until then the calls fail, and then hold.
      await waitUntil(() => a.acquire().catch(() => false), 'the lease to be renewed under a new leader', 20_000, 200)
      expect(await b.acquire()).toBe(false)
      await a.release()
      expect(await b.acquire()).toBe(true)
      expect(await a.holder()).toBe('queen-b')
    } finally {
      await down.restart()
    }
  })
})
