import { z } from 'zod'
import { claimKey, type ClaimStore, errorMessage, FinalState, isApiaryError, type Logger, NodeId, WireEvent } from '@apiary/shared'
import { pause, rateLimitedWarning } from '@apiary/shared/runtime'
import type { FinalEvent } from './journal.ts'

/**
 * A claim per (job, node) that a region's SSH workers share (DESIGN.md, "Durability and
 * failover"): each keeps a journal of its own, so a re-offer that the queue group hands to
 * another SSH worker than the one that took the task would reach the host again. Before it runs
 * a task (after its own journal says it never took it), an SSH worker creates the task's key in
 * the claims bucket if absent; one that finds it held answers with what the claim says.
 */

/** What a claim holds: who took the task, and how it ended once it did (its final event, when there is one). */
const ClaimValue = z
  .strictObject({
    by: NodeId,
    at: z.number().int().min(0),
    state: z.union([z.literal('running'), FinalState]),
    final: WireEvent.optional(),
  })
  .refine((v) => v.final === undefined || (v.final.kind === 'node.finished' && v.final.state === v.state), { message: 'the final event is not of this state', path: ['final'] })
type ClaimValue = z.infer<typeof ClaimValue>

/** What claiming a task came to. */
export type Claimed =
  /** This worker holds it now: it runs the task, and records the end at this revision. */
  | { kind: 'taken'; revision: number }
  /**
   * Somebody took it before: `by` (null when the claim could not be read), still running or
   * ended in `state`, with the final event it published when the claim has it.
   */
  | { kind: 'held'; by: string | null; state: 'running' | FinalState; final: FinalEvent | undefined; revision: number | undefined }

/** How a claimed task ended: its final event, or only its state when it ran nothing (its journal could not record it). */
export type ClaimEnd = FinalEvent | { state: FinalState }

export interface TaskClaims {
  /**
   * Claims the task for this worker, or says who holds it. Rejects (`unavailable`, `timeout`
   * when `signal` aborts) when the bucket cannot be reached: the task must then not run.
   */
  take(jobId: string, node: string, signal: AbortSignal): Promise<Claimed>
  /**
   * Records how a task this worker claimed ended: at `revision`, or, without one (a task taken
   * before a restart), if the claim still names this worker. Retried while the bucket cannot be
   * reached, until `deadline` (epoch ms) or `signal`; never rejects (a failure is logged: the
   * claim then says `running`, and an ask that reaches another worker is answered so).
   */
  settle(jobId: string, node: string, end: ClaimEnd, o: { revision?: number; deadline: number; signal: AbortSignal }): Promise<void>
}

const enc = (v: ClaimValue) => JSON.stringify(v)

/**
 * The claims of one SSH worker (`id`) in its region's keys of `store`.
 *
 * @example const claims = taskClaims({ store: bus.durable.claims, region: 'eu', id: 'ssh-eu-1', log })
 */
export function taskClaims(o: { store: ClaimStore; region: string; id: string; log: Logger }): TaskClaims {
  const { store, id } = o
  const unreadable = rateLimitedWarning(o.log, 'a claim of a task holds no claim this worker can read: the task is treated as running elsewhere')
  const unsettled = rateLimitedWarning(o.log, 'the end of a task was not recorded in its claim (the claim says it runs)')
  const parse = (text: string, key: string): ClaimValue | undefined => {
    let parsed
    try {
      parsed = ClaimValue.safeParse(JSON.parse(text))
    } catch {
      parsed = undefined
    }
    if (parsed?.success) return parsed.data
    unreadable.note({ key })
    return undefined
  }
  return {
    async take(jobId, node, signal) {
      const key = claimKey(o.region, jobId, node)
      // Twice at most: a claim that aged out (or was deleted) between the create and the read is free again.
      for (let round = 0; ; round++) {
        const revision = await store.create(key, enc({ by: id, at: Date.now(), state: 'running' }), { signal })
        if (revision !== undefined) return { kind: 'taken', revision }
        const held = await store.get(key, { signal })
        if (held === undefined && round === 0) continue
        // Written, but not readable here (yet: a direct get may reach a replica that lags).
        const v = held && parse(held.value, key)
        if (!v) return { kind: 'held', by: null, state: 'running', final: undefined, revision: held?.revision }
        return { kind: 'held', by: v.by, state: v.state, final: v.final as FinalEvent | undefined, revision: held.revision }
      }
    },

    async settle(jobId, node, end, s) {
      const key = claimKey(o.region, jobId, node)
      const value = enc({ by: id, at: Date.now(), state: end.state, ...('kind' in end ? { final: end } : {}) })
      for (let n = 0; ; n++) {
        try {
          let revision = s.revision
          if (revision === undefined) {
            const held = await store.get(key)
            // Not claimed (by this worker): nothing of it to record.
            if (!held || parse(held.value, key)?.by !== id) return
            revision = held.revision
          }
          if ((await store.update(key, value, revision)) === undefined) unsettled.note({ jobId, node, problem: 'another write came first' })
          return
        } catch (err) {
          const late = Date.now() + backoff(n) > s.deadline || s.signal.aborted
          if (late || !isApiaryError(err, 'unavailable')) return unsettled.note({ jobId, node, problem: errorMessage(err) })
          await pause(backoff(n), s.signal)
        }
      }
    },
  }
}

/** 200 ms doubling to 5 s. */
const backoff = (n: number) => Math.min(5000, 200 * 2 ** Math.min(n, 5))
