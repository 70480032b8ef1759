import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { SESSION_COOKIE, sessionCredential, SessionStore } from './session.ts'

describe('SessionStore', () => {
  it('answers the token a session stands for, under a random id that is not the token', () => {
    const s = new SessionStore()
    const id = s.create('tok-1')
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(id).not.toContain('tok-1')
    expect(s.token(id)).toBe('tok-1')
    expect(s.token('nope')).toBeUndefined()
    expect(s.create('tok-1')).not.toBe(id)
  })

  it('ends a session idle for longer than 12 h; a use keeps it alive', () => {
    let now = 0
    const s = new SessionStore({ now: () => now })
    const a = s.create('a')
    const b = s.create('b')
    now = 11 * 3600_000
    expect(s.token(a)).toBe('a')
    now = 12 * 3600_000 + 1
    expect(s.token(b)).toBeUndefined()
    expect(s.token(a)).toBe('a')
    expect(s.size).toBe(1)
  })

  it('holds at most maxSessions: the least recently used one ends first', () => {
    const s = new SessionStore({ maxSessions: 3 })
    const [a, b, c] = [s.create('a'), s.create('b'), s.create('c')]
    expect(s.token(a)).toBe('a') // a is now the most recent; b the least
    s.create('d')
    expect(s.size).toBe(3)
    expect(s.token(b)).toBeUndefined()
    expect(s.token(a)).toBe('a')
    expect(s.token(c)).toBe('c')
  })

  it('signs out one session, or every session of a token', () => {
    const s = new SessionStore()
    const [a1, a2, b] = [s.create('a'), s.create('a'), s.create('b')]
    s.delete(a1)
    expect(s.token(a1)).toBeUndefined()
    s.deleteToken('a')
    expect(s.token(a2)).toBeUndefined()
    expect(s.token(b)).toBe('b')
  })
})

describe('sessionCredential', () => {
  const sessions = new SessionStore()
  const id = sessions.create('the-token')
  const app = new Hono().all('/x', (c) => c.json(sessionCredential(c, sessions)))
  const ask = async (method: string, headers: Record<string, string>) => (await app.request('http://queen.test/x', { method, headers })).json()

  it('turns the cookie into its token; no cookie is none, a stale one expired', async () => {
    expect(await ask('GET', { cookie: `${SESSION_COOKIE}=${id}` })).toEqual({ kind: 'token', token: 'the-token' })
    expect(await ask('GET', {})).toEqual({ kind: 'none' })
    expect(await ask('GET', { cookie: `${SESSION_COOKIE}=stale` })).toEqual({ kind: 'expired' })
  })

  it("refuses a state-changing request whose Origin is not the queen's own, or has none", async () => {
    const cookie = `${SESSION_COOKIE}=${id}`
    expect(await ask('POST', { cookie, origin: 'http://queen.test' })).toEqual({ kind: 'token', token: 'the-token' })
    expect(await ask('POST', { cookie, origin: 'http://evil.test' })).toEqual({ kind: 'cross-origin', origin: 'http://evil.test' })
    expect(await ask('DELETE', { cookie })).toEqual({ kind: 'cross-origin' })
    expect(await ask('POST', { cookie, origin: 'https://queen.test' })).toMatchObject({ kind: 'cross-origin' })
  })
})
