import type { z } from 'zod'
import type { Durable } from './durable.ts'
import type { Logger } from '../runtime/log.ts'
import { warnRateLimited } from '../runtime/rate-limit.ts'

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

export interface SubscribeOptions {
  /** With a queue, each message goes to one member of the group among the subscribers that share it. */
  queue?: string
  /** A body larger than this many bytes is dropped unread (default `MAX_BODY_BYTES`). */
  maxBytes?: number
}

/** The largest body any subscriber reads unless it says less: a task with 1 MiB of stdin, JSON-escaped. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024
/** The largest reply to a request (an acknowledgement). */
export const MAX_REPLY_BYTES = 64 * 1024
/** How deep a body's arrays and objects may nest: deeper ones are dropped before they are parsed. */
export const MAX_BODY_DEPTH = 64

/** Whether JSON text nests arrays and objects deeper than `max` (strings skipped); linear, no parse. */
function nestsDeeper(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // a backslash: skip what it escapes
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > max) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

/**
 * A body as a subscriber reads it: dropped (undefined, logged) when it is larger than
 * `maxBytes`, nests deeper than `MAX_BODY_DEPTH` or is not JSON, all checked before or
 * instead of parsing, so one hostile message costs a receiver little and stops nothing else.
 */
export function readBody(text: string, bytes: number, subject: string, maxBytes: number, log: Logger): { data: unknown } | undefined {
  if (bytes > maxBytes) {
    warnRateLimited(log, 'dropped a message larger than its subject allows', { subject, bytes, maxBytes })
    return undefined
  }
  if (text.length === 0) return { data: null }
  if (nestsDeeper(text, MAX_BODY_DEPTH)) {
    warnRateLimited(log, `dropped a message nested deeper than ${MAX_BODY_DEPTH}`, { subject, bytes })
    return undefined
  }
  try {
    return { data: JSON.parse(text) }
  } catch {
    warnRateLimited(log, 'dropped a message whose body is not JSON', { subject })
    return undefined
  }
}

const utf8 = new TextDecoder()

/** `readBody` for bytes off the wire: an oversized body is dropped before a byte is decoded. */
export function readBytes(data: Uint8Array, subject: string, maxBytes: number, log: Logger): { data: unknown } | undefined {
  return readBody(data.length > maxBytes ? '' : utf8.decode(data), data.length, subject, maxBytes, log)
}

export interface RequestOptions {
  timeoutMs: number
  signal?: AbortSignal
}

export interface Bus {
  /** A name for logs: `nats` or `memory`. */
  readonly kind: string
  /** Streams and leases on the same connection: what must survive a crash (see durable.ts). */
  readonly durable: Durable
  publish(subject: string, data: unknown): void
  /**
   * Subscribes to `subject` (`*` matches one token, `>` the rest). With `queue`, each message
   * goes to one member of the group among the subscribers that share it.
   */
  subscribe(subject: string, handler: BusHandler, opts?: SubscribeOptions): BusSubscription
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
  warnRateLimited(log, 'dropped a malformed message', { subject: msg.subject, field: issue?.path.map(String).join('.') ?? '', problem: issue?.message })
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
