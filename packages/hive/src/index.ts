import { type Ack, assembleShare, BODY_LIMITS, type Bus, type BusMessage, decode, type Logger, ShareChunk, ShareOffer, subjects, type Verifier, VERSION } from '@apiary/shared'
import { Heartbeater, warnRateLimited } from '@apiary/shared/runtime'
import { RegionJob } from './rollout/region-job.ts'

export interface HiveConfig {
  bus: Bus
  log: Logger
  /** Unique among the region's hives (replicas share the region's queue group). */
  hiveId: string
  region: string
  heartbeatMs: number
  resultGraceMs?: number
  /** The queen's public key: only shares it signed are rolled out. */
  queenKey: Verifier
  /** How long the further chunks of a share may take to arrive after its offer. */
  chunkTimeoutMs?: number
}

/** Shares whose further chunks are still on their way, at most. */
const MAX_PENDING_SHARES = 64

export interface Hive {
  hiveId: string
  close(): Promise<void>
}

/**
 * A region's hive: takes the region's share of each job from the queue group (one replica
 * gets each share) and rolls it out to the nodes.
 *
 * @example const hive = startHive({ bus, log, hiveId: 'hive-eu-1', region: 'eu', heartbeatMs: 5000 })
 */
export function startHive(cfg: HiveConfig): Hive {
  const log = cfg.log.child({ hive: cfg.hiveId, region: cfg.region })
  const jobs = new Map<string, RegionJob>()
  let closing = false

  const heart = new Heartbeater(cfg.bus, log, () => ({
    id: cfg.hiveId,
    role: 'hive',
    region: cfg.region,
    labels: {},
    executor: 'hive',
    status: 'healthy',
    running: jobs.size,
    version: VERSION,
    intervalMs: cfg.heartbeatMs,
    ts: Date.now(),
  })).start()

  const refuse = (msg: BusMessage, reason: string) => msg.respond({ accepted: false, by: cfg.hiveId, reason } satisfies Ack)
  const accept = (msg: BusMessage) => msg.respond({ accepted: true, by: cfg.hiveId } satisfies Ack)
  /** Offers whose further chunks are on their way, by job/phase. */
  const pending = new Map<string, { offer: ShareOffer; chunks: Map<number, ShareChunk>; timer: NodeJS.Timeout }>()

  function begin(msg: BusMessage, key: string, offer: ShareOffer, chunks: ShareChunk[]) {
    const checked = assembleShare(offer, chunks, cfg.queenKey, cfg.region, Date.now())
    if (typeof checked === 'string') {
      warnRateLimited(log, 'refused a share', { jobId: offer.grant.jobId, phase: offer.grant.phase, reason: checked })
      return refuse(msg, `refused: ${checked}`)
    }
    const { share } = checked
    const job = new RegionJob(checked, { bus: cfg.bus, log, resultGraceMs: cfg.resultGraceMs ?? 15_000, queenKey: cfg.queenKey })
    jobs.set(key, job)
    log.info({ jobId: share.jobId, phase: share.phase, nodes: share.nodes.length, concurrency: share.concurrency }, 'rollout started')
    void job.done.then(() => {
      jobs.delete(key)
      log.info({ jobId: share.jobId, phase: share.phase }, 'rollout done')
    })
    accept(msg)
    job.start()
  }

  const sub = cfg.bus.subscribe(
    subjects.hiveJobs(cfg.region),
    (msg) => {
      const offer = decode(ShareOffer, msg, log)
      if (!offer) return refuse(msg, 'malformed job share')
      const { grant } = offer
      if (grant.region !== cfg.region) return refuse(msg, `this hive serves region ${cfg.region}`)
      if (closing) return refuse(msg, 'hive is shutting down')
      const key = `${grant.jobId}/${grant.phase}`
      if (jobs.has(key)) return accept(msg)
      if (grant.chunks === 1) return begin(msg, key, offer, [])
      // The rest comes chunk by chunk to this hive alone; check what can be checked now.
      if (!cfg.queenKey.verify(grant)) {
        warnRateLimited(log, 'refused a share: not signed by the queen', { jobId: grant.jobId, phase: grant.phase })
        return refuse(msg, 'refused: the grant is not signed by the pinned queen key')
      }
      if (pending.has(key)) return accept(msg)
      if (pending.size >= MAX_PENDING_SHARES) return refuse(msg, `too many shares arriving at once (${pending.size})`)
      const timer = setTimeout(() => {
        pending.delete(key)
        warnRateLimited(log, 'dropped a share whose chunks did not all arrive', { jobId: grant.jobId, phase: grant.phase })
      }, cfg.chunkTimeoutMs ?? 30_000)
      timer.unref()
      pending.set(key, { offer, chunks: new Map(), timer })
      accept(msg)
    },
    { queue: subjects.hiveQueue(cfg.region) },
  )

  const chunkSub = cfg.bus.subscribe(subjects.hiveChunks(cfg.region, cfg.hiveId), (msg) => {
    const chunk = decode(ShareChunk, msg, log)
    if (!chunk) return refuse(msg, 'malformed share chunk')
    const key = `${chunk.jobId}/${chunk.phase}`
    if (jobs.has(key)) return accept(msg)
    const p = pending.get(key)
    if (!p) return refuse(msg, 'no offer of this share is waiting for chunks')
    if (chunk.index >= p.offer.grant.chunks) return refuse(msg, `chunk ${chunk.index} of a share of ${p.offer.grant.chunks}`)
    p.chunks.set(chunk.index, chunk)
    if (p.chunks.size < p.offer.grant.chunks - 1) return accept(msg)
    clearTimeout(p.timer)
    pending.delete(key)
    if (closing) return refuse(msg, 'hive is shutting down')
    begin(msg, key, p.offer, [...p.chunks.values()])
  }, { maxBytes: BODY_LIMITS.chunk })

  return {
    hiveId: cfg.hiveId,
    async close() {
      closing = true
      sub.unsubscribe()
      chunkSub.unsubscribe()
      for (const p of pending.values()) clearTimeout(p.timer)
      pending.clear()
      heart.stop()
      // What was not dispatched is skipped and said so; workers report what they run.
      for (const job of jobs.values()) {
        job.halt(`hive ${cfg.hiveId} shutting down`)
        job.abandon()
      }
      await cfg.bus.flush()
    },
  }
}
