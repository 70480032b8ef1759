import { join } from 'node:path'
import { ApiaryError, type Bus, createSigner, createVerifier, generateSigningKey, type Logger, type Signer, type Verifier } from '@apiary/shared'
import { watchInventory } from '@apiary/shared/inventory'
import { type Hive, type HiveConfig, startHive } from '@apiary/hive'
import { type Queen, type QueenConfig, startQueen } from '@apiary/queen'
import {
  createSshPool,
  type Journal,
  journalDir,
  openJournal,
  type SshPoolOptions,
  type SshWorker,
  type SshWorkerConfig,
  startSshWorker,
  startWorker,
  type Worker,
  type WorkerConfig,
} from '@apiary/worker'
import { type BusFactory, memoryBuses } from './embedded/buses.ts'

/**
 * The queen's `QueenConfig` without bus and logger; host, port and token file have defaults,
 * and without a signer the cluster signs with a key of its own, made at start and never written.
 */
export type EmbeddedQueenOptions = Omit<QueenConfig, 'bus' | 'log' | 'host' | 'port' | 'tokenFile' | 'signer'> & Partial<Pick<QueenConfig, 'host' | 'port' | 'tokenFile' | 'signer'>>

/** What a role gets unless its spec says otherwise; a knob left out is the package's own default. */
export interface RoleDefaults {
  region: string
  heartbeatMs: number
  /** Workers' and SSH workers' SIGTERM → SIGKILL grace. */
  killGraceMs?: number
  /** How long a hive waits for a dispatched node's result. */
  resultGraceMs?: number
  /** How often an SSH worker checks its inventory file for changes. */
  inventoryPollMs?: number
}

/** A hive; `hiveId` defaults to `hive-<region>`. */
export type HiveSpec = Partial<Pick<HiveConfig, 'hiveId' | 'region' | 'heartbeatMs' | 'resultGraceMs'>>

/** A local (agent) worker of node `nodeId`. */
export type WorkerSpec = Pick<WorkerConfig, 'nodeId'> & Partial<Pick<WorkerConfig, 'region' | 'labels' | 'heartbeatMs' | 'killGraceMs'>>

/** An SSH worker for the region's nodes of `inventoryFile`, with a pool of its own; `id` defaults to `ssh-<region>`. */
export type SshWorkerSpec = Partial<Pick<SshWorkerConfig, 'id' | 'region' | 'heartbeatMs' | 'killGraceMs'>> & {
  inventoryFile: string
  /** The pool's options as `createSshPool` takes them (`sshPoolOptionsFrom` maps the flags); the cluster's logger is added. */
  pool: Omit<SshPoolOptions, 'log'>
  inventoryPollMs?: number
}

export interface EmbeddedOptions {
  log: Logger
  /** One bus per role; default the in-process bus, shared by all (`memoryBuses`). Closed with the cluster. */
  buses?: BusFactory
  /**
   * The queen's public key its hives and workers pin; by default the embedded queen's. A
   * cluster without a queen (a fleet's worker host) must be given it.
   */
  queenKey?: string
  /** The queen; without it the process hosts only the roles it adds (a fleet's worker host). */
  queen?: EmbeddedQueenOptions
  defaults?: Partial<RoleDefaults>
  /**
   * Where workers and SSH workers keep their journals (`journalDir`), so that a restarted
   * cluster runs no task twice; by default the queen's `stateDir`. Without either, in memory.
   */
  workerStateDir?: string
  /** Roles to start with, in this order: hives, SSH workers, workers. */
  hives?: HiveSpec[]
  sshWorkers?: SshWorkerSpec[]
  workers?: WorkerSpec[]
}

export interface Embedded {
  /** The running queen; throws `unavailable` while it is stopped (or when there is none). */
  readonly queen: Queen
  /** The cluster's bus factory, for a bus outside its roles (a test's fake node); `release` it when done. */
  readonly buses: BusFactory
  readonly hives: ReadonlyMap<string, Hive>
  readonly workers: ReadonlyMap<string, Worker>
  readonly sshWorkers: ReadonlyMap<string, SshWorker>
  /** Starts the queen again with the same options and state (a restart, after `stopQueen`). */
  startQueen(): Promise<Queen>
  stopQueen(): Promise<void>
  /** Each add resolves once the role's first heartbeat is on its way to the queen (both buses flushed). */
  addHive(spec?: HiveSpec): Promise<Hive>
  addWorker(spec: WorkerSpec): Promise<Worker>
  addSshWorker(spec: SshWorkerSpec): Promise<SshWorker>
  removeHive(hiveId: string): Promise<void>
  removeWorker(nodeId: string): Promise<void>
  removeSshWorker(id: string): Promise<void>
  /**
   * Ends every role in reverse order of start (roles of one kind started one after another end
   * together), then the queen, then the bus factory.
   */
  close(): Promise<void>
}

const ROLE_DEFAULTS: RoleDefaults = { region: 'default', heartbeatMs: 5000 }

type Kind = 'hive' | 'worker' | 'ssh-worker'

