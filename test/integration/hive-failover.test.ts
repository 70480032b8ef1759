import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Ack, type Bus, type Heartbeat, HiveJob, type HiveJobInput, signShare, subjects } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { createNatsBus } from '@apiary/shared/nats'
import { type Hive, startHive } from '@apiary/hive'
import { DURABLE_DEFAULTS } from '@apiary/queen'
import { type SpawnedNats, spawnNats } from '../harness/nats.ts'
import { type BusKind, type TempDir, tempDir, testQueenKey, testSigner, waitUntil } from '../harness/index.ts'
import { fakeNode, storeFinished } from './fake-node.ts'

const log = silentLogger()
const REGION = 'eu'

/** One nats-server with JetStream on a port it keeps across restarts, its store in `dir`. */
class RestartableNats {
  private constructor(
    private server: SpawnedNats,
    private readonly dir: TempDir,
  ) {}

  static async start(): Promise<RestartableNats> {
    const dir = await tempDir('hive-nats')
    const server = await spawnNats((port) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir.path])
    return new RestartableNats(server, dir)
  }

  get url(): string {
    return `nats://127.0.0.1:${this.server.port}`
  }

  /** Stops the server and starts it again on the same port with the same store. */
  async restart(): Promise<void> {
    const { port } = this.server
    await this.server.stop()
    this.server = await spawnNats(() => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', this.dir.path])
  }

  async stop(): Promise<void> {
    await this.server.stop()
    await this.dir.remove()
  }
}

