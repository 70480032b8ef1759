import { ApiaryError } from '../errors.ts'

/**
 * What a call may do on another queen when one does not serve it:
 * - `read`: any queen serves it from its own index, and asking again changes nothing (GET, plan);
 * - `write`: only the leader serves it, and asking again is harmless (cancel);
 * - `create`: only the leader serves it, and asking again once it may have arrived could make a
 *   second job (submit, rerun): it moves on only when the request surely never got there.
 */
export type CallKind = 'read' | 'write' | 'create'

/** What one try at one queen came to, when that queen did not serve the call. */
export type Miss =
  /** No answer: the connection was refused, reset or timed out. `sent`: the request may have arrived. */
  | { type: 'down'; reason: string; sent: boolean }
  /** A 503: a standby (`not_leader`), or a queen starting or catching up (`unavailable`), in its words. */
  | { type: 'refused'; reason: string; error: ApiaryError }
  /** A 404 for a job: maybe a queen whose index has not caught up with it yet. */
  | { type: 'not_found'; error: ApiaryError }

export interface FailoverLimits {
  /** How long a call goes on trying, from its first try. */
  deadlineMs: number
  /**
   * How long a job that every answering queen calls unknown is looked for, when it should exist
   * (this client saw it, or had to move off a queen): a standby's index lags by a moment.
   */
  notFoundForMs: number
  /** A round where no queen answered at all: `fail` at once (a command), or `retry` (a stream). */
  allDown: 'fail' | 'retry'
  /** The longest wait between two rounds (the first is 250 ms, then doubled). */
  maxWaitMs: number
}

export type Step = { type: 'try'; queen: string; waitMs: number } | { type: 'fail'; error: ApiaryError }

/** Jobs remembered as existing: enough for any one command, bounded for a long-lived client. */
const KNOWN_JOBS = 1000
const FIRST_WAIT_MS = 250

/**
 * The queens a client talks to and what it has learnt of them: which one answered last (reads
 * start there) and which one took a write last (writes start there), whether it ever had to move
 * off one (then a job unknown to a queen may be lag, not absence), and the jobs it knows exist.
 * Pure: the client does the I/O and reports what came of each try.
 *
 * @example
 * const tries = queens.call('write', limits, { what: 'POST /v1/jobs/j1/cancel' })
 * for (let step = tries.next(); step.type === 'try'; step = tries.next()) { … tries.served(step.queen) or tries.missed(step.queen, miss) }
 */
export class Queens {
  #answered = 0
  #leader: number | undefined
  #movedOn = false
  readonly #jobs = new Set<string>()

  constructor(
    readonly urls: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    if (urls.length === 0) throw new ApiaryError('invalid_input', 'no queen URL given', 'url')
  }

  /** One call's tries, starting at the queen most likely to serve it. */
  call(kind: CallKind, limits: FailoverLimits, opts: { what: string; jobId?: string }): Tries {
    const start = kind === 'read' ? this.#answered : (this.#leader ?? this.#answered)
    const order = this.urls.map((_, i) => this.urls[(start + i) % this.urls.length]!)
    return new Tries(this, order, kind, limits, opts.what, opts.jobId, this.now)
  }

