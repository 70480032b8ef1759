import { ApiaryError, type Operation } from '@apiary/shared'
import { defineCommand } from '../cli/command.ts'
import { cursorDirOf } from '../cli/context.ts'
import { RUN_OPTIONS } from '../cli/options.ts'
import { buildRequest, submitAndFollow } from './submit.ts'

export const run = defineCommand({
  name: 'run',
  summary: 'run a command on many nodes and follow it live',
  usage: 'keeper run [--targets SEL] [--concurrency N|P%] [--max-errors N|P%] [--canary N] [--timeout 30s] [--plan] [--yes] [-o FORMAT] -- CMD ARGS…',
  options: RUN_OPTIONS,
  args: 'command',
  async run({ command, values: v, globals, io, client }) {
    const req = buildRequest(v, execOperation(command, v.shell), v['output-cap'])
    return submitAndFollow(await client(), io, v, req, { cursorDir: cursorDirOf(globals, io.env) })
  },
})

function execOperation(command: string[], shell: boolean): Operation {
  if (command.length === 0) throw new ApiaryError('invalid_input', 'no command given: keeper run [flags] -- CMD ARGS…', 'command')
  return shell ? { type: 'exec', shell: true, command: command.join(' ') } : { type: 'exec', shell: false, argv: command }
}
