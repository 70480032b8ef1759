import { Ack, type Bus, type Control, type HiveJob, isApiaryError, type Logger, subjects } from '@apiary/shared'
import type { ShareOutcome } from './job-run.ts'

export interface HiveDispatch {
  /** Offers a region's share to the region's hives (one of the queue group takes it). */
  offer(share: HiveJob): Promise<ShareOutcome>
  /** Tells hives and workers to halt or cancel a job. */
  control(control: Control): void
}

/**
 * The queen's side of the hive protocol: share offers with their acknowledgement, and control
 * messages. A region with no hive answering is said in words, never thrown.
 */
export function createHiveDispatch(o: { bus: Bus; log: Logger; ackTimeoutMs: number }): HiveDispatch {
  return {
    async offer(share) {
      const { region } = share
      try {
        const reply = Ack.safeParse(await o.bus.request(subjects.hiveJobs(region), share, { timeoutMs: o.ackTimeoutMs }))
        if (reply.success && reply.data.accepted) return { accepted: true, by: reply.data.by }
        return { accepted: false, cause: reply.success ? `hive refused the job: ${reply.data.reason ?? 'no reason given'}` : 'hive sent a malformed acknowledgement' }
      } catch (err) {
        if (!isApiaryError(err, 'no_responders')) o.log.warn({ err, jobId: share.jobId, region }, 'dispatch to hive failed')
        const none = isApiaryError(err, 'no_responders') || isApiaryError(err, 'timeout')
        return { accepted: false, cause: none ? `no hive for region ${region}` : `cannot reach the hive of region ${region}` }
      }
    },
    control(control) {
      try {
        o.bus.publish(subjects.control(control.jobId), control)
      } catch (err) {
        o.log.error({ err, jobId: control.jobId }, 'cannot publish a control message')
      }
    },
  }
}
