import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino'

export type Logger = PinoLogger

export interface LoggerOptions {
  component: string
  level?: string
  /** Where lines go; stderr by default so stdout stays the program's output. */
  destination?: DestinationStream
  [binding: string]: unknown
}

/**
 * Paths pino blanks out wherever they appear: secrets never reach a log line. An operation's
 * env and stdin are among them wherever an operation is logged (a task, a share, a request):
 * no code logs them, and this is the second line of defence.
 */
export const REDACT = [
  'token',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'password',
  'passphrase',
  'privateKey',
  '*.token',
  '*.password',
  'env',
  'stdin',
  '*.env',
  '*.stdin',
  'operation.env',
  'operation.stdin',
  '*.operation.env',
  '*.operation.stdin',
  '*.*.operation.env',
  '*.*.operation.stdin',
]

/**
 * Creates the process's logger: JSON lines on stderr, secrets redacted.
 * @example const log = createLogger({ component: 'hive', region: 'eu', level: 'info' })
 */
export function createLogger(opts: LoggerOptions): Logger {
  const { component, level, destination, ...bindings } = opts
  return pino(
    { level: level ?? 'info', base: { component, ...bindings }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination ?? pino.destination({ fd: 2, sync: false }),
  )
}

/** A logger that drops everything, for unit tests of pure logic. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}

