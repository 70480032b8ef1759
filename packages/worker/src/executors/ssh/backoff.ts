import { setTimeout as sleep } from 'node:timers/promises'

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseMs: number
  /** Largest delay. */
  maxMs: number
}

/**
 * Exponential backoff with "equal jitter": half the exponential delay, plus a random part up to
 * the other half. Hosts that failed together (one switch went down) then retry apart.
 *
 * @example backoffMs(2, { baseMs: 200, maxMs: 5000 }) // between 400 and 800
 */
export function backoffMs(retry: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** retry)
  return Math.round(exp / 2 + random() * (exp / 2))
}

/** Waits `ms`, or rejects with the signal's reason once it aborts. */
export async function delay(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal })
  } catch (err) {
    if (signal.aborted) throw signal.reason
    throw err
  }
}
