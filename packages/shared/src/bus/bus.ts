import type { z } from 'zod'
import type { Logger } from '../runtime/log.ts'

/**
 * The one messaging interface every role talks through. Two implementations: NATS (the
 * distributed engine) and in-process (the embedded cluster). Both pass the same conformance
 * suite (test/conformance/bus.test.ts).
 *
 * Bodies are JSON. A body that is not JSON never reaches a handler: the bus logs it with its
 * subject and drops it. A handler that throws or rejects is logged; it never kills the process.
 */
export interface BusMessage {
  readonly subject: string
  readonly data: unknown
  /** True when the sender waits for a reply (a request). */
  readonly expectsReply: boolean
  /** Replies to a request; a no-op for a plain publish. */
  respond(data: unknown): void
}

export type BusHandler = (msg: BusMessage) => void | Promise<void>

export interface BusSubscription {
  unsubscribe(): void
}

export interface RequestOptions {
  timeoutMs: number
  signal?: AbortSignal
}

export interface Bus {
  /** A name for logs: `nats` or `memory`. */
  readonly kind: string
  publish(subject: string, data: unknown): void
  /**
   * Subscribes to `subject` (`*` matches one token, `>` the rest). With `queue`, each message
   * goes to one member of the group among the subscribers that share it.
   */
  subscribe(subject: string, handler: BusHandler, opts?: { queue?: string }): BusSubscription
  /**
   * Sends a request and waits for the first reply. Rejects with `ApiaryError` code
   * `no_responders` at once when nobody listens, `timeout` when nobody answers in time.
   */
  request(subject: string, data: unknown, opts: RequestOptions): Promise<unknown>
  /** Resolves when everything published so far has reached the server (or the local queue). */
  flush(): Promise<void>
  /** Stops delivery and releases the connection; pending requests reject with `closed`. */
  close(): Promise<void>
}

/**
 * Validates a message body with `schema`; logs and returns undefined when it does not fit, so
 * a malformed message is dropped with its subject and the field named.
 */
export function decode<S extends z.ZodType>(schema: S, msg: BusMessage, log: Logger): z.output<S> | undefined {
  const parsed = schema.safeParse(msg.data)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  log.warn(
    { subject: msg.subject, field: issue?.path.map(String).join('.') ?? '', problem: issue?.message },
    'dropped a malformed message',
  )
  return undefined
}

/** Runs a handler so that neither a throw nor a rejection escapes. */
export function runHandler(handler: BusHandler, msg: BusMessage, log: Logger): void {
  try {
    const out = handler(msg)
    if (out && typeof (out as Promise<void>).then === 'function') {
      ;(out as Promise<void>).catch((err: unknown) => log.error({ err, subject: msg.subject }, 'message handler failed'))
    }
  } catch (err) {
    log.error({ err, subject: msg.subject }, 'message handler failed')
  }
}

/** Matches a NATS-style subject pattern against a concrete subject. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.')
  const s = subject.split('.')
  for (let i = 0; i < p.length; i++) {
    const tok = p[i]
    if (tok === '>') return s.length > i
    if (i >= s.length) return false
    if (tok !== '*' && tok !== s[i]) return false
  }
  return p.length === s.length
}
