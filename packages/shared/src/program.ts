import { optionsHelp, type OptionTable, parseCommandLine } from './cli.ts'
import { errorMessage, isApiaryError } from './errors.ts'
import { createLogger, type Logger } from './log.ts'
import { closeOnSignals } from './process.ts'

type Values<T extends OptionTable> = ReturnType<typeof parseCommandLine<T>>['values']

export interface ProgramSpec<T extends OptionTable> {
  /** `apiary-hive` */
  program: string
  /** The logger's `component`. */
  component: string
  /** One line, then usage lines; the options table is appended. */
  about: string
  options: T
  /** Checks flags before anything starts; a throw is a usage error (exit 2). */
  check?: (values: Values<T>) => void
  /** Starts the program; resolves once it runs. The returned close() runs on SIGINT/SIGTERM. */
  start: (values: Values<T>, log: Logger) => Promise<{ close(): Promise<void> }>
}

/**
 * The life of a long-running apiary program, for `main.ts`: flags (with `--help`), a logger,
 * start, close on signals. Usage errors exit 2 with the problem on stderr; a failed start
 * exits 2 for bad input and 1 otherwise.
 */
export async function runProgram<T extends OptionTable & { 'log-level': unknown; help: unknown }>(spec: ProgramSpec<T>): Promise<void> {
  let values: Values<T>
  try {
    values = parseCommandLine(spec.program, spec.options, process.argv.slice(2), process.env).values
    if (values.help) {
      process.stdout.write(`${spec.about}\n\noptions:\n${optionsHelp(spec.options)}\n`)
      return
    }
    spec.check?.(values)
  } catch (err) {
    process.stderr.write(`${spec.program}: ${errorMessage(err)}\n`)
    process.exitCode = 2
    return
  }
  const log = createLogger({ component: spec.component, level: String(values['log-level']) })
  try {
    const running = await spec.start(values, log)
    closeOnSignals(
      log,
      async () => {
        await running.close()
        log.flush()
      },
      (code) => process.exit(code),
    )
  } catch (err) {
    log.fatal({ err }, errorMessage(err))
    log.flush()
    process.stderr.write(`${spec.program}: ${errorMessage(err)}\n`)
    process.exitCode = isApiaryError(err, 'invalid_input') ? 2 : 1
  }
}
