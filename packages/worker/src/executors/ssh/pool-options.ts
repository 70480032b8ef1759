import { ApiaryError, type Logger } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import type { BackoffOptions } from './backoff.ts'
import type { BreakerOptions } from './breaker.ts'

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

/** `SshPoolOptions` with every default filled in; frozen, shared by the pool's parts. */
export interface PoolConfig {
  readonly knownHosts: string
  readonly hostKeyPolicy: HostKeyPolicy
  readonly keyFile: string | undefined
  readonly passphraseFile: string | undefined
  readonly agent: string | undefined
  readonly maxPerHost: number
  readonly maxTotal: number
  readonly channelsPerConnection: number
  readonly idleMs: number
  readonly keepaliveMs: number
  readonly keepaliveCountMax: number
  readonly connectTimeoutMs: number
  readonly attempts: number
  readonly backoff: Readonly<BackoffOptions>
  readonly breaker: Readonly<BreakerOptions>
  readonly log: Logger
}

/** Node's timers fire at once (with a warning) for anything longer. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Fills in the defaults and checks what would otherwise fail late or quietly: a cap below one
 * makes every acquire wait forever, and a NaN or overlong duration fires its timer at once.
 * Throws `invalid_input` naming the field.
 *
 * @example resolvePoolOptions({ knownHosts: '/etc/apiary/known_hosts' }).maxPerHost // 2
 */
export function resolvePoolOptions(opts: SshPoolOptions): PoolConfig {
  const hostKeyPolicy = opts.hostKeyPolicy ?? 'strict'
  if (hostKeyPolicy !== 'strict' && hostKeyPolicy !== 'accept-new') {
    throw new ApiaryError('invalid_input', `hostKeyPolicy: expected "strict" or "accept-new", got ${JSON.stringify(hostKeyPolicy)}`, 'hostKeyPolicy')
  }
  return Object.freeze({
    knownHosts: opts.knownHosts,
    hostKeyPolicy,
    keyFile: opts.keyFile,
    passphraseFile: opts.passphraseFile,
    agent: opts.agent,
    maxPerHost: count('maxPerHost', opts.maxPerHost ?? 2, 1),
    maxTotal: count('maxTotal', opts.maxTotal ?? 1024, 1),
    channelsPerConnection: count('channelsPerConnection', opts.channelsPerConnection ?? 8, 1),
    idleMs: duration('idleMs', opts.idleMs ?? 60_000),
    keepaliveMs: duration('keepaliveMs', opts.keepaliveMs ?? 15_000),
    keepaliveCountMax: count('keepaliveCountMax', opts.keepaliveCountMax ?? 3, 0),
    connectTimeoutMs: duration('connectTimeoutMs', opts.connectTimeoutMs ?? 10_000),
    attempts: count('attempts', opts.attempts ?? 3, 1),
    backoff: Object.freeze({
      baseMs: duration('backoff.baseMs', opts.backoff?.baseMs ?? 250),
      maxMs: duration('backoff.maxMs', opts.backoff?.maxMs ?? 5000),
    }),
    breaker: Object.freeze({
      failures: count('breaker.failures', opts.breaker?.failures ?? 5, 1),
      cooldownMs: duration('breaker.cooldownMs', opts.breaker?.cooldownMs ?? 30_000),
    }),
    log: opts.log ?? silentLogger(),
  })
}

function count(field: string, n: number, min: number): number {
  if (!Number.isSafeInteger(n) || n < min) throw new ApiaryError('invalid_input', `${field}: expected a whole number of at least ${min}, got ${n}`, field)
  return n
}

function duration(field: string, ms: number): number {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIMER_MS) {
    throw new ApiaryError('invalid_input', `${field}: expected milliseconds from 0 to ${MAX_TIMER_MS}, got ${ms}`, field)
  }
  return ms
}
