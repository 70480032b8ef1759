import { optionsHelp, type OptionTable, type OptionValues, parseCommandLine } from './cli.ts'
import { errorMessage, isApiaryError } from '../errors.ts'
import { createLogger, type Logger } from './log.ts'
import { closeOnSignals } from './process.ts'

export interface ProgramSpec<T extends OptionTable, C> {
  /** `apiary-hive` */
  program: string
  /** The logger's `component`. */
  component: string
  /** One line, then usage lines; the options table is appended. */
  about: string
  options: T
  /**
   * The program's frozen, defaulted config from its flags and environment, before anything
   * starts: the one place a flag is read. A throw is a usage error (exit 2).
   */
  config: (values: OptionValues<T>, env: NodeJS.ProcessEnv) => C
  /** Starts the program; resolves once it runs. The returned close() runs on SIGINT/SIGTERM. */
  start: (config: C, log: Logger) => Promise<{ close(): Promise<void> }>
  /**
   * How long close() may take (the drain grace): past it and a margin the process exits 1
   * rather than hang. Without it, close() is waited for.
   */
  graceMs?: (config: C) => number
  /** `--health`: asks the running daemon whether it is ready (true: exit 0, false: exit 1); reads only the flags. */
  health?: (values: OptionValues<T>) => Promise<boolean>
}

/** What close() may take past the drain grace: the bus's own close and the last log lines. */
export const CLOSE_MARGIN_MS = 10_000

/**
 * The life of a long-running apiary program, for `main.ts`: flags (with `--help`), config, a
 * logger, start, close on signals. Usage errors exit 2 with the problem on stderr; a failed
 * start exits 2 for bad input and 1 otherwise.
 *
 * @example
 * await runProgram({ program: 'apiary-hive', component: 'hive', about, options: HIVE_OPTIONS, config: parseHiveConfig, start })
 */
export async function runProgram<T extends OptionTable & { 'log-level': { type: 'string'; default: string }; help: { type: 'boolean' } }, C>(spec: ProgramSpec<T, C>): Promise<void> {
  let values: OptionValues<T>
  let config: C
  try {
    const argv = process.argv.slice(2)
    // Help first, read without the environment: a bad value there must not hide it.
    const asksHelp = parseCommandLine(spec.program, spec.options, argv, {}).values.help
    values = asksHelp ? ({ help: true } as OptionValues<T>) : parseCommandLine(spec.program, spec.options, argv, process.env).values
    if (values.help) {
      process.stdout.write(`${spec.about}\n\noptions:\n${optionsHelp(spec.options)}\n`)
      return
    }
    if (spec.health && (values as { health?: boolean }).health === true) {
      process.exitCode = (await spec.health(values)) ? 0 : 1
      return
    }
    config = spec.config(values, process.env)
  } catch (err) {
    process.stderr.write(`${spec.program}: ${errorMessage(err)}\n`)
    process.exitCode = 2
    return
  }
  const log = createLogger({ component: spec.component, level: values['log-level'] })
  try {
    const running = await spec.start(config, log)
    closeOnSignals(
      log,
      async () => {
        await running.close()
        log.flush()
      },
      (code) => process.exit(code),
      spec.graceMs ? { hardStopMs: spec.graceMs(config) + CLOSE_MARGIN_MS } : {},
    )
  } catch (err) {
    log.fatal({ err }, errorMessage(err))
    log.flush()
    process.stderr.write(`${spec.program}: ${errorMessage(err)}\n`)
    process.exitCode = isApiaryError(err, 'invalid_input') ? 2 : 1
  }
}
