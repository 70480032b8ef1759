import { setMaxListeners } from 'node:events'
import { abortable, ApiaryError, errorMessage, type Logger, readSecretFile, silentLogger } from '@apiary/shared'
import ssh2, { type Algorithms, type AuthMethod, type ClientChannel, type ParsedKey, type ServerHostKeyAlgorithm } from 'ssh2'
import { backoffMs, delay } from './backoff.ts'
import { type BreakerState, HostBreaker } from './breaker.ts'
import { type HostKeys, type HostKeyVerdict, KnownHosts } from './known-hosts.ts'

const { Client, utils } = ssh2
type Client = InstanceType<typeof Client>

/** Where and as whom to connect. */
export interface SshTarget {
  /** The node id, for logs. */
  id: string
  host: string
  port: number
  user: string
  /** A private key file (mode 0600); without it, the pool's key file, then its agent. */
  keyFile?: string
  /** A file (mode 0600) holding the key's passphrase. */
  passphraseFile?: string
}

export type HostKeyPolicy = 'strict' | 'accept-new'

export interface SshPoolOptions {
  /** An OpenSSH known_hosts file; plain and hashed entries. */
  knownHosts: string
  /** `strict` (default): an unknown host key is refused. `accept-new`: it is recorded. */
  hostKeyPolicy?: HostKeyPolicy
  /** The key for targets that name none. */
  keyFile?: string
  passphraseFile?: string
  /** An ssh-agent socket (main.ts passes `$SSH_AUTH_SOCK`). Never forwarded. */
  agent?: string
  /** Connections to one host (default 2). */
  maxPerHost?: number
  /** Connections in all (default 1024); an idle connection to another host makes room. */
  maxTotal?: number
  /** Commands at once on one connection (default 8). Keep it below the server's MaxSessions
   *  (OpenSSH: 10): one more channel carries the kills of stopped commands. */
  channelsPerConnection?: number
  /** An unused connection closes after this long (default 60 s). */
  idleMs?: number
  /** SSH keepalive interval (default 15 s); a connection missing 3 in a row is dead. */
  keepaliveMs?: number
  keepaliveCountMax?: number
  /** TCP connect, handshake and auth must be done within this (default 10 s). */
  connectTimeoutMs?: number
  /** Connect attempts per acquire, for failures before the handshake (default 3). */
  attempts?: number
  /** Backoff between connect attempts (default 250 ms doubling to 5 s, jittered). */
  backoff?: { baseMs?: number; maxMs?: number }
  /** Per-host breaker: opens after `failures` consecutive connect failures (default 5),
   *  half-open after `cooldownMs` (default 30 s). */
  breaker?: { failures?: number; cooldownMs?: number }
  log?: Logger
}

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

/** How a remote command ended: an exit code, or the signal that killed it. */
export interface RemoteExit {
  code: number | null
  signal: string | null
}

