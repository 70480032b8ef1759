import { setMaxListeners } from 'node:events'
import { ApiaryError, type BreakerState } from '@apiary/shared'
import { abortable } from '@apiary/shared/runtime'
import { HostBreaker } from './breaker.ts'
import { Capacity, type Tracked } from './capacity.ts'
import { type Client, Connector, type Reachability, type SshTarget } from './connect.ts'
import { KeyRing } from './keys.ts'
import { ControlChannel, createLease, runControl, type SshLease } from './lease.ts'
import { type PoolConfig, resolvePoolOptions, type SshPoolOptions } from './pool-options.ts'

export type { SshTarget } from './connect.ts'
export type { RemoteExit, SshLease } from './lease.ts'
export type { HostKeyPolicy, SshPoolOptions } from './pool-options.ts'

export interface HostStatus {
  breaker: BreakerState
  /** When the host last answered (a handshake, a finished command); null if never. */
  lastContact: number | null
  consecutiveFailures: number
}

export interface PoolStats {
  /** Connections up now. */
  connections: number
  /** Leases (running commands) on them. */
  channels: number
  /** TCP connections ever opened. */
  opened: number
}

export interface SshPool {
  /**
   * A slot on a connection to the target: a pooled one with room, else a new one (within the
   * caps; else it waits its turn). Rejects with an `ApiaryError` whose message is the cause
   * (`unreachable: …`, `auth: …`, `host key mismatch`, `host key unknown`, `breaker open`),
   * or with the signal's reason once it aborts.
   */
  acquire(target: SshTarget, signal: AbortSignal): Promise<SshLease>
  /** Reachability of `user@host:port` (see `poolKey`). */
  hostStatus(key: string): HostStatus
  /** Every host the pool has tried, with its status. */
  hosts(): Array<HostStatus & { key: string }>
  stats(): PoolStats
  /** Closes every connection; pending and later acquires fail with `closed`. */
  close(): Promise<void>
}

/** The pool's key for a target: `user@host:port`. */
export function poolKey(t: { user: string; host: string; port: number }): string {
  return `${t.user}@${t.host}:${t.port}`
}

/**
 * Creates a pool of SSH connections, one set per `user@host:port`, shared by every task and
 * job of the worker. Throws `invalid_input` naming the field for an option that cannot work
 * (a cap below one, a negative duration).
 *
 * @example
 * const pool = createSshPool({ knownHosts: '/etc/apiary/known_hosts', keyFile: '/etc/apiary/id_ed25519' })
 * const lease = await pool.acquire({ id: 'web-1', host: '10.0.0.5', port: 22, user: 'deploy' }, signal)
 */
export function createSshPool(opts: SshPoolOptions): SshPool {
  return new Pool(resolvePoolOptions(opts))
}

interface Conn extends Tracked {
  readonly reach: Reachability
  /** Set once connected; a connection closed while connecting never has one. */
  client: Client | undefined
  control: ControlChannel | undefined
  ready: Promise<void>
}

/** Wires the parts: capacity decides which connection, the connector opens one, leases use it. */
class Pool implements SshPool {
  readonly #config: PoolConfig
  readonly #reach = new Map<string, Reachability>()
  readonly #capacity: Capacity<Conn>
  readonly #connector: Connector
  /** Aborts connects in progress when the pool closes. */
  readonly #closing = new AbortController()
  #nextId = 1

