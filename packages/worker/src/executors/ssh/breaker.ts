import type { BreakerState } from '@apiary/shared'

export interface BreakerOptions {
  /** Consecutive connect failures that open the breaker. */
  failures: number
  /** How long it stays open before one trial connect is let through. */
  cooldownMs: number
}

/**
 * A per-host circuit breaker over connect attempts. Closed: connects go ahead. After
 * `failures` consecutive connect failures it opens: connects fail at once. After `cooldownMs`
 * it is half-open: one trial connect goes ahead (others still fail at once); its success
 * closes the breaker, its failure opens it for another cool-down.
 *
 * Not cockatiel's breaker: that one reports `open` until a call arrives after the cool-down,
 * makes concurrent callers wait on the trial (a fan-out would queue behind a dead host), and
 * neither counts nor resets on errors it does not handle (an auth failure means the host
 * answered, which is what this breaker is about).
 */
export class HostBreaker {
  #failures = 0
  #openedAt: number | null = null
  #trial = false

  constructor(
    private readonly opts: BreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get consecutiveFailures(): number {
    return this.#failures
  }

  get state(): BreakerState {
    if (this.#openedAt === null) return 'closed'
    return this.now() - this.#openedAt >= this.opts.cooldownMs ? 'half-open' : 'open'
  }

  /** True when a connect may start now. In half-open, the caller holds the one trial. */
  permit(): boolean {
    switch (this.state) {
      case 'closed':
        return true
      case 'open':
        return false
      case 'half-open':
        if (this.#trial) return false
        this.#trial = true
        return true
    }
  }

  /** The host answered (even if it then refused us): reachable. */
  success(): void {
    this.#failures = 0
    this.#openedAt = null
    this.#trial = false
  }

  /**
   * A connect failed before the SSH handshake. `trial`: it was the half-open trial, which
   * opens the breaker for another cool-down. Returns true when this opened a closed breaker.
   */
  failure(trial = false): boolean {
    this.#failures++
    if (trial) {
      this.#trial = false
      this.#openedAt = this.now()
      return false
    }
    if (this.#openedAt === null && this.#failures >= this.opts.failures) {
      this.#openedAt = this.now()
      return true
    }
    return false
  }

  /** The trial ended without a verdict (it was abandoned): let another one through. */
  abandon(): void {
    this.#trial = false
  }
}
