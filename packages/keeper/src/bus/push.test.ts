import { describe, expect, it } from 'vitest'
import { connectHost, readClusterReplies, readUpdateReply, targetFor } from './push.ts'
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
    expect(targetFor([plain], {}, creds)).toEqual({ target: { server: S, creds, cluster: [] } })
    expect(targetFor([{ ...plain, host: '0.0.0.0', port: 4333 }], { server: 'nats://10.0.0.1:4222' }, creds)).toEqual({ target: { server: 'nats://10.0.0.1:4222', creds, cluster: [] } })
    const tls = { ...plain, tls: { cert: '/s.pem', key: '/s.key' } }
    expect(targetFor([tls], {}, creds)).toEqual({ target: { server: S, creds, tls: {}, cluster: [] } })
    expect(targetFor([tls], { ca: '/ca.pem' }, creds)).toEqual({ target: { server: S, creds, tls: { ca: '/ca.pem' }, cluster: [] } })
    expect(targetFor([plain], { server: 'tls://nats.example.com:4222' }, creds)).toEqual({ target: { server: 'tls://nats.example.com:4222', creds, tls: {}, cluster: [] } })
  })

  it('under mTLS presents the client certificate given, verifying the server with the recorded CA, and says what is missing without one', () => {
    const mtls = { ...plain, tls: { cert: '/s.pem', key: '/s.key', ca: '/ca.pem' } }
    expect(targetFor([mtls], { cert: '/c.pem', key: '/c.key' }, creds)).toEqual({ target: { server: S, creds, tls: { ca: '/ca.pem', cert: '/c.pem', key: '/c.key' }, cluster: [] } })
    expect(targetFor([mtls], {}, creds)).toEqual({
      refused: { ok: false, server: S, failed: 'connect', reason: expect.stringMatching(/asks every client for a certificate of \/ca\.pem .*--tls-cert and --tls-key/) },
    })
  })

  it("waits for every server of a cluster, taking the TLS settings of the one --server names", () => {
    const route = { host: '127.0.0.1', port: 6222 }
    const member = (name: string, port: number) => ({ ...plain, name, port, path: `/b/${name}.conf`, cluster: { name: 'c', listen: { ...route, port: port + 2000 }, routes: [route] } })
    const servers = [member('n1', 4222), { ...member('n2', 4223), tls: { cert: '/s.pem', key: '/s.key' } }, member('n3', 4224)]
    expect(targetFor(servers, {}, creds)).toEqual({ target: { server: S, creds, cluster: ['n1', 'n2', 'n3'] } })
    expect(targetFor(servers, { server: 'nats://127.0.0.1:4223' }, creds)).toEqual({ target: { server: 'nats://127.0.0.1:4223', creds, tls: {}, cluster: ['n1', 'n2', 'n3'] } })
  })

  it("counts a cluster's push only when every server took the JWT, naming those that did not", () => {
    const answer = (name: string, message: string) => JSON.stringify({ server: { name }, data: { code: 200, message } })
    const cluster = ['n1', 'n2', 'n3']
    expect(readClusterReplies(S, cluster, [answer('n2', 'jwt updated'), answer('n1', 'jwt updated'), answer('n3', 'jwt updated')])).toEqual({ ok: true, server: S, message: 'jwt updated on n1, n2, n3' })
    const partial = readClusterReplies(S, cluster, [answer('n1', 'jwt updated'), answer('n3', 'jwt update skipped'), answer('elsewhere', 'jwt updated')])
    expect(partial).toMatchObject({ ok: false, failed: 'update' })
    expect(partial.ok ? '' : partial.reason).toMatch(/^not every server of the cluster took it: n2 did not answer \(a server that is down reads its config when it starts\); n3: nats-server has not loaded the apiary account/)
  })
})
