import { ApiaryError } from '@apiary/shared'
import { parseCommandLine } from '@apiary/shared/runtime'
import { firstWord, splitAtDoubleDash } from './argv.ts'
import type { Command, Keeper } from './command.ts'
import { EXIT, type GlobalValues, type Io } from './context.ts'
import { keeperHelp } from './help.ts'
import { GLOBAL_OPTIONS } from './options.ts'

/**
 * Runs one keeper command line: finds the command (global flags may come before it) and hands
 * it the rest. `inherited`: the globals of keeper dev's cluster, for the command it runs.
 */
export async function dispatch(commands: readonly Command[], argv: string[], io: Io, inherited?: GlobalValues): Promise<number> {
  const { before, after } = splitAtDoubleDash(argv)
  const nameAt = firstWord(before, GLOBAL_OPTIONS)
  const name = before[nameAt]
  if (name === undefined) {
    const g = parseCommandLine('keeper', GLOBAL_OPTIONS, before, io.env)
    if (g.values.help || before.length === 0) {
      await io.out.line(keeperHelp(commands))
      return before.length === 0 && !g.values.help ? EXIT.usage : EXIT.ok
    }
    throw new ApiaryError('invalid_input', 'no command given (see keeper --help)', 'command')
  }
  const cmd = commands.find((c) => c.name === name)
  if (!cmd) throw new ApiaryError('invalid_input', `unknown command "${name}" (see keeper --help)`, 'command')
  const keeper: Keeper = {
    commands: commands.map((c) => c.name),
    dispatch: (line, lineIo, globals) => dispatch(commands, line, lineIo, globals),
  }
  return cmd.execute({ flags: [...before.slice(0, nameAt), ...before.slice(nameAt + 1)], after, io, inherited, keeper })
}