/** What the hive says of itself: each heartbeat's count of running shares, as they come. */
function watchLoad(bus: Bus, hiveId: string) {
  const waiters: Array<{ running: number; resolve: () => void }> = []
  let peak = 0
  bus.subscribe(subjects.heartbeat('hive', REGION, hiveId), (msg) => {
    const { running } = msg.data as Heartbeat
    peak = Math.max(peak, running)
    for (const w of waiters.splice(0)) {
      if (w.running === running) w.resolve()
      else waiters.push(w)
    }
  })
  return {
    /** Resolves at the next heartbeat that counts `running` shares (within 20 s). */
    next: (running: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no heartbeat of ${hiveId} counting ${running} running shares came`)), 20_000)
        waiters.push({ running, resolve: () => (clearTimeout(timer), resolve()) })
      }),
    get peak() {
      return peak
    },
  }
}

const share = (o: Partial<HiveJobInput> & Pick<HiveJobInput, 'jobId' | 'nodes'>): HiveJob =>
  HiveJob.parse({
    phase: 0,
    attempt: 0,
    region: REGION,
    operation: { type: 'exec', argv: ['true'] },
    concurrency: 10,
    maxErrors: null,
    errorsSoFar: 0,
    timeoutMs: 1000,
    deliveryTimeoutMs: 1000,
    outputCapBytes: 1024,
    targets: o.nodes.length,
    ...o,
  })

/**
 * A hive alone on the bus, no queen: re-offers of a share (attempts), workers that took a task
 * before, and a NATS restart under a running share. The test plays the queen (it signs the
 * shares) and the workers.
 */
function defineHiveFailover(kind: BusKind) {
  describe(`a hive's shares across failover, over the ${kind} bus`, () => {
    let nats: RestartableNats | undefined
    let hiveBus: Bus
    let bus: Bus
    let hive: Hive
    let load: ReturnType<typeof watchLoad>
    /** The hive's own node ends, as they reach the events stream. */
    let verdicts: Array<{ subject: string; data: unknown }>

    beforeEach(async () => {
      if (kind === 'nats') {
        nats = await RestartableNats.start()
        hiveBus = await createNatsBus({ url: nats.url, name: 'apiary-hive:hive-a', log, insecure: true })
        bus = await createNatsBus({ url: nats.url, name: 'test', log, insecure: true })
      } else hiveBus = bus = createMemoryBus(log)
      // What the queen does first: the streams the hive stores its verdicts in.
      await bus.durable.ensure(DURABLE_DEFAULTS)
      verdicts = []
      bus.subscribe(`${subjects.prefix}.hev.>`, (msg) => void verdicts.push({ subject: msg.subject, data: msg.data }))
      load = watchLoad(bus, 'hive-a')
      await bus.flush()
      hive = startHive({ bus: hiveBus, log, hiveId: 'hive-a', region: REGION, heartbeatMs: 50, resultGraceMs: 300, queenKey: testQueenKey })
    })
    afterEach(async () => {
      await hive?.close()
      await hiveBus?.close()
      if (bus !== hiveBus) await bus?.close()
      await nats?.stop()
      nats = undefined
    })

    const offer = (s: HiveJob) => bus.request(subjects.hiveJobs(REGION), signShare(s, testSigner, Date.now()).offer, { timeoutMs: 5000 })

    it('takes a re-offer it never saw the first attempt of: what workers ran before settles as they say, counted once, and nothing runs twice', async () => {
      const jobId = 'jreoffer001'
      const before: Record<string, Ack['already']> = { 'a-1': 'ok', 'a-2': 'failed', 'a-3': 'running' }
      const nodes = await Promise.all(
        ['a-1', 'a-2', 'a-3', 'a-4'].map((n) =>
          fakeNode(bus, REGION, n, (task) => {
          const already = before[n]
          // A worker that ended a task publishes its final event again (a-1's is held back here:
          // its answer alone settles it); a-4 is new and runs now.
          if (n === 'a-2') storeFinished(bus, REGION, n, task.jobId, 'failed')
          if (!already) storeFinished(bus, REGION, n, task.jobId, 'ok')
          return { accepted: true, by: n, ...(already ? { already } : {}) }
          }),
        ),
      )
      // One at a time, with a budget of two errors: a-2's failure counted twice would halt it
      // before a-3 and a-4, and they would end skipped.
      const reply = await offer(share({ jobId, attempt: 2, nodes: ['a-1', 'a-2', 'a-3', 'a-4'], concurrency: 1, maxErrors: 2 }))
      expect(reply).toMatchObject({ accepted: true, by: 'hive-a' })
      await nodes[2]!.first
      await load.next(1)
      // a-3 was still running when the hive asked; its result comes now.
      storeFinished(bus, REGION, 'a-3', jobId, 'ok')
      await load.next(0)
      await hive.close()
      expect(nodes.map((n) => n.tasks.length)).toEqual([1, 1, 1, 1])
      expect(verdicts).toEqual([])
    })

    it('keeps the share it runs when it is re-offered to it, and refuses an older attempt after a newer one', async () => {
      const jobId = 'jreoffer002'
      const node = await fakeNode(bus, REGION, 'b-1', (_task, n) => ({ accepted: true, by: 'b-1', ...(n > 0 ? { already: 'running' as const } : {}) }))
      expect(await offer(share({ jobId, nodes: ['b-1'] }))).toMatchObject({ accepted: true })
      await node.first
      // The queen thought this hive dead (its heartbeats were late) and re-offered the share.
      expect(await offer(share({ jobId, attempt: 1, nodes: ['b-1'] }))).toMatchObject({ accepted: true, by: 'hive-a' })
      expect(await offer(share({ jobId, attempt: 0, nodes: ['b-1'] }))).toMatchObject({
        accepted: false,
        reason: 'refused: attempt 0 of this share is older than attempt 1',
      })
      await load.next(1)
      storeFinished(bus, REGION, 'b-1', jobId, 'ok')
      await load.next(0)
      await hive.close()
      expect(node.tasks).toHaveLength(1)
      expect(load.peak).toBe(1)
      expect(verdicts).toEqual([])
    })

    it('gives its own verdicts again under the newer attempt when the share it runs is re-offered to it, and its later ones under it too', async () => {
      const jobId = 'jreoffer003'
      // d-1 runs (its worker took it); d-2 and d-3 have no worker: the hive ends them itself, unreachable.
      const node = await fakeNode(bus, REGION, 'd-1', () => ({ accepted: true, by: 'd-1' }))
      const of = (n: string) => verdicts.filter((v) => (v.data as { node?: string }).node === n).map((v) => (v.data as { attempt?: number; state?: string }))
      expect(await offer(share({ jobId, nodes: ['d-1', 'd-2', 'd-3'], concurrency: 2 }))).toMatchObject({ accepted: true })
      await node.first
      await waitUntil(() => of('d-2').length === 1, "d-2's verdict")
      expect(of('d-2')).toEqual([expect.objectContaining({ attempt: 0, state: 'error' })])
      // The queen re-offered the share (to this hive, which goes on): it drops verdicts of attempt 0 from now on.
      expect(await offer(share({ jobId, attempt: 1, nodes: ['d-1', 'd-2', 'd-3'], concurrency: 2 }))).toMatchObject({ accepted: true, by: 'hive-a' })
      await waitUntil(() => of('d-2').length === 2 && of('d-3').some((v) => v.attempt === 1), 'the verdicts under attempt 1')
      expect(of('d-2')[1]).toMatchObject({ attempt: 1, state: 'error' })
      // Attempt 2 went to another hive (never seen here), attempt 3 comes here: that hive may run
      // d-2 now, so nothing is given again, and later verdicts stay under the attempt this hive holds.
      const before = verdicts.length
      expect(await offer(share({ jobId, attempt: 3, nodes: ['d-1', 'd-2', 'd-3'], concurrency: 2 }))).toMatchObject({ accepted: true, by: 'hive-a' })
      storeFinished(bus, REGION, 'd-1', jobId, 'ok')
      await load.next(0)
      await hive.close()
      expect(verdicts.slice(before)).toEqual([])
      expect(verdicts.every((v) => (v.data as { attempt?: number }).attempt! <= 1)).toBe(true)
      expect(node.tasks).toHaveLength(1)
    })

    if (kind === 'nats') {
      it('rides out a NATS restart: its subscriptions come back, and a finish lost meanwhile is recovered by asking again', async () => {
        const jobId = 'jblink00001'
        // c-1's finish is lost in the restart; asked again, it says ok. c-2 finishes after the
        // restart, heard on the hive's event subscription (asked again, it would only say running).
        const c1 = await fakeNode(bus, REGION, 'c-1', (task, n) => {
          if (n === 0) return { accepted: true, by: 'c-1' }
          storeFinished(bus, REGION, 'c-1', task.jobId, 'ok')
          return { accepted: true, by: 'c-1', already: 'ok' }
        })
        const c2 = await fakeNode(bus, REGION, 'c-2', (_task, n) => ({ accepted: true, by: 'c-2', ...(n > 0 ? { already: 'running' as const } : {}) }))
        expect(await offer(share({ jobId, nodes: ['c-1', 'c-2'], timeoutMs: 4000 }))).toMatchObject({ accepted: true })
        await Promise.all([c1.first, c2.first])
        await nats!.restart()
        // A heartbeat through the new server: the hive is connected again, and so is this side.
        await load.next(1)
        storeFinished(bus, REGION, 'c-2', jobId, 'ok')
        await load.next(0)
        await hive.close()
        expect(c1.tasks).toHaveLength(2)
        expect(c2.tasks).toHaveLength(1)
        expect(verdicts).toEqual([])
      })
    }
  })
}

defineHiveFailover('memory')
defineHiveFailover('nats')
