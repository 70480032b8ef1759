import { describeOperation } from '@apiary/shared'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { escapeControls } from '../render/escape.ts'
import { table } from '../render/output.ts'
import { counts } from '../render/records.ts'

export const job = defineCommand({
  name: 'job',
  summary: 'show one job: its operation, rollout policy and every node’s state',
  usage: 'keeper job ID [-o FORMAT]',
  options: {},
  args: 'id',
  async run({ id, io, client }) {
    const job = await (await client()).get(id)
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify(job))
      return EXIT.ok
    }
    await io.out.line(`job        ${job.id}`)
    await io.out.line(`state      ${job.state}`)
    await io.out.line(`operation  ${escapeControls(describeOperation(job.operation))}`)
    await io.out.line(`targets    ${escapeControls(job.targets)} (${job.nodeCount} node${job.nodeCount === 1 ? '' : 's'})`)
    const r = job.rollout
    const policy = [
      `concurrency ${r.concurrency}`,
      r.maxErrors !== undefined ? `max errors ${r.maxErrors}` : 'no error budget',
      r.canary > 0 ? `canary ${r.canary}` : '',
      `timeout ${r.timeoutMs} ms`,
      `delivery ${r.deliveryTimeoutMs} ms`,
      r.deadlineMs !== undefined ? `job deadline ${r.deadlineMs} ms` : '',
      `output cap ${job.outputCapBytes} bytes`,
    ]
    await io.out.line(`rollout    ${policy.filter(Boolean).join(', ')}`)
    if (job.submittedBy) await io.out.line(`by         ${escapeControls(job.submittedBy)}`)
    if (job.rerunOf) await io.out.line(`re-runs    ${job.rerunOf}`)
    if (job.stopReason) await io.out.line(`stopped    ${escapeControls(job.stopReason)}`)
    await io.out.line(`created    ${new Date(job.createdAt).toISOString()}${job.finishedAt ? `, finished after ${job.finishedAt - job.createdAt} ms` : ''}`)
    await io.out.line(`results    ${counts(job.counts) || 'none yet'}`)
    await io.out.line('')
    const rows = job.nodes.map((n) => [
      n.node,
      n.region,
      n.state,
      n.exitCode === null ? '' : String(n.exitCode),
      n.durationMs === null ? '' : `${Math.round(n.durationMs)} ms`,
      `${n.bytes}${n.truncated ? ' (cut)' : ''}`,
      n.cause ?? '',
    ])
    for (const l of table(['NODE', 'REGION', 'STATE', 'EXIT', 'TIME', 'BYTES', 'CAUSE'], rows)) await io.out.line(l)
    return EXIT.ok
  },
})
