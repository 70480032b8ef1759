import { ApiaryError } from '@apiary/shared'
import { type OptionTable, type OptionValues, parseCommandAndGlobals } from '@apiary/shared/runtime'
import type { JobClient } from '@apiary/shared/client'
import { splitSubcommand } from './argv.ts'
import { connectClient, EXIT, type Format, type GlobalValues, type Io } from './context.ts'
import { commandHelp, type CommandSummary } from './help.ts'
import { GLOBAL_OPTIONS } from './options.ts'

/** Runs another keeper command line: keeper dev's one command, on its cluster. */
export interface Keeper {
  /** The command names. */
  commands: readonly string[]
  dispatch(argv: string[], io: Io, inherited: GlobalValues): Promise<number>
}

export interface CommandContext<T extends OptionTable> {
  /** The command's own flags, typed from its options: defaults filled in, ints and durations numbers. */
  values: OptionValues<T>
  globals: GlobalValues
  io: Io
  /** A client for the queen of `globals`. */
  client(): Promise<JobClient>
  keeper: Keeper
}

interface Definition<T extends OptionTable> {
  name: string
  summary: string
  usage: string
  options: T
}

/**
 * What a command takes besides flags: `none`; `id`, one job id; `command`, the remote command
 * (after `--`, or the positionals); `subcommand`, a whole keeper command line (empty if none).
 */
export type CommandDefinition<T extends OptionTable> = Definition<T> &
  (
    | { args: 'none'; run(ctx: CommandContext<T>): Promise<number> }
    | { args: 'id'; run(ctx: CommandContext<T> & { id: string }): Promise<number> }
    | { args: 'command'; run(ctx: CommandContext<T> & { command: string[] }): Promise<number> }
    | { args: 'subcommand'; run(ctx: CommandContext<T> & { subcommand: string[] }): Promise<number> }
  )

/** A command as dispatch sees it: its option types stay inside `execute`. */
export interface Command extends CommandSummary {
  /** `flags`: the command line without the command's name, up to `--`; `after`: what follows `--`. */
  execute(input: { flags: string[]; after: string[] | undefined; io: Io; inherited: GlobalValues | undefined; keeper: Keeper }): Promise<number>
}

/**
 * One keeper command: its flags are parsed once against its options and the global ones, and
 * `run` gets them typed, with the positionals its `args` calls for.
 *
 * @example
 * export const job = defineCommand({ name: 'job', summary: 'show one job', usage: 'keeper job ID', options: {}, args: 'id',
 *   run: async ({ id, io, client }) => jobCommand(await client(), io, id) })
 */
export function defineCommand<const T extends OptionTable>(def: CommandDefinition<T>): Command {
  const summary = { name: def.name, summary: def.summary, usage: def.usage, options: def.options }
  return {
    ...summary,
    async execute({ flags, after, io, inherited, keeper }) {
      const split = def.args === 'subcommand' ? splitSubcommand(flags, after, { ...def.options, ...GLOBAL_OPTIONS }) : { own: flags, sub: [] }
      const { values, globals: g, positionals } = parseCommandAndGlobals(`keeper ${def.name}`, def.options, GLOBAL_OPTIONS, split.own, io.env)
      if (g.help) {
        await io.out.line(commandHelp(summary))
        return EXIT.ok
      }
      const cio: Io = { ...io, format: formatOf(g) }
      const globals: GlobalValues = {
        queen: inherited?.queen ?? g.queen,
        'token-file': inherited?.['token-file'] ?? g['token-file'],
        ca: inherited?.ca ?? g.ca,
        insecure: inherited?.insecure === true || g.insecure,
        'state-dir': g['state-dir'] ?? inherited?.['state-dir'],
      }
      const ctx: CommandContext<T> = { values, globals, io: cio, client: () => connectClient(globals, cio.env), keeper }
      const remote = after ?? []
      switch (def.args) {
        case 'none':
          if (positionals.length > 0 || remote.length > 0) {
            throw new ApiaryError('invalid_input', `keeper ${def.name} takes no arguments (usage: ${def.usage})`, 'arguments')
          }
          return def.run(ctx)
        case 'id': {
          const [id, ...more] = positionals
          if (id === undefined || more.length > 0 || remote.length > 0) {
            throw new ApiaryError('invalid_input', `keeper ${def.name} takes one job id (usage: ${def.usage})`, 'id')
          }
          return def.run({ ...ctx, id })
        }
        case 'command':
          if (positionals.length > 0 && remote.length > 0) {
            throw new ApiaryError('invalid_input', `unexpected "${positionals[0]}" before --: put the whole command after --`, 'command')
          }
          return def.run({ ...ctx, command: remote.length > 0 ? remote : positionals })
        case 'subcommand':
          if (positionals.length > 0) throw new ApiaryError('invalid_input', `unexpected "${positionals[0]}" (usage: ${def.usage})`, 'command')
          return def.run({ ...ctx, subcommand: split.sub })
      }
    },
  }
}

function formatOf(g: { output: Format; json: boolean }): Format {
  return g.json ? 'ndjson' : g.output
}
