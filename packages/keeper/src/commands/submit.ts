import {
  ApiaryError,
  CountOrPercent,
  DEFAULT_OUTPUT_CAP,
  type EventOf,
  type JobPlan,
  type JobRequestInput,
  type Operation,
  isApiaryError,
  type Risk,
} from '@apiary/shared'
import { type OptionValues } from '@apiary/shared/runtime'
import type { JobClient } from '@apiary/shared/client'
import { EXIT, type Io } from '../cli/context.ts'
import type { FOLLOW_OPTIONS, ROLLOUT_OPTIONS } from '../cli/options.ts'
import { escapeControls } from '../render/escape.ts'
import { followJob, type FollowOptions } from './follow.ts'

export type RolloutValues = OptionValues<typeof ROLLOUT_OPTIONS>
type FollowValues = OptionValues<typeof FOLLOW_OPTIONS>

function countOrPercent(text: string, flag: string): number | string {
  const value = /^\d+$/.test(text) ? Number(text) : text
  const parsed = CountOrPercent.safeParse(value)
  if (!parsed.success) throw new ApiaryError('invalid_input', `${flag}: "${text}" ${parsed.error.issues[0]?.message ?? 'is not valid'}`, flag)
  return parsed.data
}

/** Builds the job request from the rollout flags (already parsed); a bad count names its flag. */
export function buildRequest(v: RolloutValues & { targets: string }, operation: Operation, outputCapBytes = DEFAULT_OUTPUT_CAP): JobRequestInput {
  const rollout: NonNullable<JobRequestInput['rollout']> = { timeoutMs: v.timeout }
  if (v.concurrency !== undefined) rollout.concurrency = countOrPercent(v.concurrency, '--concurrency')
  if (v['max-errors'] !== undefined) rollout.maxErrors = countOrPercent(v['max-errors'], '--max-errors')
  if (v.canary !== undefined) rollout.canary = v.canary
  if (v['delivery-timeout'] !== undefined) rollout.deliveryTimeoutMs = v['delivery-timeout']
  if (v.deadline !== undefined) rollout.deadlineMs = v.deadline
  return { operation, targets: v.targets, rollout, outputCapBytes }
}

/**
 * Sends `submit`, and when the queen asks for the confirmation a destructive operation needs,
 * gets it: `--yes`, or the node count typed on a terminal. Without either it refuses.
 */
export async function withConfirmation<T>(io: Io, yes: boolean, submit: (confirm?: { nodes: number }) => Promise<T>): Promise<T> {
  try {
    return await submit()
  } catch (err) {
    if (!isApiaryError(err, 'confirmation_required') || typeof err.details?.nodes !== 'number') throw err
    const nodes = err.details.nodes
    const reasons = escapeControls((err.details.risk as Risk | undefined)?.reasons.join(', ') ?? 'destructive')
    if (!yes) {
      if (!io.ask) {
        throw new ApiaryError('confirmation_required', `refusing a destructive operation (${reasons}) on ${nodes} node${nodes === 1 ? '' : 's'} without confirmation: pass --yes`, 'yes')
      }
      const answer = await io.ask(`This operation is destructive (${reasons}) and would run on ${nodes} node${nodes === 1 ? '' : 's'}.\nType the node count (${nodes}) to go on: `)
      if (answer.trim() !== String(nodes)) throw new ApiaryError('confirmation_required', 'not confirmed: nothing was run', 'yes')
    }
    return submit({ nodes })
  }
}

/** Submits a job (or shows its plan) and follows it; Ctrl-C detaches, or cancels with --cancel-on-interrupt. */
export async function submitAndFollow(
  client: JobClient,
  io: Io,
  v: Pick<RolloutValues, 'yes' | 'cancel-on-interrupt' | 'no-group'> & { plan: boolean },
  request: JobRequestInput,
  extra: Pick<FollowOptions, 'onFinished' | 'summary' | 'cursorDir'> = {},
): Promise<number> {
  if (v.plan) return printPlan(io, await client.plan(request))
  const created = await withConfirmation(io, v.yes, (confirm) => client.submit(confirm ? { ...request, confirm } : request))
  return followCreated(client, io, created.jobId, v, extra)
}

export async function followCreated(
  client: JobClient,
  io: Io,
  jobId: string,
  v: FollowValues,
  extra: Pick<FollowOptions, 'onFinished' | 'summary' | 'cursorDir' | 'after' | 'seed'> = {},
): Promise<number> {
  const stop = new AbortController()
  let interrupted = false
  const onInterrupt = () => {
    interrupted = true
    stop.abort()
  }
  io.interrupt.addEventListener('abort', onInterrupt, { once: true })
  let result: { code: number; fin?: EventOf<'job.finished'> }
  try {
    result = await followJob(client, jobId, io, { noGroup: v['no-group'], ...extra }, stop.signal)
  } finally {
    io.interrupt.removeEventListener('abort', onInterrupt)
  }
  if (io.format === 'json') {
    await io.out.line(JSON.stringify(result.fin ? { job: await client.get(jobId), finished: result.fin } : { jobId, detached: true }))
  }
  if (!interrupted) return result.code
  if (v['cancel-on-interrupt']) {
    await client.cancel(jobId)
    await io.err.line(`keeper: cancel requested for job ${jobId} (keeper watch ${jobId} follows it)`)
    return EXIT.cancelled
  }
  await io.err.line(`keeper: detached; job ${jobId} goes on (keeper watch ${jobId} · keeper cancel ${jobId})`)
  return EXIT.detached
}

async function printPlan(io: Io, p: JobPlan): Promise<number> {
  if (io.format !== 'text') {
    await io.out.line(JSON.stringify(p))
    return EXIT.ok
  }
  await io.out.line(`targets    ${p.nodes} node${p.nodes === 1 ? '' : 's'} (${p.online} online)`)
  await io.out.line(`regions    ${escapeControls(Object.entries(p.regions).map(([r, c]) => `${r}: ${c}`).join(', '))}`)
  if (p.offline.length > 0) await io.out.line(`offline    ${escapeControls(p.offline.join(', '))}${p.nodes - p.online > p.offline.length ? ', …' : ''} (would end error: offline)`)
  if (p.draining) await io.out.line(`draining   ${escapeControls(p.draining.ids.join(', '))}${p.draining.nodes > p.draining.ids.length ? ', …' : ''} (${p.draining.nodes}: their workers were told to stop; would end error: draining)`)
  await io.out.line(`sample     ${escapeControls(p.sample.join(', '))}${p.nodes > p.sample.length ? ', …' : ''}`)
  if (p.canary > 0) await io.out.line(`canary     ${p.canary} node${p.canary === 1 ? '' : 's'} first`)
  await io.out.line(`risk       ${p.risk.class}${p.risk.reasons.length ? ` (${escapeControls(p.risk.reasons.join(', '))}): needs --yes or the node count typed` : ''}`)
  await io.out.line('nothing was run (--plan)')
  return EXIT.ok
}
