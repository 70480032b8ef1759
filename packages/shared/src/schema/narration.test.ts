import { describe, expect, it } from 'vitest'
import { MAX_HUMAN, MAX_OUTPUT_DATA, MAX_OUTPUT_HUMAN, WireEvent } from './event.ts'
import { MAX_CAUSE } from './job.ts'
import { clip, finishedLine, notRunEvent, prefixLines } from './narration.ts'

const longNode = `n${'x'.repeat(252)}`

describe('clip', () => {
  it('keeps what fits, and marks a cut', () => {
    expect(clip('abc', 3)).toBe('abc')
    expect(clip('abcdef', 4)).toBe('abc…')
  })

  it('never ends on half a surrogate pair', () => {
    expect(clip('ab😀cd', 4)).toBe('ab…')
    expect(clip('ab😀cd', 5)).toBe('ab😀…')
  })
})

describe('prefixLines', () => {
  it('puts the node before every line', () => {
    expect(prefixLines('web-1', 'a\nb\n')).toBe('web-1 | a\nweb-1 | b')
    expect(prefixLines('web-1', 'a\n\nb')).toBe('web-1 | a\nweb-1 | \nweb-1 | b')
    expect(prefixLines('web-1', '')).toBe('web-1 | ')
  })

  it('stays within what the queen takes, even for a full chunk of empty lines from a node with the longest id', () => {
    const data = '\n'.repeat(32 * 1024)
    const human = prefixLines(longNode, data)
    expect(human.length).toBeLessThanOrEqual(MAX_OUTPUT_HUMAN)
    expect(human.endsWith('…')).toBe(true)
    const ev = { jobId: 'jabc123def', ts: 0, kind: 'node.output', node: longNode, stream: 'stdout', data, human }
    expect(WireEvent.safeParse(ev).success).toBe(true)
    expect(prefixLines('web-1', 'x'.repeat(MAX_OUTPUT_DATA))).toHaveLength(MAX_OUTPUT_DATA + 'web-1 | '.length)
  })
})

describe('finishedLine and notRunEvent', () => {
  it('cut a long cause, so the event is one the queen takes', () => {
    const cause = `program not found: ${'p'.repeat(64 * 1024)}`
    const line = finishedLine(longNode, { state: 'error', exitCode: null, signal: null, cause, truncated: true, bytes: 9e9 }, 12, 1024)
    expect(line.length).toBeLessThanOrEqual(MAX_HUMAN)
    expect(line).toContain('program not found: ppp')
    const ev = notRunEvent('jabc123def', longNode, 'error', cause, 0)
    expect(ev.cause).toHaveLength(MAX_CAUSE)
    expect(WireEvent.safeParse(ev).success).toBe(true)
  })
})
