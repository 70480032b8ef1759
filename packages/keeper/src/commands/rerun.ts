import { ApiaryError, FINAL_STATES, type FinalState, NOT_OK_STATES } from '@apiary/shared'
import { defineCommand } from '../cli/command.ts'
import { cursorDirOf } from '../cli/context.ts'
import { FOLLOW_OPTIONS, ROLLOUT_OPTIONS } from '../cli/options.ts'
import { followCreated, withConfirmation } from './submit.ts'

export const rerun = defineCommand({
  name: 'rerun',
  summary: 'run a job’s operation again on the nodes that ended in the given states',
  usage: `keeper rerun ID [--only ${NOT_OK_STATES.join(',')}] [--yes] [-o FORMAT]`,
  options: {
    only: { type: 'string', value: 'STATES', default: NOT_OK_STATES.join(','), help: 'which nodes of the original snapshot, by final state' },
    yes: ROLLOUT_OPTIONS.yes,
    ...FOLLOW_OPTIONS,
  },
  args: 'id',
  async run({ id, values: v, globals, io, client }) {
    const only = v.only.split(',').map((s) => s.trim())
    const states: FinalState[] = []
    for (const s of only) {
      const state = FINAL_STATES.find((f) => f === s)
      if (state === undefined) throw new ApiaryError('invalid_input', `--only: "${s}" is not a final state (${FINAL_STATES.join(', ')})`, '--only')
      states.push(state)
    }
    const c = await client()
    const created = await withConfirmation(io, v.yes, (confirm) => c.rerun(id, { only: states, ...(confirm ? { confirm } : {}) }))
    return followCreated(c, io, created.jobId, v, { cursorDir: cursorDirOf(globals, io.env) })
  },
})