/** One command's slot on a pooled connection. */
export interface SshLease {
  /** `user@host:port`. */
  readonly key: string
  /** False once the connection died. */
  readonly alive: boolean
  /**
   * Opens an exec channel on the leased connection. `onExit` is attached as
   * the channel opens: ssh2 emits the exit status once, possibly in the same read as the exec
   * reply, before a caller awaiting this promise could listen.
   */
  exec(command: string, onExit?: (exit: RemoteExit) => void): Promise<ClientChannel>
  /**
   * Runs a short command (a kill) on the connection's control channel, beside the leased
   * slots: one control channel at a time per connection, and commands that queue meanwhile go
   * together in the next one, so cancelling every command on a connection at once stays within
   * the server's MaxSessions. Resolves when it ran or could not; never rejects.
   */
  control(command: string): Promise<void>
  /** Hands the slot back, once. `retire`: hand this connection out no more (it misbehaved). */
  release(opts?: { retire?: boolean }): void
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

interface Host {
  key: string
  conns: Set<Conn>
  breaker: HostBreaker
  lastContact: number | null
}

interface Conn {
  id: number
  host: Host
  client: Client | undefined
  state: 'connecting' | 'ready' | 'dead'
  /** Handed out no more; closes once its last lease is back. */
  retired: boolean
  /** Leases held, and reservations of acquirers waiting for it to be ready. */
  slots: number
  ready: Promise<void>
  idleTimer: NodeJS.Timeout | undefined
  /** Control commands waiting for the control channel, and whether one is open. */
  control: { command: string; done: () => void }[]
  controlBusy: boolean
}

/** Longest wait for a control command's channel. */
const CONTROL_TIMEOUT_MS = 5000

/** How one connect attempt failed. */
interface ConnectFailure {
  error: ApiaryError
  /** Failed before the SSH handshake (worth a retry, and counted by the breaker). */
  transient: boolean
}

/**
 * Creates a pool of SSH connections, one set per `user@host:port`, shared by every task and
 * job of the worker.
 *
 * @example
 * const pool = createSshPool({ knownHosts: '/etc/apiary/known_hosts', keyFile: '/etc/apiary/id_ed25519' })
 * const lease = await pool.acquire({ id: 'web-1', host: '10.0.0.5', port: 22, user: 'deploy' }, signal)
 */
export function createSshPool(opts: SshPoolOptions): SshPool {
  return new Pool(opts)
}

class Pool implements SshPool {
  readonly #o: Required<Omit<SshPoolOptions, 'keyFile' | 'passphraseFile' | 'agent' | 'log' | 'backoff' | 'breaker'>> & {
    backoff: { baseMs: number; maxMs: number }
    breaker: { failures: number; cooldownMs: number }
  }
  readonly #opts: SshPoolOptions
  readonly #log: Logger
  readonly #known: KnownHosts
  readonly #hosts = new Map<string, Host>()
  readonly #waiters = new Set<() => void>()
  /** Ready connections without leases, longest idle first: the ones to evict at the cap. */
  readonly #idle = new Set<Conn>()
  readonly #keys = new Map<string, Promise<ParsedKey>>()
  /** Aborts connects in progress when the pool closes. */
  readonly #closing = new AbortController()
  #live = 0
  #opened = 0
  #nextId = 1

  constructor(opts: SshPoolOptions) {
    this.#opts = opts
    this.#log = opts.log ?? silentLogger()
    this.#known = new KnownHosts(opts.knownHosts)
    // Every connect in progress listens for the pool's close: a fan-out has hundreds.
    setMaxListeners(0, this.#closing.signal)
    this.#o = {
      knownHosts: opts.knownHosts,
      hostKeyPolicy: opts.hostKeyPolicy ?? 'strict',
      maxPerHost: opts.maxPerHost ?? 2,
      maxTotal: opts.maxTotal ?? 1024,
      channelsPerConnection: opts.channelsPerConnection ?? 8,
      idleMs: opts.idleMs ?? 60_000,
      keepaliveMs: opts.keepaliveMs ?? 15_000,
      keepaliveCountMax: opts.keepaliveCountMax ?? 3,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      attempts: opts.attempts ?? 3,
      backoff: { baseMs: opts.backoff?.baseMs ?? 250, maxMs: opts.backoff?.maxMs ?? 5000 },
      breaker: { failures: opts.breaker?.failures ?? 5, cooldownMs: opts.breaker?.cooldownMs ?? 30_000 },
    }
  }