/**
 * The whole cluster in one process: a queen with its store on disk, hives, local workers and
 * SSH workers, each on a bus of its own from `buses` (or all on the in-process bus). The same
 * code as the distributed roles, another bus. `keeper dev`, the test harness and the
 * benchmarks' worker hosts all assemble their roles here.
 *
 * @example
 * const cluster = await startEmbedded({ log, queen: { stateDir }, hives: [{ region: 'eu' }], workers: [{ nodeId: 'web-1', region: 'eu' }] })
 * await cluster.addWorker({ nodeId: 'web-2', region: 'eu' })
 * await cluster.close()
 */
export async function startEmbedded(o: EmbeddedOptions): Promise<Embedded> {
  const d: RoleDefaults = { ...ROLE_DEFAULTS, ...o.defaults }
  const buses = o.buses ?? memoryBuses(o.log)
  let queen: { queen: Queen; bus: Bus } | undefined
  const roles = { hive: new Map<string, Hive>(), worker: new Map<string, Worker>(), 'ssh-worker': new Map<string, SshWorker>() }
  /** What is up, in order of start, with what ends it. */
  const up: Array<{ kind: Kind; id: string; close(): Promise<void> }> = []
  let closing = false
  const signer: Signer | undefined = o.queen ? (o.queen.signer ?? createSigner(generateSigningKey().privatePem)) : undefined
  const verifier: Verifier | undefined = o.queenKey ? createVerifier(o.queenKey, 'queenKey') : signer && createVerifier(signer.publicKey)
  const queenKey = (kind: Kind): Verifier => {
    if (!verifier) throw new ApiaryError('invalid_input', `a ${kind} of a cluster without a queen needs the queen's public key (queenKey)`, 'queenKey')
    return verifier
  }

  /** Records a started role, or ends it at once (a duplicate id, a closing cluster); then flushes. */
  async function started<R>(kind: Kind, byId: Map<string, R>, id: string, role: R, bus: Bus, end: () => Promise<void>): Promise<R> {
    const close = async () => {
      try {
        await end()
      } finally {
        await buses.release(bus)
      }
    }
    if (closing || byId.has(id)) {
      await close()
      throw closing ? new ApiaryError('closed', `the embedded cluster closed while ${kind} ${id} started`) : new ApiaryError('conflict', `${kind} ${id} is already running`, 'id')
    }
    byId.set(id, role)
    up.push({ kind, id, close })
    // The first heartbeat must reach the queen before a job can target the role.
    await bus.flush()
    await queen?.bus.flush()
    return role
  }
  /** Refused before anything opens: a second role with one id would heartbeat as the first. */
  function admit(kind: Kind, id: string): void {
    if (closing) throw new ApiaryError('closed', `the embedded cluster is closing: ${kind} ${id} not started`)
    if (roles[kind].has(id)) throw new ApiaryError('conflict', `${kind} ${id} is already running`, 'id')
  }
  /** A worker's journal on disk under `workerStateDir`, or undefined (the worker keeps one in memory). */
  const journalsIn = o.workerStateDir ?? o.queen?.stateDir
  async function openWorkerJournal(kind: 'worker' | 'ssh-worker', id: string): Promise<Journal | undefined> {
    return journalsIn === undefined ? undefined : openJournal({ dir: journalDir(journalsIn, kind, id), log: o.log.child({ component: kind }) })
  }
  async function remove(kind: Kind, id: string): Promise<void> {
    const i = up.findIndex((r) => r.kind === kind && r.id === id)
    if (i < 0) return
    const [r] = up.splice(i, 1)
    roles[kind].delete(id)
    await r!.close()
  }

  const cluster: Embedded = {
    get queen() {
      if (!queen) throw new ApiaryError('unavailable', o.queen ? 'the embedded queen is stopped' : 'this embedded cluster has no queen')
      return queen.queen
    },
    buses,
    hives: roles.hive,
    workers: roles.worker,
    sshWorkers: roles['ssh-worker'],

    async startQueen() {
      if (!o.queen) throw new ApiaryError('invalid_input', 'this embedded cluster has no queen', 'queen')
      if (closing) throw new ApiaryError('closed', 'the embedded cluster is closing: the queen is not started')
      if (queen) throw new ApiaryError('conflict', 'the embedded queen is already running')
      const q = o.queen
      const bus = await buses.open('apiary-queen', { role: 'queen', id: 'queen' })
      try {
        const running = await startQueen({
          ...q,
          host: q.host ?? '127.0.0.1',
          port: q.port ?? 0,
          tokenFile: q.tokenFile ?? join(q.stateDir, 'token'),
          // Its workers start with it: nothing to wait for after a restart.
          rememberNodes: q.rememberNodes ?? false,
          signer: signer!,
          bus,
          log: o.log.child({ component: 'queen' }),
        })
        queen = { queen: running, bus }
        return running
      } catch (err) {
        await buses.release(bus)
        throw err
      }
    },

    async stopQueen() {
      const q = queen
      queen = undefined
      if (!q) return
      await q.queen.close()
      await buses.release(q.bus)
    },

    async addHive(spec = {}) {
      const region = spec.region ?? d.region
      const hiveId = spec.hiveId ?? `hive-${region}`
      admit('hive', hiveId)
      const key = queenKey('hive')
      const bus = await buses.open(`apiary-hive:${hiveId}`, { role: 'hive', id: hiveId, region })
      const hive = startHive({
        bus,
        log: o.log.child({ component: 'hive' }),
        hiveId,
        region,
        heartbeatMs: spec.heartbeatMs ?? d.heartbeatMs,
        resultGraceMs: spec.resultGraceMs ?? d.resultGraceMs,
        queenKey: key,
      })
      return started('hive', roles.hive, hiveId, hive, bus, () => hive.close())
    },

    async addWorker(spec) {
      admit('worker', spec.nodeId)
      const key = queenKey('worker')
      const journal = await openWorkerJournal('worker', spec.nodeId)
      let bus: Bus
      try {
        bus = await buses.open(`apiary-worker:${spec.nodeId}`, { role: 'worker', id: spec.nodeId, region: spec.region ?? d.region })
      } catch (err) {
        await journal?.close()
        throw err
      }
      const worker = startWorker({
        bus,
        log: o.log.child({ component: 'worker' }),
        nodeId: spec.nodeId,
        region: spec.region ?? d.region,
        labels: spec.labels ?? {},
        heartbeatMs: spec.heartbeatMs ?? d.heartbeatMs,
        killGraceMs: spec.killGraceMs ?? d.killGraceMs,
        queenKey: key,
        ...(journal ? { journal } : {}),
      })
      return started('worker', roles.worker, spec.nodeId, worker, bus, () => worker.close())
    },

    async addSshWorker(spec) {
      const region = spec.region ?? d.region
      const id = spec.id ?? `ssh-${region}`
      admit('ssh-worker', id)
      const key = queenKey('ssh-worker')
      const log = o.log.child({ component: 'ssh-worker' })
      const inventory = await watchInventory(spec.inventoryFile, log, { pollMs: spec.inventoryPollMs ?? d.inventoryPollMs })
      const others = new Set([...inventory.nodes().values()].map((n) => n.region).filter((r) => r !== region))
      if (others.size > 0) log.warn({ regions: [...others] }, `SSH worker ${id} serves region ${region} only; inventory nodes of other regions end "no hive" without a hive and SSH worker of their own`)
      let pool: ReturnType<typeof createSshPool> | undefined
      let journal: Journal | undefined
      let bus: Bus
      try {
        pool = createSshPool({ ...spec.pool, log })
        journal = await openWorkerJournal('ssh-worker', id)
        bus = await buses.open(`apiary-worker:${id}`, { role: 'ssh-worker', id, region })
      } catch (err) {
        inventory.close()
        await pool?.close()
        await journal?.close()
        throw err
      }
      const worker = startSshWorker({
        bus,
        log,
        id,
        region,
        heartbeatMs: spec.heartbeatMs ?? d.heartbeatMs,
        inventory: () => inventory.nodes(),
        pool,
        killGraceMs: spec.killGraceMs ?? d.killGraceMs,
        queenKey: key,
        ...(journal ? { journal } : {}),
      })
      const ownPool = pool
      return started('ssh-worker', roles['ssh-worker'], id, worker, bus, async () => {
        try {
          await worker.close()
        } finally {
          inventory.close()
          await ownPool.close()
        }
      })
    },

    removeHive: (hiveId) => remove('hive', hiveId),
    removeWorker: (nodeId) => remove('worker', nodeId),
    removeSshWorker: (id) => remove('ssh-worker', id),

    close() {
      closed ??= closeAll()
      return closed
    },
  }

  /** Once, however many callers ask: a second close waits for the first. */
  let closed: Promise<void> | undefined
  async function closeAll(): Promise<void> {
    closing = true
    const failures: unknown[] = []
    while (up.length > 0) {
      const kind = up.at(-1)!.kind
      const run: Array<(typeof up)[number]> = []
      while (up.at(-1)?.kind === kind) run.push(up.pop()!)
      for (const r of run) roles[kind].delete(r.id)
      for (const s of await Promise.allSettled(run.map((r) => r.close()))) if (s.status === 'rejected') failures.push(s.reason)
    }
    for (const end of [() => cluster.stopQueen(), () => buses.close()]) {
      try {
        await end()
      } catch (err) {
        failures.push(err)
      }
    }
    if (failures.length > 0) throw new ApiaryError('internal', `closing the embedded cluster: ${failures.length} part(s) failed`, undefined, { cause: failures.length === 1 ? failures[0] : new AggregateError(failures) })
  }

  try {
    if (o.queen) await cluster.startQueen()
    for (const h of o.hives ?? []) await cluster.addHive(h)
    for (const s of o.sshWorkers ?? []) await cluster.addSshWorker(s)
    for (const w of o.workers ?? []) await cluster.addWorker(w)
  } catch (err) {
    await cluster.close().catch(() => undefined)
    throw err
  }
  return cluster
}
