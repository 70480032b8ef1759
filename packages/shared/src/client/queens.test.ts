import { describe, expect, it } from 'vitest'
import { isApiaryError } from '../errors.ts'
import { MAX_QUEENS, parseQueenUrls } from './queens.ts'

function refusal(text: string | string[]): Error {
  try {
    parseQueenUrls(text, '--queen')
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
    expect(parseQueenUrls(' http://q1:7070/ , https://q2.example:8443/apiary/,')).toEqual(['http://q1:7070', 'https://q2.example:8443/apiary'])
    expect(parseQueenUrls(['http://q2:7070', 'http://q1:7070'])).toEqual(['http://q2:7070', 'http://q1:7070'])
  })

  it(`takes at most ${MAX_QUEENS}`, () => {
    const urls = Array.from({ length: MAX_QUEENS + 1 }, (_, i) => `http://q${i}:7070`)
    expect(parseQueenUrls(urls.slice(0, MAX_QUEENS))).toHaveLength(MAX_QUEENS)
    expect(refusal(urls.join(',')).message).toBe(`--queen: ${MAX_QUEENS + 1} queens given, at most ${MAX_QUEENS}`)
  })

  it('refuses what is not an http(s) base URL, naming the flag and which queen', () => {
    expect(refusal('').message).toBe('--queen: no queen URL given')
    expect(refusal(' , ').message).toBe('--queen: no queen URL given')
    expect(refusal('q1:7070').message).toBe('--queen: "q1:7070" must start with http:// or https://')
    expect(refusal('http://q1:7070,nats://q2:4222').message).toBe('queen 2 of --queen: "nats://q2:4222" must start with http:// or https://')
    expect(refusal('http://').message).toBe('--queen: "http://" is not a URL (http://host:port)')
    expect(refusal('http://q1:7070/?x=1').message).toMatch(/^--queen: ".*" must be http\(s\):\/\/host:port\[\/path\], without a query or fragment$/)
    expect(refusal('http://q1:7070#top').message).toMatch(/without a query or fragment/)
    expect(refusal('http://q1:7070,http://q1:7070/').message).toBe('--queen: http://q1:7070 is given twice')
  })

  it('refuses a credential in a URL without repeating it', () => {
    for (const u of ['http://alice:s3cret@q1:7070', 'http://s3cret@q1:7070', 'http://q0:7070,https://x:s3cret@q1']) {
      const err = refusal(u)
      expect(err.message).toMatch(/holds a credential in its URL .*--token-file/)
      expect(err.message).not.toContain('s3cret')
    }
  })
})
