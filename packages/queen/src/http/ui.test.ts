import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '@apiary/shared/runtime'
import { SESSION_COOKIE, SessionStore } from './session.ts'
import { createUi } from './ui.ts'

const ORIGIN = 'http://127.0.0.1:7070'
const TOKEN = 'the-right-token-0123456789'

describe('the console under /ui', () => {
  let dist: string
  let sessions: SessionStore
  let app: Hono
  beforeAll(async () => {
    dist = await mkdtemp(join(tmpdir(), 'apiary-ui-'))
    await mkdir(join(dist, 'assets'))
    await writeFile(join(dist, 'index.html'), '<!doctype html><script type="module" src="/ui/assets/main-ABCD1234.js"></script>')
    await writeFile(join(dist, 'assets', 'main-ABCD1234.js'), 'console.log(1)')
    await writeFile(join(dist, 'assets', 'main-ABCD1234.css'), 'body{}')
    sessions = new SessionStore()
    app = new Hono().route('/ui', createUi({ sessions, verify: (t) => t === TOKEN, log: silentLogger(), distDir: dist }))
  })
  afterAll(() => rm(dist, { recursive: true, force: true }))

  const req = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) => app.request(`${ORIGIN}${path}`, init)
  const signIn = (body: string, headers: Record<string, string> = { origin: ORIGIN }) =>
    req('/ui/session', { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } })

  const expectLockedDown = (res: Response) => {
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
  }

  it('serves the page no-cache and hashed assets immutable, each with a strict CSP', async () => {
    expect((await req('/ui/')).status).toBe(200)
    const page = await req('/ui')
    expect(page.status).toBe(200)
    expect(page.headers.get('cache-control')).toBe('no-cache')
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(await page.text()).toContain('main-ABCD1234.js')
    expectLockedDown(page)
    const js = await req('/ui/assets/main-ABCD1234.js')
    expect(js.status).toBe(200)
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expectLockedDown(js)
    expect((await req('/ui/assets/main-ABCD1234.css')).headers.get('content-type')).toBe('text/css; charset=utf-8')
  })

  it('answers 404 for an asset it does not have, a path outside its assets, or a type it does not serve', async () => {
    for (const p of ['/ui/assets/nope-ABCD1234.js', '/ui/assets/..%2Findex.html', '/ui/assets/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/assets/index.html', '/ui/elsewhere']) {
      const res = await req(p)
      expect(res.status, p).toBe(404)
      expectLockedDown(res)
    }
  })

  it('answers a clear 503 page when the console was not built', async () => {
    const bare = new Hono().route('/ui', createUi({ sessions, verify: () => true, log: silentLogger(), distDir: join(dist, 'missing') }))
    const res = await bare.request(`${ORIGIN}/ui`)
    expect(res.status).toBe(503)
    expect(await res.text()).toContain('pnpm build')
    expectLockedDown(res)
  })

  it('signs in with a valid token: an HttpOnly, SameSite=Strict cookie holding a session id, not the token', async () => {
    const res = await signIn(JSON.stringify({ token: TOKEN }))
    expect(res.status).toBe(200)
    const cookie = res.headers.get('set-cookie') ?? ''
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43};`))
    expect(cookie).toContain('HttpOnly')
    expect(cookie).toContain('SameSite=Strict')
    expect(cookie).toContain('Path=/')
    expect(cookie).not.toContain('Secure') // plain HTTP: a Secure cookie would never come back
    expect(cookie).not.toContain(TOKEN)
    const id = /=([^;]+);/.exec(cookie)![1]!
    expect(sessions.token(id)).toBe(TOKEN)
    expect((await req('/ui/session', { headers: { cookie: `${SESSION_COOKIE}=${id}` } })).status).toBe(200)
  })

  it('marks the cookie Secure over HTTPS', async () => {
    const res = await app.request('https://queen.example/ui/session', { method: 'POST', body: JSON.stringify({ token: TOKEN }), headers: { origin: 'https://queen.example', 'content-type': 'application/json' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('set-cookie')).toContain('Secure')
  })

  it('refuses a wrong token with 401 naming the field, and sets no cookie', async () => {
    const before = sessions.size
    const res = await signIn(JSON.stringify({ token: 'wrong' }))
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: 'the token is not valid', field: 'token' } })
    expect(res.headers.get('set-cookie')).toBeNull()
    expect(sessions.size).toBe(before)
  })

  it('refuses a sign-in from another origin or without an Origin (403)', async () => {
    for (const headers of [{ origin: 'http://evil.example' }, {}] as Array<Record<string, string>>) {
      const res = await signIn(JSON.stringify({ token: TOKEN }), headers)
      expect(res.status).toBe(403)
      expect(((await res.json()) as { error: { code: string; field: string } }).error).toMatchObject({ code: 'forbidden', field: 'Origin' })
      expect(res.headers.get('set-cookie')).toBeNull()
    }
  })

  it('refuses bad sign-in bodies, naming the field', async () => {
    const field = async (res: Response) => ({ status: res.status, field: ((await res.json()) as { error: { field?: string } }).error.field })
    expect(await field(await signIn('not json'))).toEqual({ status: 400, field: 'body' })
    expect(await field(await signIn(JSON.stringify({})))).toEqual({ status: 400, field: 'token' })
    expect((await signIn(JSON.stringify({ token: TOKEN, extra: 1 }))).status).toBe(400)
    expect(await field(await signIn(JSON.stringify({ token: 'x'.repeat(9000) })))).toEqual({ status: 400, field: 'body' })
  })

  it('behind a proxy that terminates TLS, takes requests from the public origin only, and marks the cookie Secure', async () => {
    const behind = new Hono().route('/ui', createUi({ sessions: new SessionStore({ origin: 'https://apiary.example' }), verify: (t) => t === TOKEN, log: silentLogger(), distDir: dist }))
    const post = (origin: string) =>
      behind.request('http://10.0.0.5:7070/ui/session', { method: 'POST', body: JSON.stringify({ token: TOKEN }), headers: { 'content-type': 'application/json', origin } })
    expect((await post('http://10.0.0.5:7070')).status).toBe(403)
    const ok = await post('https://apiary.example')
    expect(ok.status).toBe(200)
    expect(ok.headers.get('set-cookie')).toMatch(/Secure/)
  })

  it('signs out: the session ends on the queen and the cookie is cleared', async () => {
    const id = sessions.create(TOKEN)
    const cookie = `${SESSION_COOKIE}=${id}`
    expect((await req('/ui/session', { method: 'DELETE', headers: { cookie, origin: 'http://evil.example' } })).status).toBe(403)
    expect(sessions.token(id)).toBe(TOKEN)
    const res = await req('/ui/session', { method: 'DELETE', headers: { cookie, origin: ORIGIN } })
    expect(res.status).toBe(200)
    expect(res.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=;.*Max-Age=0`))
    expect(sessions.token(id)).toBeUndefined()
    expect((await req('/ui/session', { headers: { cookie } })).status).toBe(401)
  })
})
