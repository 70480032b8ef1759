import { createHmac, randomBytes } from 'node:crypto'
import { type Bus, type FinalState, type Logger, notRunEvent, subjects } from '@apiary/shared'
import { warnRateLimited } from '@apiary/shared/runtime'

/** One node end the hive decided itself (never dispatched, undeliverable, lost). */
export interface Verdict {
  jobId: string
  region: string
  node: string
  /** The share's attempt: a re-offer's hive may judge a node again, and is stored apart. */
  attempt: number
  state: FinalState
  cause: string
  /** Retried until stored or until then (epoch ms): the grant's expiry, after which nobody acts on the share. */
  deadline: number
}

/**
 * The hive's own node ends, stored in the events stream (`bus.durable.publish`) rather than
 * published on core NATS: the queen may be away or NATS restarting when the hive decides, and
 * a verdict is the only report that node will ever get. Each is retried by the stream client
 * until stored or its deadline, deduplicated by `<jobId>/<node>/<tag>/verdict/<attempt>`. The
 * hive waits for those still on their way when it stops (`drain`).
 *
 * The stream dedupes by id alone, whatever the subject: an id a worker could guess would let it
 * have the hive's verdict on another node dropped. The tag is keyed by a secret of this
 * process; the ids need only hold across one hive's retries (a restarted hive's share is a
 * re-offer, a new attempt).
 */
export class VerdictOutbox {
  readonly #inflight = new Set<Promise<void>>()
  readonly #stop = new AbortController()
  readonly #secret = randomBytes(32)

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  send(v: Verdict): void {
    const p = this.#store(v).finally(() => this.#inflight.delete(p))
    this.#inflight.add(p)
  }

  /** Waits for what is on its way, at most `graceMs`; what is left then is given up (and logged). */
  async drain(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))
    await Promise.race([Promise.all([...this.#inflight]), late])
    clearTimeout(timer)
    this.#stop.abort(new Error('the hive is stopping'))
    await Promise.all([...this.#inflight])
  }

  #tag(v: Verdict): string {
    return createHmac('sha256', this.#secret).update(`${v.jobId}/${v.node}/${v.attempt}`).digest('base64url').slice(0, 22)
  }

  async #store(v: Verdict): Promise<void> {
    const ev = { ...notRunEvent(v.jobId, v.node, v.state, v.cause), attempt: v.attempt }
    try {
      await this.bus.durable.publish(subjects.hiveEvents(v.region, v.jobId), ev, {
        id: `${v.jobId}/${v.node}/${this.#tag(v)}/verdict/${v.attempt}`,
        deadline: v.deadline,
        signal: this.#stop.signal,
      })
    } catch (err) {
      warnRateLimited(this.log, 'a node’s end the hive decided was not stored', { err, jobId: v.jobId, node: v.node, state: v.state })
    }
  }
}
