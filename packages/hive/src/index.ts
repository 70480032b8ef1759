import { type Ack, assembleShare, BODY_LIMITS, type Bus, type BusMessage, decode, type Logger, ShareChunk, ShareOffer, subjects, type Verifier, VERSION } from '@apiary/shared'
import { type DaemonMetrics, Heartbeater, warnRateLimited } from '@apiary/shared/runtime'
import { ShareAttempts } from './rollout/attempts.ts'
import { RegionJob } from './rollout/region-job.ts'
import { VerdictOutbox } from './rollout/verdicts.ts'

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
  /** How long `close` waits for the hive's own node ends still on their way to the stream (default 5 s). */
  drainMs?: number
  /** Where its rollouts are counted (`createMetrics('hive', HIVE_METRICS)`). */
  metrics?: DaemonMetrics<HiveMetricKey>
}

/** The metrics a hive keeps. */
export const HIVE_METRICS = ['nodesFinished', 'deliveryLatency', 'tasksInFlight', 'sharesHeld', 'draining'] as const
export type HiveMetricKey = (typeof HIVE_METRICS)[number]

/** Shares whose further chunks are still on their way, at most. */
const MAX_PENDING_SHARES = 64

export interface Hive {
  hiveId: string
  /** Stops: what was not dispatched ends `skipped`, what runs reports to the stream itself. */
  close(): Promise<void>
  /**
   * Stops as a SIGTERM asks, handing its shares back rather than ending them: takes no new
   * share, dispatches nothing more, waits (up to `graceMs`) for its own node ends to be stored,
   * and sends a last heartbeat that says it left, so the queen offers the open nodes of its
   * shares at once to another hive of the region (the workers answer for what they took).
   */
  drain(graceMs: number): Promise<void>
  /** Why it would not take a share now (draining, not heartbeating), or null: its /readyz. */
  notReady(): string | null
}

/**
 * A region's hive: takes the region's share of each job from the queue group (one replica
 * gets each share) and rolls it out to the nodes. A re-offer of a share (a newer attempt,
 * after the hive that had it died) is taken by whichever hive gets it; the hive that runs
 * the share already goes on as it is, and an attempt older than one seen is refused (see
 * `ShareAttempts`).
 *
 * @example const hive = startHive({ bus, log, hiveId: 'hive-eu-1', region: 'eu', heartbeatMs: 5000 })
 */
