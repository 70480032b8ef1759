import { type BusMessage, subjects } from '@apiary/shared'

/** `apiary.hb.ssh-worker.`: the subjects of SSH workers' heartbeats. */
const SSH_WORKER_BEATS = subjects.heartbeat('ssh-worker', 'r', 'i').slice(0, -'r.i'.length)

/** How long one slice of taking heartbeats may hold the event loop. */
export const INTAKE_SLICE_MS = 8

/** Heartbeats of one SSH worker waiting at most. */
export const SSH_BEATS_WAITING = 16

/** Heartbeats waiting at most: those of every node, SSH worker and hive the presence holds, and room for a burst. */
export const INTAKE_MAX_WAITING = 250_000

export interface IntakeOptions {
  /** Takes one heartbeat (decodes it, tells the presence). */
  take: (msg: BusMessage) => void
  /** Called with a heartbeat dropped because `maxWaiting` were waiting already. */
  dropped: (msg: BusMessage) => void
  maxWaiting?: number
  sliceMs?: number
  /** Runs `fn` soon, after pending I/O (default setImmediate). */
  defer?: (fn: () => void) => void
  now?: () => number
}

/**
 * Takes heartbeats off the bus's hands at once and handles them in slices of a few
 * milliseconds, between which the event loop reads the socket, fires timers and answers
 * requests. At 50,000 nodes beating every 5 s (10,000 a second), handling each as it came held
 * the loop while replies queued behind the heartbeats on the same connection: the leader's
 * lease renewals timed out. A node's newer heartbeat replaces its older one still waiting, in
 * its place (only the latest says anything); an SSH worker's are all kept, since each says which hosts changed
 * since the one before. At most `maxWaiting` wait; past that a new one is dropped (its sender
 * beats again within its interval).
 */
export class HeartbeatIntake {
  readonly #o: Required<Omit<IntakeOptions, 'defer' | 'now'>> & Pick<IntakeOptions, 'defer' | 'now'>
  readonly #waiting = new Map<string, BusMessage>()
  /** How many of each SSH worker's heartbeats wait. */
  readonly #sshWaiting = new Map<string, number>()
  #scheduled = false
  #serial = 0
  #closed = false

  constructor(o: IntakeOptions) {
    this.#o = { maxWaiting: INTAKE_MAX_WAITING, sliceMs: INTAKE_SLICE_MS, ...o }
  }

  /** How many wait to be taken. */
  get waiting(): number {
    return this.#waiting.size
  }

  /** A heartbeat off the bus, on `apiary.hb.<role>.<region>.<id>`. */
  offer(msg: BusMessage): void {
    if (this.#closed) return
    // Each SSH worker's beat counts (its hosts are what changed since the one before).
    const ssh = msg.subject.startsWith(SSH_WORKER_BEATS)
    const key = ssh ? `${msg.subject}#${this.#serial++}` : msg.subject
    if (!this.#waiting.has(key) && this.#waiting.size >= this.#o.maxWaiting) return this.#o.dropped(msg)
    if (ssh) {
      // One SSH worker flooding its own subject takes no more room than this: the others' beats
      // still fit. What it drops it sends again (every twelfth beat carries all its hosts).
      const n = this.#sshWaiting.get(msg.subject) ?? 0
      if (n >= SSH_BEATS_WAITING) return this.#o.dropped(msg)
      this.#sshWaiting.set(msg.subject, n + 1)
    }
    // A newer one takes the older's place in the queue: a sender beating faster than the queue
    // drains is still taken in its turn.
    this.#waiting.set(key, msg)
    this.#schedule()
  }

  close(): void {
    this.#closed = true
    this.#waiting.clear()
    this.#sshWaiting.clear()
  }

  #schedule() {
    if (this.#scheduled) return
    this.#scheduled = true
    const defer = this.#o.defer ?? ((fn) => void setImmediate(fn))
    defer(() => this.#slice())
  }

  #slice() {
    this.#scheduled = false
    if (this.#closed) return
    const now = this.#o.now ?? (() => performance.now())
    const until = now() + this.#o.sliceMs
    for (const [key, msg] of this.#waiting) {
      this.#waiting.delete(key)
      const n = this.#sshWaiting.get(msg.subject)
      if (n !== undefined) {
        if (n <= 1) this.#sshWaiting.delete(msg.subject)
        else this.#sshWaiting.set(msg.subject, n - 1)
      }
      this.#o.take(msg)
      if (now() >= until) break
    }
    if (this.#waiting.size > 0) this.#schedule()
  }
}
