import { type Bus, type JobEvent } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import type { Hive } from '@apiary/hive'
import type { Queen } from '@apiary/queen'
import type { SshWorker, Worker } from '@apiary/worker'
import { type Embedded, memoryBuses, natsBuses, startEmbedded } from '@apiary/keeper'
import { type NatsServer, startNats } from './nats.ts'
import { type TempDir, tempDir } from './temp.ts'
import { waitUntil } from './wait.ts'

export type BusKind = 'memory' | 'nats'

export interface ClusterOptions {
  heartbeatMs?: number
  cancelGraceMs?: number
  /** The queen's inventory of agentless nodes. */
  inventoryFile?: string
  /** Nodes per share message (the queen's default is 5,000). */
  shareChunkNodes?: number
}

/**
 * A whole cluster in this test process (`startEmbedded`): one queen over real HTTP, hives and
 * workers on either the in-process bus or a real nats-server (one connection per role, as in
 * production). Quick timers, so that failures show within a test's time.
 */
export class TestCluster {
  client!: JobClient
  readonly dir: TempDir
  readonly #cluster: Embedded
  readonly #nats: NatsServer | undefined

  private constructor(dir: TempDir, cluster: Embedded, nats: NatsServer | undefined) {
    this.dir = dir
    this.#cluster = cluster
    this.#nats = nats
  }

  static async start(kind: BusKind, opts: ClusterOptions = {}): Promise<TestCluster> {
    const dir = await tempDir('cluster')
    let nats: NatsServer | undefined
    let cluster: Embedded
    const log = silentLogger()
    try {
      nats = kind === 'nats' ? await startNats() : undefined
      cluster = await startEmbedded({
        log,
        buses: nats ? natsBuses({ url: nats.url, log, connect: { insecure: true } }) : memoryBuses(log),
        queen: {
          stateDir: dir.path,
          // The restart tests want what a production queen does.
          rememberNodes: true,
          hiveAckTimeoutMs: 2000,
          cancelGraceMs: opts.cancelGraceMs ?? 5000,
          sweepMs: 100,
          // Heartbeats are 200 ms here: a second is five of them.
          settleMs: 1000,
          reofferRetryMs: 300,
          trimEventsEveryMs: 200,
          ...(opts.shareChunkNodes ? { shareChunkNodes: opts.shareChunkNodes } : {}),
          ...(opts.inventoryFile ? { inventoryFile: opts.inventoryFile, inventoryPollMs: 100 } : {}),
        },
        defaults: { heartbeatMs: opts.heartbeatMs ?? 200, resultGraceMs: 5000, killGraceMs: 500, inventoryPollMs: 100 },
      })
    } catch (err) {
      // A cluster that cannot start leaves no nats-server or directory behind.
      await nats?.stop()
      await dir.remove()
      throw err
    }
    const c = new TestCluster(dir, cluster, nats)
    c.#connect()
    return c
  }

  get queen(): Queen {
    return this.#cluster.queen
  }

  get natsUrl(): string | undefined {
    return this.#nats?.url
  }

  /** The directories what this cluster stores lives in: the queen's state and, over NATS, JetStream's. */
  get storeDirs(): string[] {
    return [this.dir.path, ...(this.#nats?.storeDir ? [this.#nats.storeDir] : [])]
  }

  /** A bus for a fake role: its own NATS connection, or the shared in-process bus. */
  bus(name: string): Promise<Bus> {
    return this.#cluster.buses.open(name)
  }

  async startQueen(): Promise<void> {
    await this.#cluster.startQueen()
    this.#connect()
  }

  async stopQueen(): Promise<void> {
    await this.client.close()
    await this.#cluster.stopQueen()
  }

  async addHive(region: string, id = `hive-${region}`): Promise<Hive> {
    const hive = await this.#cluster.addHive({ region, hiveId: id })
    await this.#settle()
    return hive
  }

  async addWorker(nodeId: string, region = 'default', labels: Record<string, string> = {}): Promise<Worker> {
    const worker = await this.#cluster.addWorker({ nodeId, region, labels })
    await this.#settle()
    return worker
  }

  /** An SSH worker for `region`, reaching the inventory's nodes with the given keys; resolves once they are online. */
  async addSshWorker(region: string, o: { inventoryFile: string; knownHosts: string; keyFile?: string; hostKeyPolicy?: 'strict' | 'accept-new'; id?: string }): Promise<SshWorker> {
    const worker = await this.#cluster.addSshWorker({
      region,
      ...(o.id ? { id: o.id } : {}),
      inventoryFile: o.inventoryFile,
      // One quick attempt and a breaker that opens on the second failure: unreachable nodes show at once.
      pool: { knownHosts: o.knownHosts, hostKeyPolicy: o.hostKeyPolicy ?? 'strict', connectTimeoutMs: 3000, attempts: 1, breaker: { failures: 2, cooldownMs: 60_000 }, ...(o.keyFile ? { keyFile: o.keyFile } : {}) },
    })
    await waitUntil(async () => (await this.client.nodes()).some((n) => n.executor === 'ssh' && n.region === region && n.online), `SSH nodes of ${region} to be online`)
    return worker
  }

  removeWorker(nodeId: string): Promise<void> {
    return this.#cluster.removeWorker(nodeId)
  }

  /** Every event of a job, to `job.finished`. */
  async events(jobId: string, opts: { output?: boolean; after?: number } = {}): Promise<JobEvent[]> {
    const out: JobEvent[] = []
    for await (const ev of this.client.stream(jobId, { output: opts.output ?? true, ...(opts.after ? { after: opts.after } : {}) })) out.push(ev)
    return out
  }

  async stop(): Promise<void> {
    await this.client.close()
    await this.#cluster.close()
    await this.#nats?.stop()
    await this.dir.remove()
  }

  #connect(): void {
    this.client = createJobClient({ url: this.queen.url, token: this.queen.token })
  }

  /** Waits until the queen lists every worker online. */
  async #settle(): Promise<void> {
    const want = [...this.#cluster.workers.keys()]
    await waitUntil(async () => {
      const nodes = await this.client.nodes()
      return want.every((id) => nodes.some((n) => n.id === id && n.online))
    }, 'workers to be online')
  }
}