  /** Remembers a job as existing: a 404 for it is then looked into before it is believed. */
  knowJob(jobId: string): void {
    this.#jobs.delete(jobId)
    this.#jobs.add(jobId)
    if (this.#jobs.size > KNOWN_JOBS) this.#jobs.delete(this.#jobs.values().next().value!)
  }

  /** @internal what `Tries` reports */
  served(queen: string, kind: CallKind, jobId: string | undefined): void {
    const i = this.urls.indexOf(queen)
    this.#answered = i
    if (kind !== 'read') this.#leader = i
    if (jobId !== undefined) this.knowJob(jobId)
  }

  /** @internal what `Tries` reports */
  missed(queen: string, miss: Miss): void {
    if (miss.type === 'not_found') return
    this.#movedOn = true
    if (this.#leader === this.urls.indexOf(queen)) this.#leader = undefined
  }

  /** @internal whether a 404 for this job may be a lagging index */
  mayLag(jobId: string | undefined): boolean {
    return this.#movedOn || (jobId !== undefined && this.#jobs.has(jobId))
  }
}

/**
 * The tries of one call, in rounds: every queen once, in order; then, if some queen said it
 * cannot serve it yet (a 503: no leader yet, catching up) or a job may be lagging, a wait that
 * doubles and another round, until the deadline. A round where no queen answered at all ends a
 * command at once, so a dead queen is reported in a moment, and so does a 503 when there is only
 * one queen; a stream goes on trying.
 */
export class Tries {
  #pos = 0
  #wait = FIRST_WAIT_MS
  readonly #started: number
  #firstNotFound: number | undefined
  #fatal: ApiaryError | undefined
  /** This round's misses. */
  #misses: Miss[] = []
  /** Every queen tried, in the order first tried, with why it last did not serve. */
  readonly #why = new Map<string, string>()
  #refused = false

  constructor(
    private readonly queens: Queens,
    private readonly order: readonly string[],
    private readonly kind: CallKind,
    private readonly limits: FailoverLimits,
    private readonly what: string,
    private readonly jobId: string | undefined,
    private readonly now: () => number,
  ) {
    this.#started = now()
  }

  /** The next queen to try, after how long; or the error to give up with. */
  next(): Step {
    if (this.#fatal) return { type: 'fail', error: this.#fatal }
    if (this.#pos < this.order.length) {
      if (this.#pos > 0 && this.remainingMs() <= 0) return this.#giveUp()
      return { type: 'try', queen: this.order[this.#pos++]!, waitMs: 0 }
    }
    const misses = this.#misses
    const notFound = misses.find((m) => m.type === 'not_found')
    const refused = misses.some((m) => m.type === 'refused')
    if (notFound && !refused) {
      this.#firstNotFound ??= this.now()
      if (!this.queens.mayLag(this.jobId) || this.now() - this.#firstNotFound >= this.limits.notFoundForMs) {
        return { type: 'fail', error: notFound.error }
      }
    } else if (this.limits.allDown === 'fail' && misses.every((m) => m.type === 'down')) {
      return this.#giveUp()
    } else if (this.limits.allDown === 'fail' && this.order.length === 1 && refused) {
      // One queen and no other to turn to: its 503 is the answer (a restarted queen waiting for
      // its nodes says so), as it was before there could be several.
      return { type: 'fail', error: misses.find((m) => m.type === 'refused')!.error }
    }
    const waitMs = this.#wait
    if (waitMs >= this.remainingMs()) return this.#giveUp()
    this.#wait = Math.min(this.#wait * 2, this.limits.maxWaitMs)
    this.#misses = []
    this.#pos = 1
    return { type: 'try', queen: this.order[0]!, waitMs }
  }

  /** The queen served the call. */
  served(queen: string): void {
    this.queens.served(queen, this.kind, this.jobId)
  }

  /** The queen did not serve the call, and why. */
  missed(queen: string, miss: Miss): void {
    this.#misses.push(miss)
    this.queens.missed(queen, miss)
    const reason = miss.type === 'not_found' ? miss.error.message : miss.reason
    this.#why.set(queen, reason)
    if (miss.type === 'refused') this.#refused = true
    if (this.kind === 'create' && miss.type === 'down' && miss.sent) {
      this.#fatal = new ApiaryError(
        'unreachable',
        `the queen at ${queen} did not answer ${this.what} after it was sent (${reason}): it may have created the job, so it is not sent to another queen, where it could run twice; look at the job list before submitting it again`,
      )
    }
  }

  /** Time left before the deadline, for one try's own timeout. */
  remainingMs(): number {
    return Math.max(0, this.#started + this.limits.deadlineMs - this.now())
  }

  #giveUp(): Step {
    const tried = [...this.#why]
    const code = this.#refused ? 'unavailable' : 'unreachable'
    if (tried.length === 1 && !this.#refused && this.limits.allDown === 'fail') {
      const [queen, reason] = tried[0]!
      return { type: 'fail', error: new ApiaryError(code, `cannot reach the queen at ${queen}: ${reason}`) }
    }
    const list = tried.map(([queen, reason]) => `${queen} (${reason})`).join('; ')
    const allDown = this.limits.allDown === 'fail' && this.#misses.length === this.order.length && this.#misses.every((m) => m.type === 'down')
    const head = allDown ? 'cannot reach any queen' : `no queen served ${this.what} within ${Math.round((this.now() - this.#started) / 1000)} s`
    return { type: 'fail', error: new ApiaryError(code, `${head}: ${list}`) }
  }
}
