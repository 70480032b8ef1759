import { type OptionTable, optionsHelp } from '@apiary/shared/runtime'
import { GLOBAL_OPTIONS } from './options.ts'

/** What help shows of a command. */
export interface CommandSummary {
  name: string
  summary: string
  usage: string
  options: OptionTable
}

/** `keeper --help` */
export function keeperHelp(commands: readonly CommandSummary[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2
  return `keeper: the apiary operator's CLI — fan commands out across nodes and watch them live

usage: keeper [global flags] COMMAND [flags] [-- CMD ARGS…]

commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

global flags:
${optionsHelp(GLOBAL_OPTIONS)}

exit codes: 0 every node ok · 1 some node not ok · 2 usage or input error ·
            3 cancelled or timed out · 4 cannot reach the queen · 130 detached (Ctrl-C)

examples:
  keeper dev run -- uname -n                       a fan-out on a throw-away embedded cluster
  keeper run --targets 'role=web,region=eu' -- systemctl is-active nginx
  keeper run --shell -- 'df -h / | tail -1'
  keeper facts --targets 'web-*'
  keeper logs JOB --node web-1
  keeper --queen https://q1:7070,https://q2:7070 watch JOB
                                                   a leader and its standby: followed across a failover

'keeper COMMAND --help' shows a command's flags.
`
}

/** `keeper COMMAND --help` */
export function commandHelp(c: CommandSummary): string {
  return `keeper ${c.name}: ${c.summary}\n\nusage: ${c.usage}\n\nflags:\n${optionsHelp({ ...c.options, ...GLOBAL_OPTIONS })}\n`
}
