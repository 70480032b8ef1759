import { ApiaryError, errorMessage } from '@apiary/shared'
import ssh2, { type Algorithms, type AuthMethod, type ServerHostKeyAlgorithm } from 'ssh2'
import { backoffMs, delay } from './backoff.ts'
import type { HostBreaker } from './breaker.ts'
import type { KeyRing } from './keys.ts'
import { type HostKeys, type HostKeyVerdict, KnownHosts } from './known-hosts.ts'
import type { HostKeyPolicy, PoolConfig } from './pool-options.ts'

const { Client } = ssh2
export type Client = InstanceType<typeof Client>

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

/** How one connect attempt failed. */
export interface ConnectFailure {
  error: ApiaryError
  /** Failed before the SSH handshake (worth a retry, and counted by the breaker). */
  transient: boolean
}

/** What the pool knows of one host's reachability, across all its connections. */
export interface Reachability {
  /** `user@host:port`. */
  readonly key: string
  readonly breaker: HostBreaker
  /** When the host last answered (a handshake, a finished command); null if never. */
  lastContact: number | null
}

/** How far an attempt got; an error's meaning depends on it. */
export type ConnectStage = 'connect' | 'handshake' | 'auth'

/** ssh2's errors carry where they arose in `level`, and a socket errno in `code`. */
export type SshError = Error & { level?: string; code?: string }

/**
 * Opens ssh2 connections: host keys checked against known_hosts (recording new ones under
 * `accept-new`), auth from the key ring, failures turned into the pool's causes.
 */
export class Connector {
  readonly #known: KnownHosts
  #opened = 0

  constructor(
    private readonly config: PoolConfig,
    private readonly keys: KeyRing,
  ) {
    this.#known = new KnownHosts(config.knownHosts)
  }

  /** TCP connections ever opened. */
  get opened(): number {
    return this.#opened
  }

  /**
   * Connects with retries for transient failures, under the host's breaker; rejects with the
   * last attempt's error. `trial`: the breaker's half-open trial, which gets one attempt and
   * decides alone.
   */
  async establish(reach: Reachability, target: SshTarget, trial: boolean, signal: AbortSignal): Promise<Client> {
    const { breaker } = reach
    const log = this.config.log
    for (let attempt = 1; ; attempt++) {
      const r = await this.connect(target, signal)
      if (r instanceof Client) {
        if (trial) log.info({ host: reach.key, node: target.id }, 'ssh breaker closed: the host answers again')
        breaker.success()
        reach.lastContact = Date.now()
        return r
      }
      if (signal.aborted) {
        if (trial) breaker.abandon()
        throw r.error
      }
      if (!r.transient) {
        // The host answered and refused (auth, host key): reachable, and not worth a retry.
        breaker.success()
        reach.lastContact = Date.now()
        throw r.error
      }
      if (breaker.failure(trial)) log.warn({ host: reach.key, node: target.id, failures: breaker.consecutiveFailures }, 'ssh breaker opened')
      if (trial || breaker.state !== 'closed' || attempt >= this.config.attempts) throw r.error
      log.debug({ host: reach.key, attempt, err: r.error.message }, 'ssh connect failed; retrying')
      await delay(backoffMs(attempt - 1, this.config.backoff), signal)
    }
  }

