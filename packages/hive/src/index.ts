import { type Ack, type Bus, decode, HiveJob, type Logger, subjects, VERSION } from '@apiary/shared'
import { Heartbeater } from '@apiary/shared/runtime'
import { RegionJob } from './rollout/region-job.ts'

export interface HiveConfig {
  bus: Bus
  log: Logger
  /** Unique among the region's hives (replicas share the region's queue group). */
  hiveId: string
  region: string
  heartbeatMs: number
  resultGraceMs?: number
}

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

  const sub = cfg.bus.subscribe(
    subjects.hiveJobs(cfg.region),
    (msg) => {
      const share = decode(HiveJob, msg, log)
      if (!share) {
        msg.respond({ accepted: false, by: cfg.hiveId, reason: 'malformed job share' } satisfies Ack)
        return
      }
      if (share.region !== cfg.region) {
        msg.respond({ accepted: false, by: cfg.hiveId, reason: `this hive serves region ${cfg.region}` } satisfies Ack)
        return
      }
      if (closing) {
        msg.respond({ accepted: false, by: cfg.hiveId, reason: 'hive is shutting down' } satisfies Ack)
        return
      }
      const key = `${share.jobId}/${share.phase}`
      if (jobs.has(key)) {
        msg.respond({ accepted: true, by: cfg.hiveId } satisfies Ack)
        return
      }
      const job = new RegionJob(share, {
        bus: cfg.bus,
        log,
        resultGraceMs: cfg.resultGraceMs ?? 15_000,
      })
      jobs.set(key, job)
      log.info({ jobId: share.jobId, phase: share.phase, nodes: share.nodes.length, concurrency: share.concurrency }, 'rollout started')
      void job.done.then(() => {
        jobs.delete(key)
        log.info({ jobId: share.jobId, phase: share.phase }, 'rollout done')
      })
      msg.respond({ accepted: true, by: cfg.hiveId } satisfies Ack)
      job.start()
    },
    { queue: subjects.hiveQueue(cfg.region) },
  )

  return {
    hiveId: cfg.hiveId,
    async close() {
      closing = true
      sub.unsubscribe()
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
