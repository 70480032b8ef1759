import type { Bus } from '../bus/bus.ts'
import type { Logger } from './log.ts'
import type { Heartbeat } from '../schema/messages.ts'
import { subjects } from '../subjects.ts'

/**
 * Publishes a heartbeat now and then every `intervalMs` (chained timeouts: never two in
 * flight, no burst after a pause). `stop()` ends it.
 */
export class Heartbeater {
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly beat: () => Heartbeat,
  ) {}

  start(): this {
    this.#tick()
    return this
  }

  /** Sends one at once (after a state change worth telling). */
  now(): void {
    if (this.#stopped) return
    clearTimeout(this.#timer)
    this.#tick()
  }

  #tick(): void {
    const hb = this.beat()
    try {
      this.bus.publish(subjects.heartbeat(hb.role, hb.region, hb.id), hb)
    } catch (err) {
      this.log.warn({ err }, 'heartbeat not sent')
    }
    if (this.#stopped) return
    this.#timer = setTimeout(() => this.#tick(), hb.intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
