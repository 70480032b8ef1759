import type { Logger } from '@apiary/shared'

export type ConnState = 'connecting' | 'ready' | 'dead'

/** A connection as capacity counts it. Only `Capacity` changes `state`, `retired` and `slots`. */
export interface Tracked {
  readonly id: number
  /** The host's pool key, `user@host:port`. */
  readonly key: string
  state: ConnState
  /** Handed out no more; closes once its last lease is back. */
  retired: boolean
  /** Leases held, and reservations of acquirers waiting for it to be ready. */
  slots: number
}

export interface CapacityOptions {
  maxPerHost: number
  maxTotal: number
  channelsPerConnection: number
  /** A ready connection without leases closes after this long. */
  idleMs: number
}

/** Runs `fn` after `ms`; returns its cancel. */
export type Schedule = (ms: number, fn: () => void) => () => void

/** Real timers that do not hold the process open: an idle connection is no reason to stay up. */
const unrefTimer: Schedule = (ms, fn) => {
  const t = setTimeout(fn, ms)
  t.unref()
  return () => clearTimeout(t)
}

export interface CapacityHooks<C> {
  /** Ends a connection capacity let go (idle, evicted, retired); it is already counted dead. */
  close: (conn: C) => void
  log: Logger
  schedule?: Schedule
}

/**
 * The pool's bookkeeping of connections: the per-host and total caps, which connection gets
 * the next lease, idle close and eviction, and the queue of acquirers waiting for room. No
 * I/O: it says when to close a connection (`hooks.close`), and is told when one is up or died
 * (ssh2's keepalives find a dead one; the pool reports it with `dead`, which frees its place
 * for a replacement).
 *
 * @example
 * const cap = new Capacity({ maxPerHost: 2, maxTotal: 1024, channelsPerConnection: 8, idleMs: 60_000 }, { close: (c) => c.client.end(), log })
 * for (;;) {
 *   const conn = cap.pick(key)
 *   if (conn) {
 *     cap.reserve(conn)
 *     return conn
 *   }
 *   if (cap.makeRoom(key)) return open(key) // cap.add(conn) now, cap.up(conn) once connected
 *   await cap.changed(signal)
 * }
 */
export class Capacity<C extends Tracked> {
  /** Live connections by host; a connection leaves its set as it dies. */
  readonly #hosts = new Map<string, Set<C>>()
  /** Ready connections without leases, longest idle first (the ones to evict at the cap),
   *  each with the cancel of its idle timer. */
  readonly #idle = new Map<C, () => void>()
  readonly #waiters = new Set<() => void>()
  readonly #schedule: Schedule
  #live = 0

  constructor(
    private readonly opts: CapacityOptions,
    private readonly hooks: CapacityHooks<C>,
  ) {
    this.#schedule = hooks.schedule ?? unrefTimer
  }

  /** The busiest usable connection to the host with room: packing leases lets the others go idle and close. */
  pick(key: string): C | undefined {
    let best: C | undefined
    for (const c of this.#hosts.get(key) ?? []) {
      if (c.retired || c.slots >= this.opts.channelsPerConnection) continue
      if (!best || (c.state === 'ready' && best.state !== 'ready') || (c.state === best.state && c.slots > best.slots)) best = c
    }
    return best
  }

  /** Takes a slot on `conn` (a lease, or a wait for it to be ready): it is idle no more. */
  reserve(conn: C): void {
    conn.slots++
    this.#busy(conn)
  }

  /**
   * True when one more connection to the host fits its cap and the total; at the total, the
   * longest-idle connection (of any host) is closed to make the room.
   */
  makeRoom(key: string): boolean {
    const n = this.#hosts.get(key)?.size ?? 0
    return n < this.opts.maxPerHost && (this.#live < this.opts.maxTotal || this.#evictIdle())
  }

  /** Counts a new connection (connecting) against the caps. */
  add(conn: C): void {
    let conns = this.#hosts.get(conn.key)
    if (!conns) {
      conns = new Set()
      this.#hosts.set(conn.key, conns)
    }
    conns.add(conn)
    this.#live++
  }

  /** The connection is up and may be leased. */
  up(conn: C): void {
    conn.state = 'ready'
    // Its acquirers may all have given up while it connected.
    this.#idleCheck(conn)
  }

  /** Takes a connection out of the pool for good; waiters re-check. */
  dead(conn: C): void {
    if (conn.state === 'dead') return
    conn.state = 'dead'
    this.#busy(conn)
    const conns = this.#hosts.get(conn.key)
    conns?.delete(conn)
    if (conns?.size === 0) this.#hosts.delete(conn.key)
    this.#live--
    this.#wake()
  }

  /** Hands a slot back. `retire`: lease this connection no more; it closes once unused. */
  release(conn: C, retire = false): void {
    if (retire) conn.retired = true
    conn.slots--
    this.#idleCheck(conn)
    this.#wake()
  }

  /** Resolves on the next change of capacity (a slot back, a connection up or gone), or rejects with the signal's reason. */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        this.#waiters.delete(wake)
        reject(signal.reason)
      }
      this.#waiters.add(wake)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Lets every waiter re-check (the pool closing is a change too). */
  wake(): void {
    this.#wake()
  }

  /** Every live connection, connecting or ready. */
  connections(): C[] {
    return [...this.#hosts.values()].flatMap((conns) => [...conns])
  }

  /** Ready connections, and the slots held on them. */
  usage(): { connections: number; channels: number } {
    let connections = 0
    let channels = 0
    for (const c of this.connections()) {
      if (c.state !== 'ready') continue
      connections++
      channels += c.slots
    }
    return { connections, channels }
  }

  #wake(): void {
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const w of waiters) w()
  }

  /** Closes the longest-idle connection of any host to make room; false if none is idle. */
  #evictIdle(): boolean {
    const idle = this.#idle.keys().next().value
    if (!idle) return false
    this.hooks.log.debug({ host: idle.key }, 'closing an idle ssh connection to make room')
    this.#letGo(idle)
    return true
  }

  /** A ready connection without leases closes now if retired, else after the idle time. */
  #idleCheck(conn: C): void {
    if (conn.state !== 'ready' || conn.slots !== 0) return
    if (conn.retired) return this.#letGo(conn)
    this.#busy(conn)
    const cancel = this.#schedule(this.opts.idleMs, () => {
      if (conn.slots !== 0 || conn.state !== 'ready') return
      this.hooks.log.debug({ host: conn.key, conn: conn.id }, 'closing an idle ssh connection')
      this.#letGo(conn)
    })
    this.#idle.set(conn, cancel)
  }

  /** Not idle (any more): its idle timer stops, and it cannot be evicted. */
  #busy(conn: C): void {
    this.#idle.get(conn)?.()
    this.#idle.delete(conn)
  }

  /** Lets a connection go: counted dead at once, so its place is free before it has closed. */
  #letGo(conn: C): void {
    this.dead(conn)
    this.hooks.close(conn)
  }
}
