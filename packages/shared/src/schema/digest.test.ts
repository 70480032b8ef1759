import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { outputDigest } from './digest.ts'

const sha = (s: string) => createHash('sha256').update(s).digest()

describe('outputDigest', () => {
  it('is 16 hex digits, equal for equal output', () => {
    expect(outputDigest(sha('a\n'), sha(''))).toMatch(/^[0-9a-f]{16}$/)
    expect(outputDigest(sha('a\n'), sha(''))).toBe(outputDigest(sha('a\n'), sha('')))
  })
  it('tells the same text on stdout from it on stderr, and a split between them', () => {
    expect(outputDigest(sha('a'), sha(''))).not.toBe(outputDigest(sha(''), sha('a')))
    expect(outputDigest(sha('ab'), sha(''))).not.toBe(outputDigest(sha('a'), sha('b')))
  })
})
