import { defineCommand } from '../cli/command.ts'
import { cursorDirOf } from '../cli/context.ts'
import { FOLLOW_OPTIONS } from '../cli/options.ts'
import { readCursor } from './follow.ts'
import { followCreated } from './submit.ts'

export const watch = defineCommand({
  name: 'watch',
  summary: 'reattach to a job and follow it to the end, from where keeper left off',
  usage: 'keeper watch ID [--no-group] [-o FORMAT]',
  options: FOLLOW_OPTIONS,
  args: 'id',
  async run({ id, values, globals, io, client }) {
    const c = await client()
    const cursorDir = cursorDirOf(globals, io.env)
    const job = await c.get(id)
    const after = await readCursor(cursorDir, id)
    // Counts up to the cursor come from the job as stored; events after it from the stream.
    const counts: Record<string, number> = {}
    for (const n of job.nodes) counts[n.state] = (counts[n.state] ?? 0) + 1
    const seed = after > 0 ? { total: job.nodeCount, counts, createdAt: job.createdAt } : undefined
    if (after > 0 && io.format === 'text') await io.out.line(`reattaching to job ${id} after event ${after}`)
    return followCreated(c, io, id, values, { after, cursorDir, ...(seed ? { seed } : {}) })
  },
})
