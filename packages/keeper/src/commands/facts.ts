import { ApiaryError } from '@apiary/shared'
import { defineCommand } from '../cli/command.ts'
import { cursorDirOf } from '../cli/context.ts'
import { ROLLOUT_OPTIONS, RUN_OPTIONS } from '../cli/options.ts'
import { factsRender } from '../render/facts.ts'
import { buildRequest, submitAndFollow } from './submit.ts'

const FACT_FIELDS = ['hostname', 'os', 'platform', 'kernel', 'arch', 'cpus.count', 'cpus.model', 'memory.totalBytes', 'memory.availableBytes', 'uptimeSeconds', 'loadAverage']

export const facts = defineCommand({
  name: 'facts',
  summary: 'collect typed facts (os, kernel, cpus, memory, load) from nodes',
  usage: 'keeper facts [--targets SEL] [--aggregate FIELD] [-o FORMAT]',
  options: {
    targets: RUN_OPTIONS.targets,
    aggregate: { type: 'string', value: 'FIELD', help: 'count nodes by one fact: kernel, os, arch, cpus.count, …' },
    ...ROLLOUT_OPTIONS,
    plan: RUN_OPTIONS.plan,
  },
  args: 'none',
  async run({ values: v, globals, io, client }) {
    if (v.aggregate !== undefined && !FACT_FIELDS.includes(v.aggregate)) {
      throw new ApiaryError('invalid_input', `--aggregate: "${v.aggregate}" is not a fact; one of ${FACT_FIELDS.join(', ')}`, '--aggregate')
    }
    return submitAndFollow(await client(), io, v, buildRequest(v, { type: 'facts' }), { cursorDir: cursorDirOf(globals, io.env), ...factsRender(io, v.aggregate) })
  },
})
