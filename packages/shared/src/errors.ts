import type { z } from 'zod'

/** Stable error codes: match on `code`, never on `instanceof` or message text. */
export const ERROR_CODES = [
  'invalid_input',
  'unauthorized',
  /** Authenticated, but no role of the user allows it; the message names the role and rule. */
  'forbidden',
  'not_found',
  'conflict',
  'confirmation_required',
  'unavailable',
  /** A standby queen: writes go to the leader (reads and streams are served here). */
  'not_leader',
  'no_responders',
  'timeout',
  'unreachable',
  'closed',
  'internal',
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

export class ApiaryError extends Error {
  /** Structured facts a client may act on (e.g. the node count a confirmation needs). */
  readonly details?: Record<string, unknown>

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    options?: ErrorOptions & { details?: Record<string, unknown> },
  ) {
    super(message, options)
    this.name = 'ApiaryError'
    if (options?.details) this.details = options.details
  }
}

export function isApiaryError(err: unknown, code?: ErrorCode): err is ApiaryError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { name?: unknown }).name === 'ApiaryError' &&
    (code === undefined || (err as ApiaryError).code === code)
  )
}

/** Dotted path of a zod issue, e.g. `operation.argv.0`; empty for the root. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.')
}

/**
 * Turns a zod failure into one `invalid_input` error naming the first offending field.
 * `prefix` names where the value came from (a flag, a file, a subject).
 */
export function invalidInput(error: z.ZodError, prefix?: string): ApiaryError {
  const first = error.issues[0]
  const path = first ? issuePath(first.path) : ''
  const field = [prefix, path].filter(Boolean).join('.') || undefined
  const message = first ? `${field ?? 'input'}: ${first.message}` : 'invalid input'
  return new ApiaryError('invalid_input', message, field, { cause: error })
}

/** Parses `value` with `schema`, throwing `invalid_input` naming the field on failure. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix?: string): z.output<S> {
  const parsed = schema.safeParse(value)
  if (!parsed.success) throw invalidInput(parsed.error, prefix)
  return parsed.data
}

/** A short message for logs and CLI output; never includes secrets because errors never carry them. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
