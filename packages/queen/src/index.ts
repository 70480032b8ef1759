import { existsSync, rmSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import type { Hono } from 'hono'
import { BODY_LIMITS, type Bus, type BusMessage, decode, type DurableConfig, Heartbeat, type Logger, parseSubject, type Signer, subjects } from '@apiary/shared'
import { watchInventory } from '@apiary/shared/inventory'
import { createMetrics, type DaemonMetrics, ensureStateDir, rateLimitedWarning, secondsSince } from '@apiary/shared/runtime'
import { AuditLog } from './access/audit.ts'
import { Auditor } from './access/auditor.ts'
import { UserRegistry } from './access/users.ts'
import { createApp } from './http/app.ts'
import type { AppEnv } from './http/auth.ts'
import { type Served, serveApp, type TlsFiles } from './http/serve.ts'
import { Coordinator } from './jobs/coordinator.ts'
import { type EventFeed, EventLog, type LogWriter } from './jobs/event-log.ts'
import { createHiveDispatch, type HiveDispatch } from './jobs/hive-dispatch.ts'
import { createSecretSealer } from './jobs/sealed-secrets.ts'
import { Leadership, LOG_RECORD_MAX, RecordApplier } from './jobs/leader.ts'
import { HeartbeatIntake } from './presence/intake.ts'
import { Presence } from './presence/presence.ts'
import { openSqliteStore } from './store/sqlite.ts'
import type { JobStore, KnownNode } from './store/store.ts'
import { ensureToken } from './token.ts'

/** How often finished jobs past retention are pruned from the index. */
const PRUNE_EVERY_MS = 60_000
/** How often the nodes that came online are written down, for a restart to wait for. */
const REMEMBER_EVERY_MS = 1000

/** The metrics a queen keeps, served on `GET /metrics`. */
export const QUEEN_METRICS = ['jobsFinished', 'jobDuration', 'nodesFinished', 'nodeDuration', 'dispatchLatency', 'eventsIngested', 'storeCommit', 'sseClients', 'draining'] as const
type QueenMetrics = DaemonMetrics<(typeof QUEEN_METRICS)[number]>

/** Times each share offer until a hive answers. */
function timedDispatch(d: HiveDispatch, metrics: QueenMetrics): HiveDispatch {
  return {
    ...d,
    offer: async (share) => {
      const t0 = performance.now()
      const outcome = await d.offer(share).catch((err: unknown) => {
        metrics.m.dispatchLatency.observe({ outcome: 'failed' }, secondsSince(t0))
        throw err
      })
      metrics.m.dispatchLatency.observe({ outcome: outcome.accepted ? 'accepted' : 'refused' }, secondsSince(t0))
      return outcome
    },
  }
}

/** Counts the event streams (SSE) open: each listens to the feed while it is open. */
function countedFeed(feed: EventFeed, metrics: QueenMetrics): EventFeed {
  return {
    listen(jobId, fn) {
      metrics.m.sseClients.inc()
      const unlisten = feed.listen(jobId, fn)
      let open = true
      return () => {
        if (open) metrics.m.sseClients.dec()
        open = false
        unlisten()
      }
    },
  }
}

/** The HTTP API alone, over dependencies the caller supplies; who may call each route. */
export { type AppDeps, createApp, ROUTE_ACCESS } from './http/app.ts'
export { openApiDocument, openApiPath } from './http/openapi.ts'
export { WORKER_SILENT_CAUSE } from './jobs/job-run.ts'
/** Users and the audit log, as the queen keeps them (docs/access.md). */
export { AuditLog } from './access/audit.ts'
export { hashToken } from './access/users-file.ts'

/** What the queen keeps, and for how long, unless told otherwise. */
export const DURABLE_DEFAULTS: DurableConfig = {
  replicas: 1,
  eventsMaxAgeMs: 7 * 24 * 3600_000,
  logMaxAgeMs: 30 * 24 * 3600_000,
  eventsMaxBytes: 1024 ** 3,
  logMaxBytes: 4 * 1024 ** 3,
  claimsMaxBytes: 1024 ** 3,
  leaseTtlMs: 6000,
  dedupeWindowMs: 2 * 60_000,
}

export interface QueenConfig {
  bus: Bus
  log: Logger
  /** Its name among queens (and on the bus); default `queen`. */
  queenId?: string
  /**
   * Streams and leases (see `DURABLE_DEFAULTS`); `logMaxAgeMs` is also how long the index
   * keeps a finished job.
   */
  durable?: Partial<DurableConfig>
  /** After it starts, how long the queen waits to hear everyone before a silent worker or hive counts as gone. */
  settleMs?: number
  /** An event the last leader took but never acknowledged goes to the next after this long. */
  ackWaitMs?: number
  /** How often the leader trims what it applied from the events stream; default 5 s. */
  trimEventsEveryMs?: number
  /** How long after a failed re-offer of a share (its hive gone, no other took it) the next is tried; default 5 s. */
  reofferRetryMs?: number
  /** Signs shares and control messages; hives and workers pin its public key. */
  signer: Signer
  stateDir: string
  host: string
  /** 0 picks a free port. */
  port: number
  /** Serve HTTPS with this certificate and key (reloaded when they change); plain HTTP without. */
  tls?: TlsFiles
  tokenFile: string
  keepaliveMs?: number
  /** The origin browsers reach the queen at when a proxy in front terminates TLS (`--public-url`). */
  publicUrl?: string
  hiveAckTimeoutMs?: number
  /** Nodes per message of a share (default `MAX_CHUNK_NODES`): a larger region's share goes in chunks. */
  shareChunkNodes?: number
  cancelGraceMs?: number
  /** How often running nodes are checked for a worker that vanished. */
  sweepMs?: number
  /** Agentless nodes (SSH). Re-read when the file changes; a bad version is refused and the last good one kept. */
  inventoryFile?: string
  /** How often the inventory file is checked for changes. */
  inventoryPollMs?: number
  /**
   * Remember agent nodes across restarts (default true): after a restart they are targets
   * (offline until they report) and jobs wait until they have reported. The embedded cluster,
   * whose workers start with it, turns this off.
   */
  rememberNodes?: boolean
  /**
   * Users and roles (docs/access.md), re-read when the file changes; made (0600, one admin
   * holding the token of `tokenFile`) when it does not exist. Without it the token is user admin.
   */
  usersFile?: string
  /** How often the users file is checked for changes. */
  usersPollMs?: number
  /** How long audit records (`<stateDir>/audit.db`) are kept; default 365 days. */
  auditRetentionMs?: number
  /** The process's own metrics (CPU, memory, event loop) on `/metrics` too: for a queen that has its process to itself. */
  processMetrics?: boolean
}

/** How long the audit log keeps a record unless told otherwise. */
export const AUDIT_RETENTION_MS = 365 * 24 * 3600_000

export interface QueenCore {
  /** The HTTP API as a hono app, not yet listening: tests drive it with `app.request()`. */
  app: Hono<AppEnv>
  token: string
  /** Re-reads the inventory; on a bad file keeps the last good one and says why. */
  reloadInventory(): Promise<{ ok: true; nodes: number } | { ok: false; error: string }>
  /**
   * The first step of a drain: not ready (503), no new job (a submit is answered 503
   * `not_leader`, which clients take to another queen), and no longer leading: the lease is
   * given up at once, so a standby leads without waiting for its TTL.
   */
  stepDown(): Promise<void>
  close(): Promise<void>
}

export interface Queen extends Omit<QueenCore, 'app' | 'stepDown'> {
  url: string
  port: number
  /**
   * Stops as a SIGTERM asks: steps down (`QueenCore.stepDown`), then ends the event streams
   * (clients resume on another queen with Last-Event-ID) and stops listening, then closes.
   */
  drain(): Promise<void>
}

/**
 * The queen without its listening socket: token, inventory, store, presence, the job core and
 * the HTTP app. `startQueen` serves it.
 *
 * @example const { app, token, close } = await createQueen({ bus, log, stateDir, host: '127.0.0.1', port: 0, tokenFile })
 */
export async function createQueen(cfg: QueenConfig): Promise<QueenCore> {
  const log = cfg.log
  const { token, created } = await ensureToken(cfg.tokenFile)
  if (created) log.info({ tokenFile: cfg.tokenFile }, 'generated a new API token')
  // Made once the queen runs; a users file re-read before then is not recorded.
  let auditor: Auditor | undefined
  // A bad users file at start stops the queen, as a bad inventory does.
  const users = await UserRegistry.open({
    ...(cfg.usersFile ? { file: cfg.usersFile } : {}),
    bootstrapToken: token,
    log,
    ...(cfg.usersPollMs ? { pollMs: cfg.usersPollMs } : {}),
    onReload: (r) => auditor?.record({ kind: 'users.reloaded', detail: r.ok ? { ok: true, users: r.users } : { ok: false, problem: r.error } }),
  })
  const presence = new Presence(Date.now, {}, cfg.settleMs)
  const metrics = createMetrics('queen', QUEEN_METRICS, { process: cfg.processMetrics === true })
  const durableCfg: DurableConfig = { ...DURABLE_DEFAULTS, ...cfg.durable }
  // A bad inventory at start stops the queen: nothing runs on a guess. Later bad versions are refused.
  const inventory = cfg.inventoryFile
    ? await watchInventory(cfg.inventoryFile, log, { pollMs: cfg.inventoryPollMs ?? 2000, onChange: (inv) => presence.setInventory(inv.nodes) })
    : undefined
  let store: JobStore
  try {
    store = openSqliteStore(join(cfg.stateDir, 'queen.db'))
  } catch (err) {
    inventory?.close()
    users.close()
    throw err
  }
  try {
    await cfg.bus.durable.ensure(durableCfg)
  } catch (err) {
    inventory?.close()
    users.close()
    store.close()
    throw err
  }
  let leadership: Leadership | undefined
  const writer: LogWriter = { write: (batch) => leadership!.writer.write(batch) }
  const events = new EventLog(store, log, { writer, runs: () => coordinator.dirtyRuns(), onFenced: () => leadership?.fenced(), metrics, createdAt: (jobId) => store.getJob(jobId)?.createdAt })
  const coordinator: Coordinator = new Coordinator({
    durable: cfg.bus.durable,
    ...(cfg.ackWaitMs ? { ackWaitMs: cfg.ackWaitMs } : {}),
    ...(cfg.trimEventsEveryMs ? { trimEveryMs: cfg.trimEventsEveryMs } : {}),
    store,
    presence,
    log,
    events,
    dispatch: timedDispatch(createHiveDispatch({ bus: cfg.bus, log, ackTimeoutMs: cfg.hiveAckTimeoutMs ?? 5000, signer: cfg.signer, ...(cfg.shareChunkNodes ? { chunkNodes: cfg.shareChunkNodes } : {}) }), metrics),
    sealer: createSecretSealer(cfg.bus.durable.secrets, cfg.signer),
    cancelGraceMs: cfg.cancelGraceMs ?? 15_000,
    ...(cfg.reofferRetryMs !== undefined ? { reofferRetryMs: cfg.reofferRetryMs } : {}),
  })
  leadership = new Leadership({ durable: cfg.bus.durable, publicKey: cfg.signer.publicKey, store, events, coordinator, log, queenId: cfg.queenId ?? 'queen', leaseTtlMs: durableCfg.leaseTtlMs })
  try {
    // Nodes known before a restart: targets resolve against them too, and jobs wait until they report.
    if (cfg.rememberNodes !== false) {
      const { overCap } = presence.remember(store.knownNodes())
      if (overCap > 0) log.warn({ overCap }, 'known nodes past the presence cap were not loaded')
    }
    // The first try for the lease: a queen alone leads before it answers a request.
    await leadership.start()
  } catch (err) {
    // Nothing opened so far outlives a queen that could not start.
    await leadership.close()
    await coordinator.close()
    await events.close()
    inventory?.close()
    users.close()
    store.close()
    throw err
  }
  // A flood of refused heartbeats is one log line per interval, with how many there were.
  const refusedBeats = rateLimitedWarning(log, 'refused a heartbeat')
  const misplacedBeats = rateLimitedWarning(log, 'dropped a heartbeat published on another identity’s subject')
  const droppedBeats = rateLimitedWarning(log, 'dropped a heartbeat: too many wait to be taken')
  const intake = new HeartbeatIntake({ take: (msg) => takeBeat(msg), dropped: (msg) => droppedBeats.note({ subject: msg.subject, waiting: intake.waiting }) })
  const takeBeat = (msg: BusMessage) => {
    const hb = decode(Heartbeat, msg, log)
    if (!hb) return
    // Who it is comes from the subject, which the broker lets only that identity publish.
    const [, role, region, id] = parseSubject(msg.subject) ?? []
    if (hb.role !== role || hb.region !== region || hb.id !== id) {
      misplacedBeats.note({ subject: msg.subject, id: hb.id, role: hb.role, region: hb.region })
      return
    }
    const beat = presence.beat(hb)
    if (beat.refused) {
      refusedBeats.note({ role: hb.role, id: hb.id, region: hb.region, reason: beat.refused })
      return
    }
    if (hb.leaving) log.info({ role: hb.role, id: hb.id, region: hb.region }, `${hb.role} left: what it held goes to another`)
    else if (beat.isNew) {
      log.info({ role: hb.role, id: hb.id, region: hb.region }, `${hb.role} online`)
      if (hb.role === 'worker' && cfg.rememberNodes !== false) remembering.set(hb.id, { id: hb.id, region: hb.region, labels: hb.labels, executor: hb.executor, intervalMs: hb.intervalMs, lastSeen: Date.now() })
    }
  }
  // Nodes new or back are written a second at a time, in one transaction: 50,000 starting
  // together are not 50,000 commits on the loop that takes heartbeats.
  const remembering = new Map<string, KnownNode>()
  const rememberSome = () => {
    if (remembering.size === 0) return
    try {
      store.rememberNodes(remembering.values())
    } catch (err) {
      log.warn({ err, nodes: remembering.size }, 'cannot remember the nodes that came online (a restart would not wait for them)')
    }
    remembering.clear()
  }
  const rememberTimer = setInterval(rememberSome, REMEMBER_EVERY_MS)
  rememberTimer.unref()
  const hbSub = cfg.bus.subscribe(subjects.heartbeatAll, (msg) => intake.offer(msg), { maxBytes: BODY_LIMITS.heartbeat })
  let sweepTimer: NodeJS.Timeout | undefined
  const sweep = () => {
    coordinator.sweepLost()
    sweepTimer = setTimeout(sweep, cfg.sweepMs ?? 1000)
    sweepTimer.unref()
  }
  sweep()
  // Finished jobs older than the log keeps are dropped from the index too, a few at a time.
  let pruneTimer: NodeJS.Timeout | undefined
  const prune = () => {
    const before = Date.now() - durableCfg.logMaxAgeMs
    let dropped = 0
    for (let i = 0; i < 20; i++) {
      const n = store.prune(before, 200)
      dropped += n
      if (n < 200) break
    }
    if (dropped > 0) log.info({ dropped, before: new Date(before).toISOString() }, 'pruned finished jobs past retention')
    pruneTimer = setTimeout(prune, PRUNE_EVERY_MS)
    pruneTimer.unref()
  }
  prune()

  const audit = AuditLog.open(join(cfg.stateDir, 'audit.db'), { queenId: cfg.queenId ?? 'queen' })
  auditor = new Auditor({ audit, log, retentionMs: cfg.auditRetentionMs ?? AUDIT_RETENTION_MS })
  auditor.start()

  let closing = false
  let draining = false
  let steppedDown: Promise<void> | undefined
  metrics.onScrape(() => metrics.m.draining.set(draining ? 1 : 0))
  const app = createApp({
    ...(cfg.publicUrl ? { publicOrigin: new URL(cfg.publicUrl).origin } : {}),
    store,
    coordinator,
    events: countedFeed(events, metrics),
    metrics,
    presence,
    log,
    users,
    auditor,
    audit,
    ready: () => !closing && !draining && presence.warmingUp() === undefined && leadership.ready,
    role: () => (leadership.leading ? 'leader' : 'standby'),
    keepaliveMs: cfg.keepaliveMs ?? 15_000,
  })
  return {
    app,
    token,
    reloadInventory: async () => (inventory ? inventory.reload() : { ok: false, error: 'no inventory configured' }),
    stepDown() {
      draining = true
      steppedDown ??= (async () => {
        const led = leadership.leading
        await leadership.close()
        if (led) log.info('stepped down: gave the leader lease up for a standby to lead at once')
      })()
      return steppedDown
    },
    async close() {
      if (closing) return
      closing = true
      inventory?.close()
      users.close()
      clearTimeout(sweepTimer)
      clearTimeout(pruneTimer)
      hbSub.unsubscribe()
      intake.close()
      clearInterval(rememberTimer)
      rememberSome()
      await (steppedDown ?? leadership.close())
      await coordinator.close()
      await events.close()
      store.close()
      auditor.close()
      audit.close()
    },
  }
}

/**
 * Starts the queen and serves its HTTP API.
 * @example const queen = await startQueen({ bus, log, stateDir, host: '127.0.0.1', port: 0, tokenFile })
 */
export async function startQueen(cfg: QueenConfig): Promise<Queen> {
  await ensureStateDir(cfg.stateDir, '--state-dir')
  const core = await createQueen(cfg)
  let served: Served
  try {
    served = await serveApp({ fetch: core.app.fetch, host: cfg.host, port: cfg.port, log: cfg.log, ...(cfg.tls ? { tls: cfg.tls } : {}) })
  } catch (err) {
    await core.close()
    throw err
  }
  const { url, port } = served
  cfg.log.info({ url, stateDir: cfg.stateDir, bus: cfg.bus.kind }, 'queen listening')
  let closed: Promise<void> | undefined
  return {
    url,
    port,
    token: core.token,
    reloadInventory: core.reloadInventory,
    async drain() {
      await core.stepDown()
      // Open event streams end now: their clients go on from another queen.
      closed ??= served.close().then(() => core.close())
      return closed
    },
    close() {
      // Stop answering first, then the core: a request in flight never meets a closed store.
      closed ??= served.close().then(() => core.close())
      return closed
    },
  }
}


/**
 * Rebuilds a queen's index from the job log: every record from the first the log still holds,
 * applied in order into a fresh file, which then takes the place of `<stateDir>/queen.db` (the
 * old one is kept as `queen.db.old`). The nodes the old index remembered (from heartbeats, not
 * the log) are carried over. The queen of that state directory must not be running.
 */
export async function rebuildIndex(o: { bus: Bus; log: Logger; stateDir: string; durable?: Partial<DurableConfig> }): Promise<{ records: number; jobs: number; logSeq: number }> {
  await o.bus.durable.ensure({ ...DURABLE_DEFAULTS, ...o.durable })
  const path = join(o.stateDir, 'queen.db')
  const tmp = join(o.stateDir, 'queen.db.rebuild')
  const sidecars = (p: string) => [p, `${p}-wal`, `${p}-shm`]
  for (const f of sidecars(tmp)) rmSync(f, { force: true })
  const store = openSqliteStore(tmp)
  let records = 0
  try {
    if (existsSync(path)) {
      const old = openSqliteStore(path)
      try {
        store.rememberNodes(old.knownNodes())
      } finally {
        old.close()
      }
    }
    const applier = new RecordApplier(store, o.log)
    const reader = o.bus.durable.read('log', (m) => {
      applier.apply(m)
      records++
    }, { afterSeq: 0, follow: false, maxBytes: LOG_RECORD_MAX })
    await reader.done
  } catch (err) {
    store.close()
    for (const f of sidecars(tmp)) rmSync(f, { force: true })
    throw err
  }
  const { logSeq } = store.position()
  const jobs = store.countJobs()
  store.close()
  if (existsSync(path)) renameSync(path, `${path}.old`)
  for (const f of sidecars(path).slice(1)) rmSync(f, { force: true })
  // What SQLite left in the new file's write-ahead log goes with it; its shared memory is remade.
  if (existsSync(`${tmp}-wal`)) renameSync(`${tmp}-wal`, `${path}-wal`)
  rmSync(`${tmp}-shm`, { force: true })
  renameSync(tmp, path)
  return { records, jobs, logSeq }
}
