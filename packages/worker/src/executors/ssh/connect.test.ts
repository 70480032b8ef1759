import { ApiaryError } from '@apiary/shared'
import ssh2, { type AuthMethod } from 'ssh2'
import { describe, expect, it } from 'vitest'
import { HostBreaker } from './breaker.ts'
import {
  type Client,
  classifyConnectError,
  type ConnectFailure,
  Connector,
  type ErrorContext,
  hostKeyAlgorithms,
  type Reachability,
  type SshError,
  type SshTarget,
} from './connect.ts'
import { KeyRing } from './keys.ts'
import { resolvePoolOptions } from './pool-options.ts'

const KEY_AND_AGENT = [
  { type: 'publickey', username: 'deploy' },
  { type: 'agent', username: 'deploy' },
] as AuthMethod[]

const sshError = (message: string, level?: string, code?: string): SshError => Object.assign(new Error(message), { level, code })

const classify = (err: SshError, c: Partial<ErrorContext> = {}) => {
  const r = classifyConnectError(err, { verdict: 'known', policy: 'strict', stage: 'connect', auth: KEY_AND_AGENT, where: 'deploy@10.0.0.5', connectTimeoutMs: 10_000, ...c })
  expect(r.error.cause).toBe(err)
  return { transient: r.transient, code: r.error.code, message: r.error.message }
}

describe('classifyConnectError', () => {
  it('names a refused host key before anything else ssh2 says about it', () => {
    const denied = sshError('Host denied (verification failed)', 'handshake')
    expect(classify(denied, { verdict: 'mismatch', stage: 'handshake' })).toEqual({ transient: false, code: 'unauthorized', message: 'host key mismatch' })
    expect(classify(denied, { verdict: 'revoked', stage: 'handshake' })).toMatchObject({ message: 'host key mismatch' })
    expect(classify(denied, { verdict: 'unknown', stage: 'handshake' })).toEqual({ transient: false, code: 'unauthorized', message: 'host key unknown' })
    // Under accept-new an unknown key was let through: a later failure is what it says.
    expect(classify(sshError('All configured authentication methods failed', 'client-authentication'), { verdict: 'unknown', policy: 'accept-new', stage: 'auth' })).toEqual({
      transient: false,
      code: 'unauthorized',
      message: 'auth: deploy@10.0.0.5 refused the key and the agent’s keys',
    })
  })

  it('retries only what failed before the handshake finished', () => {
    expect(classify(sshError('Timed out while waiting for handshake', 'client-timeout'))).toEqual({ transient: true, code: 'unreachable', message: 'unreachable: no TCP connection within 10000 ms' })
    expect(classify(sshError('Timed out while waiting for handshake', 'client-timeout'), { stage: 'handshake' })).toMatchObject({ transient: true, message: 'unreachable: no SSH handshake within 10000 ms' })
    expect(classify(sshError('connect ECONNREFUSED 10.0.0.5:22', 'client-socket', 'ECONNREFUSED'))).toEqual({ transient: true, code: 'unreachable', message: 'unreachable: connection refused' })
    expect(classify(sshError('getaddrinfo ENOTFOUND web-9', 'client-dns', 'ENOTFOUND'))).toMatchObject({ transient: true, message: 'unreachable: unknown host' })
    // The host got as far as auth: it answers, so the breaker must not count it as down.
    expect(classify(sshError('read ECONNRESET', 'client-socket', 'ECONNRESET'), { stage: 'auth' })).toMatchObject({ transient: false, message: 'unreachable: connection reset' })
    expect(classify(sshError('connect EPIPE 10.0.0.5:22', 'client-socket', 'EPIPE'))).toMatchObject({ message: 'unreachable: epipe 10.0.0.5:22' })
    expect(classify(sshError('Handshake failed: no matching cipher', 'handshake'), { stage: 'handshake' })).toEqual({
      transient: false,
      code: 'unreachable',
      message: 'unreachable: ssh handshake failed: Handshake failed: no matching cipher',
    })
    expect(classify(sshError('Failed to connect to agent', 'agent'), { stage: 'auth' })).toEqual({ transient: false, code: 'unauthorized', message: 'auth: ssh agent: Failed to connect to agent' })
  })
})

