import { Ack, type Bus, type ControlOrder, type HiveJob, isApiaryError, type Logger, signControl, signShare, type Signer, subjects } from '@apiary/shared'
import type { ShareOutcome } from './job-run.ts'

export interface HiveDispatch {
  /** Offers a region's share to the region's hives (one of the queue group takes it). */
  offer(share: HiveJob): Promise<ShareOutcome>
  /** Tells hives and workers to halt or cancel a job. */
  control(control: ControlOrder): void
}

/**
 * The queen's side of the hive protocol: share offers, signed, with their acknowledgement,
 * and signed control messages. A share larger than one chunk goes as an offer to the
 * region's queue group, then chunk by chunk to the hive that took it. A region with no hive
 * answering is said in words, never thrown.
 */
export function createHiveDispatch(o: { bus: Bus; log: Logger; ackTimeoutMs: number; signer: Signer; chunkNodes?: number }): HiveDispatch {
  const ask = async (subject: string, body: unknown): Promise<Ack | string> => {
    const reply = Ack.safeParse(await o.bus.request(subject, body, { timeoutMs: o.ackTimeoutMs }))
    if (!reply.success) return 'hive sent a malformed acknowledgement'
    return reply.data.accepted ? reply.data : `hive refused the job: ${reply.data.reason ?? 'no reason given'}`
  }
  return {
    async offer(share) {
      const { region } = share
      const { offer, chunks } = signShare(share, o.signer, Date.now(), o.chunkNodes)
      try {
        const first = await ask(subjects.hiveJobs(region), offer)
        if (typeof first === 'string') return { accepted: false, cause: first }
        for (const chunk of chunks) {
          const next = await ask(subjects.hiveChunks(region, first.by), chunk)
          if (typeof next === 'string') return { accepted: false, cause: next }
        }
        return { accepted: true, by: first.by }
      } catch (err) {
        if (!isApiaryError(err, 'no_responders')) o.log.warn({ err, jobId: share.jobId, region }, 'dispatch to hive failed')
        const none = isApiaryError(err, 'no_responders') || isApiaryError(err, 'timeout')
        return { accepted: false, cause: none ? `no hive for region ${region}` : `cannot reach the hive of region ${region}` }
      }
    },
    control(order) {
      try {
        o.bus.publish(subjects.control(order.jobId), signControl(order, o.signer, Date.now()))
      } catch (err) {
        o.log.error({ err, jobId: order.jobId }, 'cannot publish a control message')
      }
    },
  }
}
