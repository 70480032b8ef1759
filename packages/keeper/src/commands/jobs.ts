import { describeOperation, JobState } from '@apiary/shared'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { ago, table } from '../render/output.ts'
import { counts, printJson } from '../render/records.ts'

export const jobs = defineCommand({
  name: 'jobs',
  summary: 'list recent jobs',
  usage: 'keeper jobs [--state running|ok|failed|cancelled] [--limit N] [-o FORMAT]',
  options: {
    state: { type: 'string', choices: JobState.options, value: 'STATE', help: 'only jobs in this state' },
    limit: { type: 'int', min: 1, max: 1000, default: '20', help: 'how many, newest first' },
  },
  args: 'none',
  async run({ values: v, io, client }) {
    const jobs = await (await client()).list({ ...(v.state ? { state: v.state } : {}), limit: v.limit })
    if (await printJson(io, 'jobs', jobs)) return EXIT.ok
    if (jobs.length === 0) {
      await io.out.line('no jobs yet')
      return EXIT.ok
    }
    const rows = jobs.map((j) => [j.id, j.state, String(j.nodeCount), counts(j.counts), ago(j.createdAt), j.submittedBy ?? '', describeOperation(j.operation)])
    for (const l of table(['JOB', 'STATE', 'NODES', 'RESULTS', 'CREATED', 'BY', 'OPERATION'], rows)) await io.out.line(l)
    return EXIT.ok
  },
})
