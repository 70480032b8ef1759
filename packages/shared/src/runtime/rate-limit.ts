import type { Logger } from './log.ts'

/**
 * A warning logged at most once per `everyMs`: the first of each interval, with how many more
 * came since the last line. A flood of forged or refused messages is then one line per
 * interval, not one per message.
 */
export function rateLimitedWarning(log: Logger, msg: string, everyMs = 10_000): { note(fields: Record<string, unknown>): void } {
  let until = 0
  let more = 0
  return {
    note(fields) {
      const now = Date.now()
      if (now < until) {
        more++
        return
      }
      log.warn(more > 0 ? { ...fields, moreSinceLast: more } : fields, msg)
      until = now + everyMs
      more = 0
    },
  }
}

const perLogger = new WeakMap<Logger, Map<string, ReturnType<typeof rateLimitedWarning>>>()

/** `rateLimitedWarning` for one logger and message, made once and kept: for code that has no place to hold one. */
export function warnRateLimited(log: Logger, msg: string, fields: Record<string, unknown>): void {
  let byMsg = perLogger.get(log)
  if (!byMsg) perLogger.set(log, (byMsg = new Map()))
  let w = byMsg.get(msg)
  if (!w) byMsg.set(msg, (w = rateLimitedWarning(log, msg)))
  w.note(fields)
}
