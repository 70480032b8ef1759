import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { silentLogger } from './log.ts'
import { createMetrics } from './metrics.ts'
import { checkOpsEndpoint, isLoopback, type OpsServer, probeReady, startOpsServer } from './ops-server.ts'

/** One raw request: what a scraper, a probe or a stranger sends. */
function send(url: string, o: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${o.path}`, { method: o.method ?? 'GET', headers: o.headers ?? {} }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

describe('startOpsServer', () => {
  let server: OpsServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  it('/healthz and /readyz say nothing but ok or not; /metrics asks for the token when it has one', async () => {
    const metrics = createMetrics('test', ['nodesFinished', 'draining'])
    metrics.m.nodesFinished.inc({ state: 'ok' }, 3)
    let why: string | null = null
    server = await startOpsServer({ host: '127.0.0.1', port: 0, token: 'scrape-me', metrics, notReady: () => why, log: silentLogger() })
    expect(await send(server.url, { path: '/healthz' })).toMatchObject({ status: 200, body: 'ok\n' })
    expect(await send(server.url, { path: '/readyz' })).toMatchObject({ status: 200, body: 'ready\n' })
    expect(await probeReady({ host: '127.0.0.1', port: server.port })).toBe(true)
    why = 'draining'
    expect(await send(server.url, { path: '/readyz' })).toMatchObject({ status: 503, body: 'not ready\n' })
    expect(await probeReady({ host: '0.0.0.0', port: server.port })).toBe(false)

    const refused = await send(server.url, { path: '/metrics' })
    expect(refused).toMatchObject({ status: 401, headers: { 'www-authenticate': 'Bearer realm="metrics"' } })
    expect(refused.body).not.toContain('apiary_')
    expect((await send(server.url, { path: '/metrics', headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    const ok = await send(server.url, { path: '/metrics', headers: { authorization: 'Bearer scrape-me' } })
    expect(ok.status).toBe(200)
    expect(ok.body).toContain('apiary_nodes_finished_total{state="ok"} 3')
    expect(ok.body).toMatch(/apiary_build_info\{role="test",version="[^"]+"\} 1/)
  })

  it('takes only a GET without a body, with a short URL, on a known path', async () => {
    server = await startOpsServer({ host: '127.0.0.1', port: 0, metrics: createMetrics('test', []), notReady: () => null, log: silentLogger() })
    expect(await send(server.url, { method: 'POST', path: '/metrics', body: 'x' })).toMatchObject({ status: 405, headers: { allow: 'GET, HEAD' } })
    expect((await send(server.url, { path: '/metrics', headers: { 'content-length': '3' }, body: 'abc' })).status).toBe(413)
    expect((await send(server.url, { path: `/metrics?${'a'.repeat(2000)}` })).status).toBe(414)
    expect((await send(server.url, { path: '/nothing' })).status).toBe(404)
    // No token: open, which only a loopback address may be.
    expect((await send(server.url, { path: '/metrics' })).status).toBe(200)
  })
})

describe('checkOpsEndpoint', () => {
  it('refuses an address others reach without a token file, naming the flag', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) expect(isLoopback(h), h).toBe(true)
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.org']) expect(isLoopback(h), h).toBe(false)
    expect(() => checkOpsEndpoint('0.0.0.0', undefined)).toThrow(expect.objectContaining({ code: 'invalid_input', field: '--metrics-token-file' }))
    expect(() => checkOpsEndpoint('0.0.0.0', '/run/secrets/metrics.token')).not.toThrow()
    expect(() => checkOpsEndpoint('127.0.0.1', undefined)).not.toThrow()
  })
})
