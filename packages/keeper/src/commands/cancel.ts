import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { followJob } from './follow.ts'

export const cancel = defineCommand({
  name: 'cancel',
  summary: 'cancel a job and wait until every node has confirmed',
  usage: 'keeper cancel ID [--no-wait]',
  options: { 'no-wait': { type: 'boolean', help: 'return once the cancel is requested' } },
  args: 'id',
  async run({ id, values: v, io, client }) {
    const c = await client()
    const before = await c.get(id)
    const r = await c.cancel(id)
    if (r.state !== 'running') {
      await io.out.line(`job ${id} already ended: ${r.state}`)
      return EXIT.ok
    }
    await io.out.line(`cancel requested for job ${id}`)
    if (v['no-wait']) return EXIT.ok
    // Each node confirms: cancelled, skipped, or the end it had already reached.
    const { code } = await followJob(c, id, { ...io, tty: false }, { noGroup: false, after: before.lastSeq }, io.interrupt)
    if (code === EXIT.detached) return code
    const after = await c.get(id)
    const stillRunning = after.nodes.filter((n) => n.state === 'running' || n.state === 'pending').length
    return after.state === 'cancelled' && stillRunning === 0 ? EXIT.ok : EXIT.notOk
  },
})
