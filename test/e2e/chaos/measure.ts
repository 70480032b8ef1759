import type { JobEvent, JobRequestInput } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'

/** An event of a job's stream and when this process read it (`Date.now()`). */
export interface Arrival<E extends JobEvent = JobEvent> {
  ev: E
  at: number
}

interface Waiter {
  match: (ev: JobEvent) => boolean
  resolve: (a: Arrival) => void
  reject: (err: Error) => void
}

/**
 * A job's event stream (with output, so its sequence numbers are gapless) read from the start
 * in the background, every event stamped with the time it arrived: a test awaits the events
 * it strikes on, and a measurement reads how long after a strike one came.
 *
 * @example
 * const tape = EventTape.follow(client, jobId)
 * await tape.next((ev) => ev.kind === 'node.started', 'a node to start')
 * const events = await tape.done
 */
export class EventTape {
  readonly arrivals: Arrival[] = []
  /** Each reconnect of the stream: the queen tried next, and what was lost. */
  readonly reconnects: string[] = []
  /** Every event, once the stream ended with `job.finished`; rejected if it ended otherwise. */
  readonly done: Promise<JobEvent[]>
  readonly #waiters = new Set<Waiter>()
  #over = false

  private constructor(
    private readonly client: JobClient,
    readonly jobId: string,
    timeoutMs: number,
  ) {
    this.done = this.#read(AbortSignal.timeout(timeoutMs))
    // A test that fails before awaiting it must not leave an unhandled rejection behind.
    this.done.catch(() => undefined)
  }

  /** Starts reading `jobId`'s stream; it gives up after `timeoutMs` without `job.finished`. */
  static follow(client: JobClient, jobId: string, timeoutMs = 60_000): EventTape {
    return new EventTape(client, jobId, timeoutMs)
  }

  get events(): JobEvent[] {
    return this.arrivals.map((a) => a.ev)
  }

  /** The first event, read already or to come, that `match`es; rejected if the stream ends first or after `timeoutMs`. */
  next<E extends JobEvent>(match: (ev: JobEvent) => ev is E, what: string, timeoutMs?: number): Promise<Arrival<E>>
  next(match: (ev: JobEvent) => boolean, what: string, timeoutMs?: number): Promise<Arrival>
  next(match: (ev: JobEvent) => boolean, what: string, timeoutMs = 30_000): Promise<Arrival> {
    const seen = this.arrivals.find((a) => match(a.ev))
    if (seen) return Promise.resolve(seen)
    if (this.#over) return Promise.reject(new Error(`the stream of ${this.jobId} ended before ${what}`))
    return new Promise<Arrival>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w)
        reject(new Error(`no event of ${this.jobId} showed ${what} within ${timeoutMs} ms (last: ${this.#last()})`))
      }, timeoutMs)
      const w: Waiter = {
        match,
        resolve: (a) => (clearTimeout(timer), resolve(a)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      }
      this.#waiters.add(w)
    })
  }

  async #read(signal: AbortSignal): Promise<JobEvent[]> {
    try {
      const stream = this.client.stream(this.jobId, { output: true, signal, onReconnect: (queen, why) => void this.reconnects.push(`${queen} (after ${why})`) })
      for await (const ev of stream) {
        const a = { ev, at: Date.now() }
        this.arrivals.push(a)
        for (const w of this.#waiters) {
          if (!w.match(ev)) continue
          this.#waiters.delete(w)
          w.resolve(a)
        }
      }
    } finally {
      this.#over = true
      for (const w of this.#waiters) w.reject(new Error(`the stream of ${this.jobId} ended (last: ${this.#last()})`))
      this.#waiters.clear()
    }
    const events = this.events
    if (events.at(-1)?.kind !== 'job.finished') {
      throw new Error(`the stream of ${this.jobId} ended without job.finished after ${events.length} events (last: ${this.#last()}; reconnects: ${this.reconnects.join('; ') || 'none'})`)
    }
    return events
  }

  #last(): string {
    const ev = this.arrivals.at(-1)?.ev
    return ev ? `${ev.kind} #${ev.seq}` : 'none'
  }
}

/** How often a queen is asked again whether it accepts a job. */
const POLL_MS = 25

/**
 * Submits `request` to each of `queens` in turn, every 25 ms, until one answers 201; resolves
 * with the job and the milliseconds from `since` to that answer. Each try is a plain
 * `POST /v1/jobs` with no retry of its own, so the figure is the queens' and not a client's
 * backoff. A try that times out may still have made a job: submit something harmless.
 */
export async function untilAccepted(queens: readonly string[], token: string, request: JobRequestInput, since: number, timeoutMs = 20_000): Promise<{ ms: number; jobId: string; by: string }> {
  const end = since + timeoutMs
  const refusals: string[] = []
  for (;;) {
    for (const queen of queens) {
      try {
        const res = await fetch(`${queen}/v1/jobs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(request),
          signal: AbortSignal.timeout(2000),
        })
        const body = (await res.json()) as { jobId?: string; error?: { code: string } }
        if (res.status === 201 && body.jobId) return { ms: Date.now() - since, jobId: body.jobId, by: queen }
        refusals.push(`${res.status} ${body.error?.code ?? ''}`)
      } catch (err) {
        refusals.push((err as Error).message)
      }
    }
    if (Date.now() > end) throw new Error(`no queen of ${queens.join(', ')} accepted a job within ${timeoutMs} ms (last answers: ${refusals.slice(-3).join('; ')})`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/**
 * Kills the leading queen and measures the failover as an operator sees it: milliseconds from
 * the kill to a standby accepting a job (`untilAccepted`).
 */
export async function measureLeaderFailover(kill: () => Promise<void>, standbys: readonly string[], token: string, request: JobRequestInput): Promise<{ ms: number; jobId: string; by: string }> {
  const since = Date.now()
  await kill()
  return untilAccepted(standbys, token, request, since)
}

/**
 * Kills the hive holding a region's share and measures its hand-over: milliseconds from the
 * kill to the job's `job.region` event naming another hive, as `tape` read it.
 */
export async function measureShareHandOver(tape: EventTape, kill: () => Promise<void>, region: string, holder: string, timeoutMs = 30_000): Promise<{ ms: number; hive: string }> {
  const since = Date.now()
  await kill()
  const a = await tape.next((ev) => ev.kind === 'job.region' && ev.region === region && ev.hive !== holder, `region ${region} handed to a hive other than ${holder}`, timeoutMs)
  const hive = a.ev.kind === 'job.region' ? (a.ev.hive ?? '?') : '?'
  return { ms: a.at - since, hive }
}