  async acquire(target: SshTarget, signal: AbortSignal): Promise<SshLease> {
    const host = this.#host(poolKey(target))
    for (;;) {
      if (this.#closing.signal.aborted) throw new ApiaryError('closed', 'ssh pool is closed')
      signal.throwIfAborted()
      const conn = this.#pick(host)
      if (conn) {
        conn.slots++
        clearTimeout(conn.idleTimer)
        this.#idle.delete(conn)
        try {
          await abortable(conn.ready, signal)
        } catch (err) {
          this.#unslot(conn)
          throw err
        }
        // It may have died between ready and now.
        if (conn.state !== 'ready') {
          this.#unslot(conn)
          continue
        }
        return this.#lease(conn)
      }
      if (this.#count(host) < this.#o.maxPerHost && (this.#live < this.#o.maxTotal || this.#evictIdle())) {
        const trial = host.breaker.state === 'half-open'
        if (!host.breaker.permit()) throw new ApiaryError('unreachable', 'breaker open')
        this.#open(host, target, trial)
        continue
      }
      await this.#changed(signal)
    }
  }

  hostStatus(key: string): HostStatus {
    const host = this.#hosts.get(key)
    if (!host) return { breaker: 'closed', lastContact: null, consecutiveFailures: 0 }
    return { breaker: host.breaker.state, lastContact: host.lastContact, consecutiveFailures: host.breaker.consecutiveFailures }
  }

  hosts(): Array<HostStatus & { key: string }> {
    return [...this.#hosts.keys()].map((key) => ({ key, ...this.hostStatus(key) }))
  }

  stats(): PoolStats {
    let connections = 0
    let channels = 0
    for (const host of this.#hosts.values()) {
      for (const c of host.conns) {
        if (c.state !== 'ready') continue
        connections++
        channels += c.slots
      }
    }
    return { connections, channels, opened: this.#opened }
  }

  async close(): Promise<void> {
    this.#closing.abort(new ApiaryError('closed', 'ssh pool is closed'))
    this.#wake()
    const closing: Promise<void>[] = []
    for (const host of this.#hosts.values()) {
      for (const c of host.conns) {
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
    }
    await Promise.all(closing)
  }

  #host(key: string): Host {
    let host = this.#hosts.get(key)
    if (!host) {
      host = { key, conns: new Set(), breaker: new HostBreaker(this.#o.breaker), lastContact: null }
      this.#hosts.set(key, host)
    }
    return host
  }

  /** Connections to the host that count against its cap. */
  #count(host: Host): number {
    let n = 0
    for (const c of host.conns) if (c.state !== 'dead') n++
    return n
  }

  /** The busiest usable connection with room: packing leases lets the others go idle and close. */
  #pick(host: Host): Conn | undefined {
    let best: Conn | undefined
    for (const c of host.conns) {
      if (c.state === 'dead' || c.retired || c.slots >= this.#o.channelsPerConnection) continue
      if (!best || (c.state === 'ready' && best.state !== 'ready') || (c.state === best.state && c.slots > best.slots)) best = c
    }
    return best
  }

  /** Closes the longest-idle connection of any host to make room; false if none is idle. */
  #evictIdle(): boolean {
    const idle = this.#idle.values().next().value
    if (!idle) return false
    this.#log.debug({ host: idle.host.key }, 'closing an idle ssh connection to make room')
    this.#dead(idle)
    idle.client?.end()
    return true
  }

  /** `trial`: the breaker's half-open trial, which gets one attempt and decides alone. */
  #open(host: Host, target: SshTarget, trial: boolean): void {
    const conn: Conn = {
      id: this.#nextId++,
      host,
      client: undefined,
      state: 'connecting',
      retired: false,
      slots: 0,
      ready: Promise.resolve(),
      idleTimer: undefined,
      control: [],
      controlBusy: false,
    }
    host.conns.add(conn)
    this.#live++
    conn.ready = this.#establish(conn, target, trial)
    // Acquirers await it; when none does (they gave up), its failure is already accounted for.
    conn.ready.catch(() => undefined)
  }

  /** Connects with retries for transient failures, under the host's breaker. */
  async #establish(conn: Conn, target: SshTarget, trial: boolean): Promise<void> {
    const { host } = conn
    const signal = this.#closing.signal
    try {
      for (let attempt = 1; ; attempt++) {
        const r = await this.#connect(target, signal)
        if (r instanceof Client) {
          if (trial) this.#log.info({ host: host.key, node: target.id }, 'ssh breaker closed: the host answers again')
          host.breaker.success()
          host.lastContact = Date.now()
          this.#up(conn, r)
          return
        }
        if (signal.aborted) {
          if (trial) host.breaker.abandon()
          throw r.error
        }
        if (!r.transient) {
          // The host answered and refused (auth, host key): reachable, and not worth a retry.
          host.breaker.success()
          host.lastContact = Date.now()
          throw r.error
        }
        if (host.breaker.failure(trial)) this.#log.warn({ host: host.key, node: target.id, failures: host.breaker.consecutiveFailures }, 'ssh breaker opened')
        if (trial || host.breaker.state !== 'closed' || attempt >= this.#o.attempts) throw r.error
        this.#log.debug({ host: host.key, attempt, err: r.error.message }, 'ssh connect failed; retrying')
        await delay(backoffMs(attempt - 1, this.#o.backoff), signal)
      }
    } catch (err) {
      this.#dead(conn)
      throw err
    }
  }

  #up(conn: Conn, client: Client): void {
    conn.client = client
    if (this.#closing.signal.aborted) {
      this.#dead(conn)
      client.end()
      return
    }
    conn.state = 'ready'
    const gone = () => this.#dead(conn)
    client.on('error', (err) => this.#log.debug({ host: conn.host.key, conn: conn.id, err: err.message }, 'ssh connection error'))
    client.once('end', gone)
    client.once('close', gone)
    this.#log.debug({ host: conn.host.key, conn: conn.id }, 'ssh connection up')
    // Its acquirers may all have given up while it connected.
    this.#idleCheck(conn)
  }

  /** Takes a connection out of the pool for good; waiters re-check. */
  #dead(conn: Conn): void {
    if (conn.state === 'dead') return
    conn.state = 'dead'
    clearTimeout(conn.idleTimer)
    this.#idle.delete(conn)
    conn.host.conns.delete(conn)
    this.#live--
    this.#wake()
  }

  #unslot(conn: Conn): void {
    conn.slots--
    this.#idleCheck(conn)
    this.#wake()
  }

  /** A ready connection without leases closes now if retired, else after the idle time. */
  #idleCheck(conn: Conn): void {
    if (conn.state === 'ready' && conn.slots === 0) {
      if (conn.retired) {
        this.#dead(conn)
        conn.client?.end()
      } else {
        this.#idle.add(conn)
        conn.idleTimer = setTimeout(() => {
          if (conn.slots !== 0 || conn.state !== 'ready') return
          this.#log.debug({ host: conn.host.key, conn: conn.id }, 'closing an idle ssh connection')
          this.#dead(conn)
          conn.client?.end()
        }, this.#o.idleMs)
        conn.idleTimer.unref()
      }
    }
  }

  #lease(conn: Conn): SshLease {
    let released = false
    const client = conn.client!
    return {
      key: conn.host.key,
      get alive() {
        return conn.state === 'ready'
      },
      exec: (command, onExit) =>
        new Promise<ClientChannel>((resolve, reject) => {
          try {
            client.exec(command, (err, channel) => {
              if (err) return reject(err)
              if (onExit) channel.once('exit', (code: number | null, signal?: string) => onExit({ code: code ?? null, signal: signal ?? null }))
              resolve(channel)
            })
          } catch (err) {
            // ssh2 throws "Not connected" at once when the socket is gone.
            reject(err)
          }
        }),
      control: (command) =>
        new Promise<void>((done) => {
          if (conn.state !== 'ready') return done()
          conn.control.push({ command, done })
          if (!conn.controlBusy) {
            this.#drainControl(conn, client).catch((err: unknown) => this.#log.error({ err, host: conn.host.key }, 'ssh control channel failed'))
          }
        }),
      release: (o) => {
        if (released) return
        released = true
        if (conn.state === 'ready') conn.host.lastContact = Date.now()
        if (o?.retire) conn.retired = true
        this.#unslot(conn)
      },
    }
  }

  async #drainControl(conn: Conn, client: Client): Promise<void> {
    conn.controlBusy = true
    try {
      while (conn.control.length > 0 && conn.state === 'ready') {
        const batch = conn.control.splice(0)
        await runControl(client, batch.map((b) => b.command).join('\n'))
        for (const b of batch) b.done()
      }
    } finally {
      conn.controlBusy = false
      // The connection died with commands waiting: there is nothing to run them on.
      for (const b of conn.control.splice(0)) b.done()
    }
  }

