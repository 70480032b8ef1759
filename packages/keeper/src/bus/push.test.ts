import { describe, expect, it } from 'vitest'
import { connectHost, readUpdateReply, targetFor } from './push.ts'
import type { ServerSettings } from './server-config.ts'

const S = 'nats://127.0.0.1:4222'
const creds = new TextEncoder().encode('creds')
const plain: ServerSettings = { host: '127.0.0.1', port: 4222, path: '/b/nats-server.conf' }

describe('a claims update push', () => {
  it("reads nats-server 2.9's answers", () => {
    const server = { name: 'n', host: '0.0.0.0', id: 'NID' }
    expect(readUpdateReply(S, JSON.stringify({ server, data: { account: 'AX', code: 200, message: 'jwt updated' } }))).toEqual({ ok: true, server: S, message: 'jwt updated' })
    expect(readUpdateReply(S, JSON.stringify({ server, error: { account: 'AX', code: 500, description: 'jwt update resulted in error - signature verification failed' } }))).toEqual({
      ok: false,
      server: S,
      failed: 'update',
      reason: 'nats-server refused the account JWT: jwt update resulted in error - signature verification failed (code 500)',
    })
  })

  it('counts "skipped" as a failure: the server kept the JWT it preloaded, revocation and all missing', () => {
    const r = readUpdateReply(S, JSON.stringify({ server: {}, data: { account: 'AX', code: 200, message: 'jwt update skipped' } }))
    expect(r).toMatchObject({ ok: false, failed: 'update', reason: expect.stringMatching(/has not loaded the apiary account/) })
  })

  it('says what it got when the answer is not a status', () => {
    expect(readUpdateReply(S, 'nope')).toMatchObject({ ok: false, failed: 'update', reason: 'nats-server answered with something other than JSON: nope' })
    expect(readUpdateReply(S, '{"data":{"code":"x"}}')).toMatchObject({ ok: false, reason: expect.stringMatching(/unknown status/) })
    expect(readUpdateReply(S, '{}')).toMatchObject({ ok: false, reason: expect.stringMatching(/unknown status/) })
  })

  it('reaches a server on every interface through the loopback one', () => {
    expect(connectHost('0.0.0.0')).toBe('127.0.0.1')
    expect(connectHost('::')).toBe('[::1]')
    expect(connectHost('fd00::1')).toBe('[fd00::1]')
    expect(connectHost('nats.example.com')).toBe('nats.example.com')
  })

  it('goes where server.json says unless --server says otherwise, over TLS when it records TLS', () => {
    expect(targetFor(plain, {}, creds)).toEqual({ target: { server: S, creds } })
    expect(targetFor({ ...plain, host: '0.0.0.0', port: 4333 }, { server: 'nats://10.0.0.1:4222' }, creds)).toEqual({ target: { server: 'nats://10.0.0.1:4222', creds } })
    const tls = { ...plain, tls: { cert: '/s.pem', key: '/s.key' } }
    expect(targetFor(tls, {}, creds)).toEqual({ target: { server: S, creds, tls: {} } })
    expect(targetFor(tls, { ca: '/ca.pem' }, creds)).toEqual({ target: { server: S, creds, tls: { ca: '/ca.pem' } } })
    expect(targetFor(plain, { server: 'tls://nats.example.com:4222' }, creds)).toEqual({ target: { server: 'tls://nats.example.com:4222', creds, tls: {} } })
  })

  it('under mTLS presents the client certificate given, verifying the server with the recorded CA, and says what is missing without one', () => {
    const mtls = { ...plain, tls: { cert: '/s.pem', key: '/s.key', ca: '/ca.pem' } }
    expect(targetFor(mtls, { cert: '/c.pem', key: '/c.key' }, creds)).toEqual({ target: { server: S, creds, tls: { ca: '/ca.pem', cert: '/c.pem', key: '/c.key' } } })
    expect(targetFor(mtls, {}, creds)).toEqual({
      refused: { ok: false, server: S, failed: 'connect', reason: expect.stringMatching(/asks every client for a certificate of \/ca\.pem .*--tls-cert and --tls-key/) },
    })
  })
})
