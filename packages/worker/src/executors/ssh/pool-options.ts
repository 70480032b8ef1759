import { type Logger, silentLogger } from '@apiary/shared'
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

/**
 * Fills in the defaults, once: the pool's parts read this object and never the caller's.
 *
 * @example resolvePoolOptions({ knownHosts: '/etc/apiary/known_hosts' }).maxPerHost // 2
 */
export function resolvePoolOptions(opts: SshPoolOptions): PoolConfig {
  return Object.freeze({
    knownHosts: opts.knownHosts,
    hostKeyPolicy: opts.hostKeyPolicy ?? 'strict',
    keyFile: opts.keyFile,
    passphraseFile: opts.passphraseFile,
    agent: opts.agent,
    maxPerHost: opts.maxPerHost ?? 2,
    maxTotal: opts.maxTotal ?? 1024,
    channelsPerConnection: opts.channelsPerConnection ?? 8,
    idleMs: opts.idleMs ?? 60_000,
    keepaliveMs: opts.keepaliveMs ?? 15_000,
    keepaliveCountMax: opts.keepaliveCountMax ?? 3,
    connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
    attempts: opts.attempts ?? 3,
    backoff: Object.freeze({
      baseMs: opts.backoff?.baseMs ?? 250,
      maxMs: opts.backoff?.maxMs ?? 5000,
    }),
    breaker: Object.freeze({
      failures: opts.breaker?.failures ?? 5,
      cooldownMs: opts.breaker?.cooldownMs ?? 30_000,
    }),
    log: opts.log ?? silentLogger(),
  })
}

