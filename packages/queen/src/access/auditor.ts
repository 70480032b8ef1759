import type { AuditRecord, Logger } from '@apiary/shared'
import type { AuditEntry, AuditLog } from './audit.ts'
import { AccessTracker } from './tracker.ts'

/** How often the audit head is logged (when it moved), so a rewritten chain can be caught against the logs. */
export const HEAD_LOG_MS = 5 * 60_000
/** How often due failure windows are written. */
const FLUSH_MS = 10_000
const PRUNE_MS = 3600_000

export interface AuditorOptions {
  audit: AuditLog
  log: Logger
  /** Records older than this are pruned (whole, oldest first). */
  retentionMs: number
  now?: () => number
}

/**
 * The audit log as the HTTP API uses it: decisions appended as they are made, logins and failed
 * authentications folded by an `AccessTracker`, and the periodic work — failure windows written
 * as they close, the head logged every `HEAD_LOG_MS` when it changed (and at close), retention.
 * Construct, then `start()`.
 */
export class Auditor {
  readonly #tracker: AccessTracker
  readonly #now: () => number
  #timers: NodeJS.Timeout[] = []
  #loggedHead = 0
  #closed = false

  constructor(private readonly o: AuditorOptions) {
    this.#now = o.now ?? Date.now
    this.#tracker = new AccessTracker(this.#now)
  }

  start(): void {
    this.prune()
    this.logHead()
    // Chained timeouts, one per duty, each replaced as it fires.
    const every = (i: number, ms: number, fn: () => void) => {
      const tick = () => {
        fn()
        this.#timers[i] = setTimeout(tick, ms).unref()
      }
      this.#timers[i] = setTimeout(tick, ms).unref()
    }
    every(0, FLUSH_MS, () => this.flush())
    every(1, HEAD_LOG_MS, () => this.logHead())
    every(2, PRUNE_MS, () => this.prune())
  }

  /** Appends a decision. */
  record(e: AuditEntry): AuditRecord | undefined {
    if (this.#closed) return undefined
    try {
      return this.o.audit.append(e)
    } catch (err) {
      // An audit write that fails must be seen; the request it records has been decided already.
      this.o.log.error({ err, kind: e.kind }, 'could not append to the audit log')
      return undefined
    }
  }

  /** A request authenticated: recorded as a login when it is the user's first from the address within the hour. */
  seen(user: string, source: string): void {
    if (this.#tracker.seen(user, source)) this.record({ kind: 'login', user, source, detail: {} })
  }

  /** A failed authentication: counted, written once its window closes. */
  failed(source: string, reason: string): void {
    this.#tracker.failed(source, reason)
  }

  /** Writes the failure windows that have closed (every one with `all`). */
  flush(all = false): void {
    for (const w of this.#tracker.due(all)) {
      this.record({ kind: 'auth.failed', source: w.source, detail: { count: w.count, first: w.first, last: w.last, reasons: w.reasons } })
    }
  }

  /** Logs the head when it moved since last logged. */
  logHead(force = false): void {
    const head = this.o.audit.head()
    if (!force && head.seq === this.#loggedHead) return
    this.#loggedHead = head.seq
    this.o.log.info({ auditSeq: head.seq, auditHash: head.hash }, 'audit head')
  }

  prune(): void {
    const before = this.#now() - this.o.retentionMs
    const n = this.o.audit.prune(before)
    if (n > 0) this.o.log.info({ pruned: n, before: new Date(before).toISOString() }, 'pruned audit records past retention')
  }

  close(): void {
    if (this.#closed) return
    for (const t of this.#timers) clearTimeout(t)
    this.flush(true)
    this.logHead(true)
    this.#closed = true
  }
}
