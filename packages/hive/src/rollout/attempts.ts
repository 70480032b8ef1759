/**
 * Which offers of a share a hive takes. A share (one region's part of one phase of a job)
 * comes as attempt 0, then as a re-offer (attempt 1, 2, …) of its nodes still open when the
 * hive that had it stopped heartbeating or the queen restarted without a live holder. A
 * re-offer may reach a hive that never saw the earlier attempts (it takes it), or the very
 * hive that runs the share (it was only slow to heartbeat: it keeps what it has). An attempt
 * older than one seen here is stale: a newer holder exists, and two would dispatch the same
 * nodes.
 */
export type OfferDecision =
  /** Assemble and roll it out. */
  | { kind: 'take' }
  /** Acknowledge it and do nothing: this hive runs the share, or its chunks are on their way. */
  | { kind: 'have'; attempt: number }
  /** Refuse it: a newer attempt was seen here. */
  | { kind: 'stale'; newest: number }

type Stage = 'pending' | 'running' | 'over' | 'dropped'

/** Shares remembered, at most: the oldest that are over are forgotten first. */
const REMEMBERED = 4096

/** Pure bookkeeping, keyed by `<jobId>/<phase>`; no I/O, no clock. */
export class ShareAttempts {
  /** Per share: the newest attempt seen, and what this hive does with the one it holds. */
  readonly #shares = new Map<string, { newest: number; held: number; stage: Stage }>()
  readonly #limit: number

  constructor(limit = REMEMBERED) {
    this.#limit = limit
  }

  /** What to do with an offer of attempt `attempt`. */
  offer(key: string, attempt: number): OfferDecision {
    const s = this.#shares.get(key)
    if (!s) return { kind: 'take' }
    if (attempt < s.newest) return { kind: 'stale', newest: s.newest }
    switch (s.stage) {
      case 'running':
        // The same share, re-offered to the hive that runs it: every node of a re-offer is one
        // this hive holds already, dispatched or not. It goes on as it is.
        s.newest = attempt
        return { kind: 'have', attempt: s.held }
      case 'pending':
      case 'over':
        // The same offer again (its acknowledgement was lost), or a newer one to take.
        return attempt === s.newest ? { kind: 'have', attempt: s.held } : { kind: 'take' }
      case 'dropped':
        return { kind: 'take' }
    }
  }

  /** Its first chunk is here, the others on their way. */
  pending(key: string, attempt: number): void {
    this.#set(key, attempt, 'pending')
  }

  /** Its chunks did not all come: the same attempt may be taken when offered again. */
  dropped(key: string, attempt: number): void {
    const s = this.#shares.get(key)
    if (s?.held === attempt && s.stage === 'pending') s.stage = 'dropped'
  }

  running(key: string, attempt: number): void {
    this.#set(key, attempt, 'running')
  }

  /** Every node of the attempt it runs has ended here (or the hive gave it up). */
  over(key: string, attempt: number): void {
    const s = this.#shares.get(key)
    if (s?.held === attempt && s.stage === 'running') s.stage = 'over'
  }

  #set(key: string, attempt: number, stage: Stage) {
    const newest = Math.max(attempt, this.#shares.get(key)?.newest ?? 0)
    this.#shares.delete(key)
    this.#shares.set(key, { newest, held: attempt, stage })
    if (this.#shares.size <= this.#limit) return
    for (const [k, s] of this.#shares) {
      if (s.stage === 'running' || s.stage === 'pending') continue
      this.#shares.delete(k)
      break
    }
  }
}
