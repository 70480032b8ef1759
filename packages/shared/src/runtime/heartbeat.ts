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
  /** Whether the latest beat went out (false before the first, after a failed one, and once stopped). */
  #sent = false

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

  /** Whether it beats: started, not stopped, and the latest beat was handed to the bus. */
  get beating(): boolean {
    return this.#sent && !this.#stopped
  }

  /**
   * Stops, with a last beat that says so (`leaving`): the queen takes this one as gone at once,
   * rather than after three silent intervals. For a hive handing its shares back.
   */
  leave(): void {
    if (this.#stopped) return
    this.stop()
    this.#send({ ...this.beat(), leaving: true })
  }

  #send(hb: Heartbeat): void {
    try {
      this.bus.publish(subjects.heartbeat(hb.role, hb.region, hb.id), hb)
      this.#sent = true
    } catch (err) {
      this.#sent = false
      this.log.warn({ err }, 'heartbeat not sent')
    }
  }

  #tick(): void {
    const hb = this.beat()
    this.#send(hb)
    if (this.#stopped) return
    this.#timer = setTimeout(() => this.#tick(), hb.intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }
}
