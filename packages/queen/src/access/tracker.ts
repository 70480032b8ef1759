/** A request counts as a login when its user made none from its address for this long. */
export const LOGIN_WINDOW_MS = 3600_000
/** Failed authentications of one address are one audit record per this long, with their count. */
export const FAILURE_WINDOW_MS = 60_000
/** Addresses whose failures are counted apart; the rest share one count under `OTHER_SOURCES`. */
export const MAX_FAILURE_SOURCES = 1024
/** (user, address) pairs remembered for logins; past it the longest idle is forgotten. */
export const MAX_LOGIN_PAIRS = 10_000
export const OTHER_SOURCES = 'other addresses'

export interface FailureWindow {
  source: string
  count: number
  /** The first and last failure of the window (ms). */
  first: number
  last: number
  /** The reasons seen (`no bearer token`, `unknown token`), at most a few. */
  reasons: string[]
}

/**
 * What the audit log makes of requests in bulk, in bounded memory: which requests are logins
 * (the first of a user from an address within `LOGIN_WINDOW_MS`), and failed authentications
 * folded into at most one window per address per `FAILURE_WINDOW_MS`, so a flood of bad tokens
 * is a count, not a disk full of records. Pure: an injected clock, no timers.
 *
 * @example
 * const t = new AccessTracker(Date.now)
 * t.failed('10.0.0.9', 'unknown token')
 * t.due() // windows a minute old, each to be one audit record
 */
export class AccessTracker {
  readonly #logins = new Map<string, number>()
  readonly #failures = new Map<string, FailureWindow>()

  constructor(
    private readonly now: () => number,
    private readonly limits: { maxSources?: number; maxLoginPairs?: number } = {},
  ) {}

  /** Notes a request of `user` from `source`; true when it is a login. */
  seen(user: string, source: string): boolean {
    const key = `${user}\u0000${source}`
    const t = this.now()
    const last = this.#logins.get(key)
    // Re-inserted so the map's order is least recently seen first.
    this.#logins.delete(key)
    this.#logins.set(key, t)
    if (this.#logins.size > (this.limits.maxLoginPairs ?? MAX_LOGIN_PAIRS)) this.#logins.delete(this.#logins.keys().next().value!)
    return last === undefined || t - last >= LOGIN_WINDOW_MS
  }

  /** Notes a failed authentication from `source`. */
  failed(source: string, reason: string): void {
    const t = this.now()
    let key = source
    if (!this.#failures.has(key) && this.#failures.size >= (this.limits.maxSources ?? MAX_FAILURE_SOURCES)) key = OTHER_SOURCES
    let w = this.#failures.get(key)
    if (!w) this.#failures.set(key, (w = { source: key, count: 0, first: t, last: t, reasons: [] }))
    w.count++
    w.last = t
    if (w.reasons.length < 4 && !w.reasons.includes(reason)) w.reasons.push(reason)
  }

  /** How many addresses have failures counted now. */
  get trackedSources(): number {
    return this.#failures.size
  }

  /** Windows that have run their minute (all of them with `all`, at close), removed: each becomes one record. */
  due(all = false): FailureWindow[] {
    const t = this.now()
    const out: FailureWindow[] = []
    for (const [key, w] of this.#failures) {
      if (!all && t - w.first < FAILURE_WINDOW_MS) continue
      out.push(w)
      this.#failures.delete(key)
    }
    return out
  }
}