describe('hostKeyAlgorithms', () => {
  it('puts the algorithms of the key types on record first; none on record changes nothing', () => {
    expect(hostKeyAlgorithms([])).toEqual({})
    expect(hostKeyAlgorithms(['no-such-type'])).toEqual({})
    const algos = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']
    expect(hostKeyAlgorithms(['ssh-rsa', 'ssh-ed25519'])).toEqual({ algorithms: { serverHostKey: { remove: algos, prepend: algos, append: [] } } })
  })
})

describe('Connector.establish', () => {
  const target: SshTarget = { id: 'web-1', host: '10.0.0.5', port: 22, user: 'deploy' }
  const unreachable: ConnectFailure = { transient: true, error: new ApiaryError('unreachable', 'unreachable: connection refused') }
  const refused: ConnectFailure = { transient: false, error: new ApiaryError('unauthorized', 'auth: refused') }

  /** A connector whose attempts end as scripted, without a network. */
  const scripted = (results: Array<'ok' | ConnectFailure>, o: { attempts?: number; failures?: number } = {}) => {
    const config = resolvePoolOptions({ knownHosts: '/nonexistent', attempts: o.attempts ?? 3, backoff: { baseMs: 0, maxMs: 0 }, breaker: { failures: o.failures ?? 5, cooldownMs: 0 } })
    let calls = 0
    class Scripted extends Connector {
      override connect(): Promise<Client | ConnectFailure> {
        const r = results[calls++] ?? unreachable
        return Promise.resolve(r === 'ok' ? new ssh2.Client() : r)
      }
    }
    const reach: Reachability = { key: 'deploy@10.0.0.5:22', breaker: new HostBreaker(config.breaker), lastContact: null }
    return { connector: new Scripted(config, new KeyRing(config)), reach, calls: () => calls }
  }

  it('retries a failure before the handshake up to the attempts, and the answer counts as contact', async () => {
    const s = scripted([unreachable, unreachable, 'ok'])
    await expect(s.connector.establish(s.reach, target, false, new AbortController().signal)).resolves.toBeInstanceOf(ssh2.Client)
    expect(s.calls()).toBe(3)
    expect(s.reach.breaker.consecutiveFailures).toBe(0)
    expect(s.reach.lastContact).not.toBeNull()
  })

  it('gives up after the attempts with the last cause', async () => {
    const s = scripted([], { attempts: 2 })
    await expect(s.connector.establish(s.reach, target, false, new AbortController().signal)).rejects.toBe(unreachable.error)
    expect(s.calls()).toBe(2)
    expect(s.reach.breaker.consecutiveFailures).toBe(2)
    expect(s.reach.lastContact).toBeNull()
  })

  it('does not retry a refusal, and the host counts as reachable', async () => {
    const s = scripted([unreachable, refused])
    await expect(s.connector.establish(s.reach, target, false, new AbortController().signal)).rejects.toBe(refused.error)
    expect(s.calls()).toBe(2)
    expect(s.reach.breaker.consecutiveFailures).toBe(0)
    expect(s.reach.lastContact).not.toBeNull()
  })

  it('stops retrying once the breaker opens, and a failed trial gets no second attempt', async () => {
    const s = scripted([], { attempts: 5, failures: 2 })
    await expect(s.connector.establish(s.reach, target, false, new AbortController().signal)).rejects.toBe(unreachable.error)
    expect(s.calls()).toBe(2)
    // Cool-down 0: half-open at once; the trial is the caller's to claim.
    expect(s.reach.breaker.permit()).toBe(true)
    await expect(s.connector.establish(s.reach, target, true, new AbortController().signal)).rejects.toBe(unreachable.error)
    expect(s.calls()).toBe(3)
  })

  it('hands back an abandoned trial so another may go', async () => {
    const s = scripted([], { failures: 1 })
    await expect(s.connector.establish(s.reach, target, false, new AbortController().signal)).rejects.toBe(unreachable.error)
    expect(s.reach.breaker.permit()).toBe(true)
    expect(s.reach.breaker.permit()).toBe(false)
    const ac = new AbortController()
    ac.abort()
    await expect(s.connector.establish(s.reach, target, true, ac.signal)).rejects.toBe(unreachable.error)
    expect(s.reach.breaker.permit()).toBe(true)
  })
})
