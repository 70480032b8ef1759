import { describe, expect, it } from 'vitest'
import { type JsonPath, scanJson } from './json.ts'

const parses = (text: string) => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

describe('scanJson', () => {
  it.each([
    '{}',
    '[]',
    ' { "a" : [ 1 , -2.5e+3 , true , false , null , "x" ] } ',
    '"just a string"',
    '0',
    '{"esc": "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9", "a": {"b": {"c": []}}}',
    '{"": 1, "é": "ü"}',
    '{',
    '{"a": 1,}',
    '[1,]',
    '[1 2]',
    '{"a" 1}',
    "{'a': 1}",
    '{"a": 01}',
    '{"a": .5}',
    '{"a": +1}',
    '{"a": tru}',
    '{"a": "\\x"}',
    '{"a": "\\u12"}',
    '{"a": "line\nbreak"}',
    '{"a": "never closed',
    '{} {}',
    '',
    '   ',
    '[-]',
    '{"a": NaN}',
  ])('agrees with JSON.parse on %j', (text) => {
    expect(scanJson(text) === undefined).toBe(parses(text))
  })

  it('places a syntax error where it is', () => {
    expect(scanJson('{\n  "a": 1\n  "b": 2\n}')).toEqual({ offset: 13, message: 'expected "," or "}" but found "\\""', path: [] })
    expect(scanJson('[1, 2,]')).toMatchObject({ offset: 6, message: 'a comma before "]"' })
    expect(scanJson('{"a": [1, {"b": }]}')).toMatchObject({ offset: 16, message: 'expected a value but found "}"', path: ['a', 1, 'b'] })
    expect(scanJson('{"a": "x\ny"}')).toMatchObject({ offset: 8, message: expect.stringContaining('control character') })
    expect(scanJson('{"a": "\\q"}')).toMatchObject({ offset: 7, message: 'an invalid escape in a string' })
    expect(scanJson('{"a": "open')).toMatchObject({ offset: 6, message: 'a string that is never closed' })
    expect(scanJson('{"a": 1} x')).toMatchObject({ offset: 9, message: 'unexpected "x" after the end of the document' })
  })

  it('reports a key repeated in one object, at the repeat, but not the same key in different objects', () => {
    expect(scanJson('{"a": 1, "b": {"a": 2}, "a": 3}')).toEqual({ offset: 24, message: 'the key "a" appears twice in one object', path: ['a'] })
    expect(scanJson('{"a": {"x": 1}, "b": {"x": 1}}')).toBeUndefined()
    expect(scanJson('{"\\u0061": 1, "a": 2}')).toMatchObject({ message: 'the key "a" appears twice in one object' })
  })

  it('refuses absurd nesting instead of overflowing the stack', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000)
    expect(scanJson(deep)).toMatchObject({ message: 'nested more than 64 levels deep' })
  })

  it('shows every member with its path and offset, and stops when asked', () => {
    const text = '{"a": [10, {"b": 2}], "c": 3}'
    const seen: Array<[JsonPath, number]> = []
    scanJson(text, (path, offset) => {
      seen.push([[...path], offset])
      return false
    })
    expect(seen).toEqual([
      [['a'], 1],
      [['a', 0], 7],
      [['a', 1], 11],
      [['a', 1, 'b'], 12],
      [['c'], 22],
    ])
    let visits = 0
    expect(scanJson(text, () => ++visits === 2)).toBeUndefined()
    expect(visits).toBe(2)
  })

  it('scans a large document quickly', () => {
    const text = JSON.stringify({ nodes: Array.from({ length: 20_000 }, (_, i) => ({ id: `n${i}`, address: `10.0.${i >> 8}.${i & 255}`, labels: { role: 'web' } })) })
    const started = performance.now()
    expect(scanJson(text)).toBeUndefined()
    expect(performance.now() - started).toBeLessThan(500)
  })
})