  /** Resolves on the next change of capacity (a slot back, a connection up or gone). */
  #changed(signal: AbortSignal): Promise<void> {
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

  #wake(): void {
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const w of waiters) w()
  }

  /** One connect attempt: a ready client, or how it failed. */
  async #connect(target: SshTarget, signal: AbortSignal): Promise<Client | ConnectFailure> {
    const where = `${target.user}@${KnownHosts.hostName(target.host, target.port)}`
    let known: HostKeys
    let auth: AuthMethod[]
    try {
      known = await this.#known.lookup(target.host, target.port)
    } catch (err) {
      return { transient: false, error: new ApiaryError('internal', `cannot read known_hosts ${this.#o.knownHosts}: ${errorMessage(err)}`, undefined, { cause: err }) }
    }
    try {
      auth = await this.#auth(target)
    } catch (err) {
      return { transient: false, error: new ApiaryError('unauthorized', `auth: ${errorMessage(err)}`, undefined, { cause: err }) }
    }
    const policy = this.#o.hostKeyPolicy
    return new Promise((resolve) => {
      const client = new Client()
      let verdict: HostKeyVerdict | undefined
      let presented: Buffer | undefined
      let stage: 'connect' | 'handshake' | 'auth' = 'connect'
      let settled = false
      const settle = (r: Client | ConnectFailure) => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        if (!(r instanceof Client)) client.destroy()
        resolve(r)
      }
      const fail = (transient: boolean, error: ApiaryError) => settle({ transient, error })
      const onAbort = () => fail(false, new ApiaryError('closed', 'ssh pool is closed'))
      signal.addEventListener('abort', onAbort, { once: true })

      client.on('connect', () => {
        this.#opened++
        stage = 'handshake'
        // Commands are short request/reply exchanges: Nagle's algorithm against the server's
        // delayed ACK would add tens of milliseconds to each channel open.
        client.setNoDelay(true)
      })
      client.on('handshake', () => {
        stage = 'auth'
        if (verdict === 'unknown' && presented) {
          // accept-new, as OpenSSH: recorded once the server proved it holds the key.
          const key = presented
          this.#known.add(target.host, target.port, key).then(
            () => this.#log.info({ host: where }, 'recorded a new ssh host key'),
            (err: unknown) => this.#log.warn({ host: where, err: errorMessage(err) }, 'could not record the ssh host key'),
          )
        }
      })
      client.once('ready', () => settle(client))
      client.on('error', (err: Error & { level?: string; code?: string }) => {
        if (settled) return
        if (verdict === 'mismatch' || verdict === 'revoked') {
          this.#log.warn({ host: where, node: target.id, verdict }, 'ssh host key does not match known_hosts; nothing was run')
          return fail(false, new ApiaryError('unauthorized', 'host key mismatch', undefined, { cause: err }))
        }
        if (verdict === 'unknown' && policy === 'strict') return fail(false, new ApiaryError('unauthorized', 'host key unknown', undefined, { cause: err }))
        if (err.level === 'client-authentication') {
          return fail(false, new ApiaryError('unauthorized', `auth: ${where} refused ${describeAuth(auth)}`, undefined, { cause: err }))
        }
        if (err.level === 'agent') return fail(false, new ApiaryError('unauthorized', `auth: ssh agent: ${err.message}`, undefined, { cause: err }))
        if (err.level === 'client-timeout') {
          return fail(true, new ApiaryError('unreachable', `unreachable: ${stage === 'connect' ? 'no TCP connection' : `no SSH ${stage}`} within ${this.#o.connectTimeoutMs} ms`, undefined, { cause: err }))
        }
        if (err.level === 'client-socket' || err.level === 'client-dns' || err.level === 'protocol') {
          return fail(stage !== 'auth', new ApiaryError('unreachable', `unreachable: ${socketReason(err)}`, undefined, { cause: err }))
        }
        // Anything else went wrong inside the SSH protocol (no common algorithm, bad packet).
        fail(false, new ApiaryError('unreachable', `unreachable: ssh ${stage} failed: ${err.message}`, undefined, { cause: err }))
      })
      client.once('close', () => fail(stage !== 'auth', new ApiaryError('unreachable', `unreachable: connection closed during ssh ${stage}`)))

      try {
        client.connect({
          host: target.host,
          port: target.port,
          username: target.user,
          authHandler: auth,
          agentForward: false,
          tryKeyboard: false,
          readyTimeout: this.#o.connectTimeoutMs,
          keepaliveInterval: this.#o.keepaliveMs,
          keepaliveCountMax: this.#o.keepaliveCountMax,
          hostVerifier: (blob: Buffer) => {
            presented = blob
            verdict = known.check(blob)
            return verdict === 'known' || (verdict === 'unknown' && policy === 'accept-new')
          },
          ...hostKeyAlgorithms(known.types),
        })
      } catch (err) {
        fail(false, new ApiaryError('internal', `cannot connect to ${where}: ${errorMessage(err)}`, undefined, { cause: err }))
      }
    })
  }

  /** Public-key auth from a file (passphrase from a file), else the agent; never a password. */
  async #auth(target: SshTarget): Promise<AuthMethod[]> {
    const methods: AuthMethod[] = []
    const keyFile = target.keyFile ?? this.#opts.keyFile
    const passFile = target.keyFile !== undefined ? target.passphraseFile : (target.passphraseFile ?? this.#opts.passphraseFile)
    if (keyFile !== undefined) {
      methods.push({ type: 'publickey', username: target.user, key: await this.#key(keyFile, passFile) } as AuthMethod)
    }
    if (this.#opts.agent) methods.push({ type: 'agent', username: target.user, agent: this.#opts.agent } as AuthMethod)
    if (methods.length === 0) throw new Error('no key file and no ssh agent configured')
    return methods
  }

  /** Parses a key once per pool: decrypting one is slow (bcrypt) and blocks the event loop. */
  #key(file: string, passFile: string | undefined): Promise<ParsedKey> {
    const id = `${file}\0${passFile ?? ''}`
    let key = this.#keys.get(id)
    if (!key) {
      key = (async () => {
        const text = await readSecretFile(file, 'ssh key')
        const passphrase = passFile === undefined ? undefined : await readSecretFile(passFile, 'ssh key passphrase')
        const parsed = utils.parseKey(text, passphrase)
        const k = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed
        if (!k || k instanceof Error) throw new Error(`cannot use key ${file}: ${k ? k.message : 'no key in the file'}`)
        if (!k.isPrivateKey()) throw new Error(`${file} holds no private key`)
        return k
      })()
      this.#keys.set(id, key)
      // A broken file may be fixed: do not remember the failure.
      key.catch(() => this.#keys.delete(id))
    }
    return key
  }
}

/** Runs a command on a fresh channel and waits for it to close (bounded); never rejects. */
async function runControl(client: Client, command: string): Promise<void> {
  let ch: ClientChannel
  try {
    ch = await new Promise<ClientChannel>((resolve, reject) => {
      try {
        client.exec(command, (err, channel) => (err ? reject(err) : resolve(channel)))
      } catch (err) {
        reject(err)
      }
    })
  } catch {
    return
  }
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      ch.close()
      resolve()
    }, CONTROL_TIMEOUT_MS)
    ch.on('error', () => undefined)
    ch.resume()
    ch.stderr.resume()
    ch.once('close', () => {
      clearTimeout(t)
      resolve()
    })
    ch.end()
  })
}

function describeAuth(methods: AuthMethod[]): string {
  return methods.map((m) => (m.type === 'publickey' ? 'the key' : 'the agent’s keys')).join(' and ')
}

function socketReason(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'EHOSTUNREACH':
      return 'host unreachable'
    case 'ENETUNREACH':
      return 'network unreachable'
    case 'ECONNRESET':
      return 'connection reset'
    case 'ETIMEDOUT':
      return 'connect timed out'
    case 'ENOTFOUND':
      return 'unknown host'
  }
  return err.message.replace(/^connect /, '').toLowerCase()
}

/** Host key algorithms for a key type on record (an RSA key signs with three). */
const ALGORITHMS: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
}

/**
 * Asks for a host key of a type already on record first, as OpenSSH does: a server with
 * several host keys would otherwise present one we do not know and look new.
 */
function hostKeyAlgorithms(types: string[]): { algorithms?: Algorithms } {
  const algos = types.flatMap((t) => ALGORITHMS[t] ?? [])
  // ssh2 applies these in key order: remove, then put in front.
  return algos.length === 0 ? {} : { algorithms: { serverHostKey: { remove: algos, prepend: algos, append: [] } } }
}