export function startHive(cfg: HiveConfig): Hive {
  const log = cfg.log.child({ hive: cfg.hiveId, region: cfg.region })
  const jobs = new Map<string, RegionJob>()
  const attempts = new ShareAttempts()
  const verdicts = new VerdictOutbox(cfg.bus, log)
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
    const { attempt } = offer.grant
    const checked = assembleShare(offer, chunks, cfg.queenKey, cfg.region, Date.now())
    if (typeof checked === 'string') {
      attempts.dropped(key, attempt)
      warnRateLimited(log, 'refused a share', { jobId: offer.grant.jobId, phase: offer.grant.phase, attempt, reason: checked })
      return refuse(msg, `refused: ${checked}`)
    }
    const { share } = checked
    const job = new RegionJob(checked, { bus: cfg.bus, log, resultGraceMs: cfg.resultGraceMs ?? 15_000, queenKey: cfg.queenKey, verdicts, ...(cfg.metrics ? { metrics: cfg.metrics } : {}) })
    jobs.set(key, job)
    attempts.running(key, attempt)
    log.info({ jobId: share.jobId, phase: share.phase, attempt, nodes: share.nodes.length, concurrency: share.concurrency }, 'rollout started')
    void job.done.then(() => {
      jobs.delete(key)
      attempts.over(key, attempt)
      log.info({ jobId: share.jobId, phase: share.phase, attempt }, 'rollout done')
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
      // Before anything is remembered of it: a forged attempt number must not make the real one stale.
      if (!cfg.queenKey.verify(grant)) {
        warnRateLimited(log, 'refused a share: not signed by the queen', { jobId: grant.jobId, phase: grant.phase })
        return refuse(msg, 'refused: the grant is not signed by the pinned queen key')
      }
      const key = `${grant.jobId}/${grant.phase}`
      const decision = attempts.offer(key, grant.attempt)
      if (decision.kind === 'stale') {
        warnRateLimited(log, 'refused a stale attempt of a share', { jobId: grant.jobId, phase: grant.phase, attempt: grant.attempt, newest: decision.newest })
        return refuse(msg, `refused: attempt ${grant.attempt} of this share is older than attempt ${decision.newest}`)
      }
      if (decision.kind === 'have') {
        if (decision.attempt !== grant.attempt) {
          const adopted = jobs.get(key)?.adopt(grant.attempt) === true
          log.info(
            { jobId: grant.jobId, phase: grant.phase, attempt: grant.attempt, runs: decision.attempt },
            adopted ? 'share re-offered to the hive that runs it; it goes on as it is, its verdicts under the new attempt' : 'share re-offered to the hive that runs it; it goes on as it is',
          )
        }
        return accept(msg)
      }
      if (grant.chunks === 1) return begin(msg, key, offer, [])
      // The rest comes chunk by chunk to this hive alone. A newer attempt replaces an older one still waiting.
      const older = pending.get(key)
      if (older) clearTimeout(older.timer)
      else if (pending.size >= MAX_PENDING_SHARES) return refuse(msg, `too many shares arriving at once (${pending.size})`)
      const timer = setTimeout(() => {
        pending.delete(key)
        attempts.dropped(key, grant.attempt)
        warnRateLimited(log, 'dropped a share whose chunks did not all arrive', { jobId: grant.jobId, phase: grant.phase, attempt: grant.attempt })
      }, cfg.chunkTimeoutMs ?? 30_000)
      timer.unref()
      pending.set(key, { offer, chunks: new Map(), timer })
      attempts.pending(key, grant.attempt)
      accept(msg)
    },
    { queue: subjects.hiveQueue(cfg.region) },
  )

  const chunkSub = cfg.bus.subscribe(subjects.hiveChunks(cfg.region, cfg.hiveId), (msg) => {
    const chunk = decode(ShareChunk, msg, log)
    if (!chunk) return refuse(msg, 'malformed share chunk')
    const key = `${chunk.jobId}/${chunk.phase}`
    const p = pending.get(key)
    // A chunk sent again after the share was assembled.
    if (!p && jobs.get(key)?.attempt === chunk.attempt) return accept(msg)
    if (!p) return refuse(msg, 'no offer of this share is waiting for chunks')
    if (chunk.attempt !== p.offer.grant.attempt) return refuse(msg, `chunk of attempt ${chunk.attempt}; the offer waiting is attempt ${p.offer.grant.attempt}`)
    if (chunk.index >= p.offer.grant.chunks) return refuse(msg, `chunk ${chunk.index} of a share of ${p.offer.grant.chunks}`)
    p.chunks.set(chunk.index, chunk)
    if (p.chunks.size < p.offer.grant.chunks - 1) return accept(msg)
    clearTimeout(p.timer)
    pending.delete(key)
    if (closing) return refuse(msg, 'hive is shutting down')
    begin(msg, key, p.offer, [...p.chunks.values()])
  }, { maxBytes: BODY_LIMITS.chunk })

  /** Takes no more shares or chunks. */
  const stopTaking = () => {
    closing = true
    sub.unsubscribe()
    chunkSub.unsubscribe()
    for (const p of pending.values()) clearTimeout(p.timer)
    pending.clear()
  }
  cfg.metrics?.onScrape(() => {
    const m = cfg.metrics!.m
    let inFlight = 0
    for (const job of jobs.values()) inFlight += job.inFlight
    m.tasksInFlight.set(inFlight)
    m.sharesHeld.set(jobs.size)
    m.draining.set(closing ? 1 : 0)
  })

  return {
    hiveId: cfg.hiveId,
    notReady: () => (closing ? 'draining' : heart.beating ? null : 'not heartbeating'),
    async drain(graceMs) {
      if (closing) return
      stopTaking()
      log.info({ shares: jobs.size }, 'draining: taking no new share, handing back the shares it holds')
      // The server has dropped this hive from the queue group before the queen hears it left,
      // so a share offered again cannot come back here.
      await cfg.bus.flush().catch((err: unknown) => log.warn({ err }, 'cannot flush the bus while draining'))
      // Nothing more is dispatched and no node ends from here: the next hive carries them on.
      for (const job of jobs.values()) job.abandon()
      await verdicts.drain(graceMs)
      heart.leave()
      await cfg.bus.flush().catch((err: unknown) => log.warn({ err }, 'cannot flush the bus while draining'))
    },
    async close() {
      stopTaking()
      heart.stop()
      // What was not dispatched is skipped and said so; workers report what they run.
      for (const job of jobs.values()) {
        job.halt(`hive ${cfg.hiveId} shutting down`)
        job.abandon()
      }
      // The skipped ends just decided, and any still on their way, reach the stream first.
      await verdicts.drain(cfg.drainMs ?? 5000)
      await cfg.bus.flush()
    },
  }
}