  constructor(config: PoolConfig) {
    this.#config = config
    this.#capacity = new Capacity(config, { close: (conn) => conn.client?.end(), log: config.log })
    this.#connector = new Connector(config, new KeyRing(config))
    // Every connect in progress listens for the pool's close: a fan-out has hundreds.
    setMaxListeners(0, this.#closing.signal)
  }

  async acquire(target: SshTarget, signal: AbortSignal): Promise<SshLease> {
    const key = poolKey(target)
    const reach = this.#reachOf(key)
    const capacity = this.#capacity
    for (;;) {
      if (this.#closing.signal.aborted) throw new ApiaryError('closed', 'ssh pool is closed')
      signal.throwIfAborted()
      const conn = capacity.pick(key)
      if (conn) {
        capacity.reserve(conn)
        try {
          await abortable(conn.ready, signal)
        } catch (err) {
          capacity.release(conn)
          throw err
        }
        // It may have died between ready and now.
        if (conn.state !== 'ready') {
          capacity.release(conn)
          continue
        }
        return this.#lease(conn)
      }
      if (capacity.makeRoom(key)) {
        const trial = reach.breaker.state === 'half-open'
        if (!reach.breaker.permit()) throw new ApiaryError('unreachable', 'breaker open')
        this.#open(reach, target, trial)
        continue
      }
      await capacity.changed(signal)
    }
  }

  hostStatus(key: string): HostStatus {
    const reach = this.#reach.get(key)
    if (!reach) return { breaker: 'closed', lastContact: null, consecutiveFailures: 0 }
    return { breaker: reach.breaker.state, lastContact: reach.lastContact, consecutiveFailures: reach.breaker.consecutiveFailures }
  }

  hosts(): Array<HostStatus & { key: string }> {
    return [...this.#reach.keys()].map((key) => ({ key, ...this.hostStatus(key) }))
  }

  stats(): PoolStats {
    return { ...this.#capacity.usage(), opened: this.#connector.opened }
  }

  async close(): Promise<void> {
    this.#closing.abort(new ApiaryError('closed', 'ssh pool is closed'))
    this.#capacity.wake()
    const closing: Promise<void>[] = []
    for (const c of this.#capacity.connections()) {
      const client = c.client
      if (!client || c.state === 'dead') continue
      closing.push(
        new Promise<void>((resolve) => {
          // A server that does not answer the disconnect must not hold the worker's exit.
          const t = setTimeout(() => client.destroy(), 2000)
          client.once('close', () => {
            clearTimeout(t)
            resolve()
          })
        }),
      )
      client.end()
    }
    await Promise.all(closing)
  }

  #reachOf(key: string): Reachability {
    let reach = this.#reach.get(key)
    if (!reach) {
      reach = { key, breaker: new HostBreaker(this.#config.breaker), lastContact: null }
      this.#reach.set(key, reach)
    }
    return reach
  }

  /** `trial`: the breaker's half-open trial, which gets one attempt and decides alone. */
  #open(reach: Reachability, target: SshTarget, trial: boolean): void {
    const conn: Conn = {
      id: this.#nextId++,
      key: reach.key,
      reach,
      state: 'connecting',
      retired: false,
      slots: 0,
      client: undefined,
      control: undefined,
      ready: Promise.resolve(),
    }
    this.#capacity.add(conn)
    conn.ready = this.#connector.establish(reach, target, trial, this.#closing.signal).then(
      (client) => this.#up(conn, client),
      (err: unknown) => {
        this.#capacity.dead(conn)
        throw err
      },
    )
    // Acquirers await it; when none does (they gave up), its failure is already accounted for.
    conn.ready.catch(() => undefined)
  }

  #up(conn: Conn, client: Client): void {
    const log = this.#config.log
    conn.client = client
    if (this.#closing.signal.aborted) {
      this.#capacity.dead(conn)
      client.end()
      return
    }
    conn.control = new ControlChannel({
      run: (command) => runControl(client, command),
      usable: () => conn.state === 'ready',
      onError: (err) => log.error({ err, host: conn.key }, 'ssh control channel failed'),
    })
    const gone = () => this.#capacity.dead(conn)
    client.on('error', (err) => log.debug({ host: conn.key, conn: conn.id, err: err.message }, 'ssh connection error'))
    client.once('end', gone)
    client.once('close', gone)
    log.debug({ host: conn.key, conn: conn.id }, 'ssh connection up')
    this.#capacity.up(conn)
  }

  #lease(conn: Conn): SshLease {
    const { client, control } = conn
    // A ready connection has both; `#up` set them before it counted as ready.
    if (!client || !control) throw new Error(`ssh connection ${conn.id} is ready without a client`)
    return createLease({
      key: conn.key,
      client,
      control,
      alive: () => conn.state === 'ready',
      release: (retire) => {
        if (conn.state === 'ready') conn.reach.lastContact = Date.now()
        this.#capacity.release(conn, retire)
      },
    })
  }
}