  /** One connect attempt: a ready client, or how it failed. */
  async connect(target: SshTarget, signal: AbortSignal): Promise<Client | ConnectFailure> {
    const { config } = this
    const where = `${target.user}@${KnownHosts.hostName(target.host, target.port)}`
    let known: HostKeys
    let auth: AuthMethod[]
    try {
      known = await this.#known.lookup(target.host, target.port)
    } catch (err) {
      return { transient: false, error: new ApiaryError('internal', `cannot read known_hosts ${config.knownHosts}: ${errorMessage(err)}`, undefined, { cause: err }) }
    }
    try {
      auth = await this.keys.auth(target)
    } catch (err) {
      return { transient: false, error: new ApiaryError('unauthorized', `auth: ${errorMessage(err)}`, undefined, { cause: err }) }
    }
    const policy = config.hostKeyPolicy
    return new Promise((resolve) => {
      const client = new Client()
      let verdict: HostKeyVerdict | undefined
      let presented: Buffer | undefined
      let stage: ConnectStage = 'connect'
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
            () => config.log.info({ host: where }, 'recorded a new ssh host key'),
            (err: unknown) => config.log.warn({ host: where, err: errorMessage(err) }, 'could not record the ssh host key'),
          )
        }
      })
      client.once('ready', () => settle(client))
      client.on('error', (err: SshError) => {
        if (settled) return
        if (verdict === 'mismatch' || verdict === 'revoked') {
          config.log.warn({ host: where, node: target.id, verdict }, 'ssh host key does not match known_hosts; nothing was run')
        }
        settle(classifyConnectError(err, { verdict, policy, stage, auth, where, connectTimeoutMs: config.connectTimeoutMs }))
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
          readyTimeout: config.connectTimeoutMs,
          // Dead connections are found by ssh2's keepalives: it ends the client, and the pool
          // drops the connection on 'end'/'close' so the next acquire opens a fresh one.
          keepaliveInterval: config.keepaliveMs,
          keepaliveCountMax: config.keepaliveCountMax,
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
}

/** What a connect attempt knew when ssh2 reported an error. */
export interface ErrorContext {
  /** How the presented host key compared with known_hosts; undefined before one was presented. */
  verdict: HostKeyVerdict | undefined
  policy: HostKeyPolicy
  stage: ConnectStage
  /** The auth methods offered, to say which were refused. */
  auth: AuthMethod[]
  /** `user@host` as known_hosts names it, for messages. */
  where: string
  connectTimeoutMs: number
}

/**
 * The pool's cause for an ssh2 error. The host key verdict comes first: ssh2 reports a key we
 * refused only as a handshake error ("Host denied"), which would read as an unreachable host
 * and hide a possible impostor.
 */
export function classifyConnectError(err: SshError, c: ErrorContext): ConnectFailure {
  const fail = (transient: boolean, code: 'unauthorized' | 'unreachable', message: string): ConnectFailure => ({
    transient,
    error: new ApiaryError(code, message, undefined, { cause: err }),
  })
  if (c.verdict === 'mismatch' || c.verdict === 'revoked') return fail(false, 'unauthorized', 'host key mismatch')
  if (c.verdict === 'unknown' && c.policy === 'strict') return fail(false, 'unauthorized', 'host key unknown')
  if (err.level === 'client-authentication') return fail(false, 'unauthorized', `auth: ${c.where} refused ${describeAuth(c.auth)}`)
  if (err.level === 'agent') return fail(false, 'unauthorized', `auth: ssh agent: ${err.message}`)
  if (err.level === 'client-timeout') {
    return fail(true, 'unreachable', `unreachable: ${c.stage === 'connect' ? 'no TCP connection' : `no SSH ${c.stage}`} within ${c.connectTimeoutMs} ms`)
  }
  if (err.level === 'client-socket' || err.level === 'client-dns' || err.level === 'protocol') {
    return fail(c.stage !== 'auth', 'unreachable', `unreachable: ${socketReason(err)}`)
  }
  // Anything else went wrong inside the SSH protocol (no common algorithm, bad packet).
  return fail(false, 'unreachable', `unreachable: ssh ${c.stage} failed: ${err.message}`)
}

export function describeAuth(methods: AuthMethod[]): string {
  return methods.map((m) => (m.type === 'publickey' ? 'the key' : 'the agent’s keys')).join(' and ')
}

export function socketReason(err: Error & { code?: string }): string {
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
export function hostKeyAlgorithms(types: string[]): { algorithms?: Algorithms } {
  const algos = types.flatMap((t) => ALGORITHMS[t] ?? [])
  // ssh2 applies these in key order: remove, then put in front.
  return algos.length === 0 ? {} : { algorithms: { serverHostKey: { remove: algos, prepend: algos, append: [] } } }
}
