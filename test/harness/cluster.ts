import { join } from 'node:path'
import { type Bus, type JobEvent, type Logger } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { type InventoryHandle, watchInventory } from '@apiary/shared/inventory'
import { type Hive, startHive } from '@apiary/hive'
import { type Queen, startQueen } from '@apiary/queen'
import { createSshPool, type SshPool, type SshWorker, startSshWorker, startWorker, type Worker } from '@apiary/worker'
import { type NatsServer, startNats } from './nats.ts'
import { type TempDir, tempDir } from './temp.ts'
import { waitUntil } from './wait.ts'

export type BusKind = 'memory' | 'nats'

export interface ClusterOptions {
  heartbeatMs?: number
  cancelGraceMs?: number
  log?: Logger
  /** The queen's inventory of agentless nodes. */
  inventoryFile?: string
}

/**
 * A whole cluster in this test process: one queen over real HTTP, hives and workers on either
 * the in-process bus or a real nats-server (one connection per role, as in production).
 */
export class TestCluster {
  queen!: Queen
  client!: JobClient
  readonly workers = new Map<string, { worker: Worker; bus: Bus }>()
  readonly hives = new Map<string, { hive: Hive; bus: Bus }>()
  readonly sshWorkers = new Map<string, { worker: SshWorker; bus: Bus; pool: SshPool; inventory: InventoryHandle }>()
  #memory: Bus | undefined
  #nats: NatsServer | undefined
  #queenBus!: Bus
  dir!: TempDir
  readonly log: Logger
  readonly heartbeatMs: number

  private constructor(
    readonly kind: BusKind,
    private readonly opts: ClusterOptions,
  ) {
    this.log = opts.log ?? silentLogger()
    this.heartbeatMs = opts.heartbeatMs ?? 200
  }

  static async start(kind: BusKind, opts: ClusterOptions = {}): Promise<TestCluster> {
    const c = new TestCluster(kind, opts)
    c.dir = await tempDir('cluster')
    if (kind === 'nats') c.#nats = await startNats()
    else c.#memory = createMemoryBus(c.log)
    await c.startQueen()
    return c
  }

  get natsUrl(): string | undefined {
    return this.#nats?.url
  }

  /** A bus for one role: its own NATS connection, or the shared in-process bus. */
  async bus(name: string): Promise<Bus> {
    if (this.#memory) return this.#memory
    return createNatsBus({ url: this.#nats!.url, name, log: this.log })
  }

  async startQueen(): Promise<void> {
    this.#queenBus = await this.bus('queen')
    this.queen = await startQueen({
      bus: this.#queenBus,
      log: this.log,
      stateDir: this.dir.path,
      host: '127.0.0.1',
      port: 0,
      tokenFile: join(this.dir.path, 'token'),
      hiveAckTimeoutMs: 2000,
      cancelGraceMs: this.opts.cancelGraceMs ?? 5000,
      sweepMs: 100,
      ...(this.opts.inventoryFile ? { inventoryFile: this.opts.inventoryFile, inventoryPollMs: 100 } : {}),
    })
    this.client = createJobClient({ url: this.queen.url, token: this.queen.token })
  }

  async stopQueen(): Promise<void> {
    await this.client.close()
    await this.queen.close()
    if (this.#queenBus !== this.#memory) await this.#queenBus.close()
  }

  async addHive(region: string, id = `hive-${region}`): Promise<Hive> {
    const bus = await this.bus(id)
    const hive = startHive({ bus, log: this.log, hiveId: id, region, heartbeatMs: this.heartbeatMs, resultGraceMs: 5000 })
    this.hives.set(id, { hive, bus })
    await this.settle(bus)
    return hive
  }

  async addWorker(nodeId: string, region = 'default', labels: Record<string, string> = {}): Promise<Worker> {
    const bus = await this.bus(`worker:${nodeId}`)
    const worker = startWorker({ bus, log: this.log, nodeId, region, labels, heartbeatMs: this.heartbeatMs, killGraceMs: 500 })
    this.workers.set(nodeId, { worker, bus })
    await this.settle(bus)
    return worker
  }

  /** An SSH worker for `region`, reaching the inventory's nodes with the given keys. */
  async addSshWorker(region: string, o: { inventoryFile: string; knownHosts: string; keyFile?: string; hostKeyPolicy?: 'strict' | 'accept-new'; id?: string }): Promise<SshWorker> {
    const id = o.id ?? `ssh-${region}`
    const bus = await this.bus(id)
    const inventory = await watchInventory(o.inventoryFile, this.log, { pollMs: 100 })
    const pool = createSshPool({ knownHosts: o.knownHosts, hostKeyPolicy: o.hostKeyPolicy ?? 'strict', connectTimeoutMs: 3000, attempts: 1, breaker: { failures: 2, cooldownMs: 60_000 }, ...(o.keyFile ? { keyFile: o.keyFile } : {}) })
    const worker = startSshWorker({ bus, log: this.log, id, region, heartbeatMs: this.heartbeatMs, inventory: () => inventory.nodes(), pool, killGraceMs: 500 })
    this.sshWorkers.set(id, { worker, bus, pool, inventory })
    await bus.flush()
    await this.#queenBus.flush()
    await waitUntil(async () => (await this.client.nodes()).some((n) => n.executor === 'ssh' && n.region === region && n.online), `SSH nodes of ${region} to be online`)
    return worker
  }

  async removeWorker(nodeId: string): Promise<void> {
    const w = this.workers.get(nodeId)
    if (!w) return
    this.workers.delete(nodeId)
    await w.worker.close()
    if (w.bus !== this.#memory) await w.bus.close()
  }

  /** Waits until the queen has seen every worker's first heartbeat. */
  async settle(bus: Bus): Promise<void> {
    await bus.flush()
    await this.#queenBus.flush()
    const want = [...this.workers.keys()]
    await waitUntil(async () => {
      const nodes = await this.client.nodes()
      return want.every((id) => nodes.some((n) => n.id === id && n.online))
    }, 'workers to be online')
  }

  /** Every event of a job, to `job.finished`. */
  async events(jobId: string, opts: { output?: boolean; after?: number } = {}): Promise<JobEvent[]> {
    const out: JobEvent[] = []
    for await (const ev of this.client.stream(jobId, { output: opts.output ?? true, ...(opts.after ? { after: opts.after } : {}) })) out.push(ev)
    return out
  }

  async stop(): Promise<void> {
    for (const id of [...this.workers.keys()]) await this.removeWorker(id)
    for (const s of this.sshWorkers.values()) {
      await s.worker.close()
      s.inventory.close()
      await s.pool.close()
      if (s.bus !== this.#memory) await s.bus.close()
    }
    this.sshWorkers.clear()
    for (const { hive, bus } of this.hives.values()) {
      await hive.close()
      if (bus !== this.#memory) await bus.close()
    }
    this.hives.clear()
    await this.stopQueen()
    await this.#memory?.close()
    await this.#nats?.stop()
    await this.dir.remove()
  }
}

