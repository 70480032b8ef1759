import { describe, expect, it } from 'vitest'
import { isApiaryError } from '../errors.ts'
import { isLoopbackHost, MAX_QUEENS, parseQueenUrls } from './queens.ts'

function refusal(text: string | string[], opts: { insecure?: boolean } = {}): Error {
  try {
    parseQueenUrls(text, '--queen', opts)
  } catch (err) {
    if (!isApiaryError(err, 'invalid_input')) throw err
    expect(err.field).toBe('--queen')
    return err
  }
  throw new Error(`${String(text)} was accepted`)
}

describe('parseQueenUrls', () => {
  it('takes one queen or several, comma-separated, in order, without trailing slashes', () => {
    expect(parseQueenUrls('http://127.0.0.1:7070')).toEqual(['http://127.0.0.1:7070'])
    expect(parseQueenUrls(' https://q1:7070/ , https://q2.example:8443/apiary/,')).toEqual(['https://q1:7070', 'https://q2.example:8443/apiary'])
    expect(parseQueenUrls(['http://localhost:7072', 'http://127.0.0.2:7071'])).toEqual(['http://localhost:7072', 'http://127.0.0.2:7071'])
  })

  it(`takes at most ${MAX_QUEENS}`, () => {
    const urls = Array.from({ length: MAX_QUEENS + 1 }, (_, i) => `https://q${i}:7070`)
    expect(parseQueenUrls(urls.slice(0, MAX_QUEENS))).toHaveLength(MAX_QUEENS)
    expect(refusal(urls.join(',')).message).toBe(`--queen: ${MAX_QUEENS + 1} queens given, at most ${MAX_QUEENS}`)
  })

  it('refuses what is not an http(s) base URL, naming the flag and which queen', () => {
    expect(refusal('').message).toBe('--queen: no queen URL given')
    expect(refusal(' , ').message).toBe('--queen: no queen URL given')
    expect(refusal('q1:7070').message).toBe('--queen: "q1:7070" must start with http:// or https://')
    expect(refusal('https://q1:7070,nats://q2:4222').message).toBe('queen 2 of --queen: "nats://q2:4222" must start with http:// or https://')
    expect(refusal('http://').message).toBe('--queen: "http://" is not a URL (http://host:port)')
    expect(refusal('http://q1:7070/?x=1').message).toMatch(/^--queen: ".*" must be http\(s\):\/\/host:port\[\/path\], without a query or fragment$/)
    expect(refusal('http://q1:7070#top').message).toMatch(/without a query or fragment/)
    expect(refusal('https://q1:7070,https://q1:7070/').message).toBe('--queen: https://q1:7070 is given twice')
  })

  it('refuses a credential in a URL without repeating it', () => {
    for (const u of ['http://alice:s3cret@q1:7070', 'http://s3cret@q1:7070', 'https://q0:7070,https://x:s3cret@q1']) {
      const err = refusal(u)
      expect(err.message).toMatch(/holds a credential in its URL .*--token-file/)
      expect(err.message).not.toContain('s3cret')
    }
  })

  it('refuses plain http:// to a host that is not this machine unless told --insecure, saying why and what to do', () => {
    // Names and addresses only: nothing here is connected to.
    for (const u of ['http://queen.example:7070', 'http://10.0.0.5:7070', 'http://[2001:db8::1]:7070', 'http://128.0.0.1:7070', 'http://localhost.example:7070']) {
      const err = refusal(u)
      expect(err.message).toBe(
        `--queen: ${new URL(u).origin} is plain HTTP to another machine, so the API token would travel in clear text: serve the queen over HTTPS (apiary-queen --tls-cert and --tls-key) and use https:// (with --ca FILE for a private CA), or pass --insecure on a network you trust`,
      )
      expect(parseQueenUrls(u, '--queen', { insecure: true })).toEqual([u])
    }
    // Each of several is checked, and named.
    expect(refusal('https://q1:7070,http://q2:7070').message).toMatch(/^queen 2 of --queen: http:\/\/q2:7070 is plain HTTP to another machine/)
    expect(parseQueenUrls('https://q1:7070,http://127.0.0.1:7070,http://[::1]:7070')).toEqual(['https://q1:7070', 'http://127.0.0.1:7070', 'http://[::1]:7070'])
  })

  it('counts 127.0.0.0/8, ::1 and localhost as this machine, nothing else', () => {
    for (const h of ['127.0.0.1', '127.255.3.4', '[::1]', '::1', 'localhost', 'LOCALHOST']) expect(isLoopbackHost(h), h).toBe(true)
    for (const h of ['128.0.0.1', '10.0.0.1', '0.0.0.0', '[::]', '127.example', 'localhost.example', 'evil-localhost', '::ffff:10.0.0.1']) expect(isLoopbackHost(h), h).toBe(false)
  })
})
