import { ApiaryError } from '@apiary/shared'
import { firstWord } from '../cli/argv.ts'
import type { Command } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { GLOBAL_OPTIONS } from '../cli/options.ts'
import { busInit } from './bus-init.ts'
import { busIssue } from './bus-issue.ts'
import { busList } from './bus-list.ts'
import { busPush } from './bus-push.ts'
import { busRevoke } from './bus-revoke.ts'
import { busServerConfig } from './bus-server-config.ts'

/** In the order `keeper bus --help` lists them. */
const BUS_COMMANDS = [busInit, busIssue, busRevoke, busPush, busList, busServerConfig]

function busHelp(): string {
  const name = (c: Command) => c.name.slice('bus '.length)
  const width = Math.max(...BUS_COMMANDS.map((c) => name(c).length)) + 2
  return `keeper bus: the NATS identities of a cluster — an operator and account (decentralized auth),
one credential per queen, hive, worker and SSH worker with only the subjects its role needs, and
the nats-server config that enforces them

usage: keeper bus COMMAND [flags]

commands:
${BUS_COMMANDS.map((c) => `  ${name(c).padEnd(width)}${c.summary}`).join('\n')}

enrol a fleet, one command per node:
  keeper bus init
  nats-server -c ~/.local/state/apiary/bus/nats-server.conf
  while read -r n; do keeper bus issue --role worker --region eu --node-id "$n"; done < nodes.txt

a JetStream cluster of three, one command per server (then keeper rewrites all three configs):
  keeper bus server-config --server-name n1 --host 10.0.0.1 --cluster-name apiary \\
    --cluster-listen 10.0.0.1:6222 --routes 10.0.0.1:6222,10.0.0.2:6222,10.0.0.3:6222

'keeper bus COMMAND --help' shows a command's flags.
`}

/** `keeper bus COMMAND`: finds the subcommand (global flags may come before it) and hands it the rest. */
export const bus: Command = {
  name: 'bus',
  summary: 'NATS identities: the operator and account, a credential per node, the nats-server config',
  usage: 'keeper bus init|issue|revoke|push|list|server-config [flags]',
  options: {},
  async execute(input) {
    const at = firstWord(input.flags, GLOBAL_OPTIONS)
    const word = input.flags[at]
    if (word === undefined) {
      await input.io.out.line(busHelp())
      const asked = input.flags.includes('--help') || input.flags.includes('-h')
      return asked ? EXIT.ok : EXIT.usage
    }
    const sub = BUS_COMMANDS.find((c) => c.name === `bus ${word}`)
    if (!sub) throw new ApiaryError('invalid_input', `unknown command "bus ${word}" (see keeper bus --help)`, 'command')
    return sub.execute({ ...input, flags: [...input.flags.slice(0, at), ...input.flags.slice(at + 1)] })
  },
}
