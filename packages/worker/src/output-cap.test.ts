import { describe, expect, it } from 'vitest'
import { type OutputChunk, OutputCap } from './output-cap.ts'

const collect = (capBytes: number, opts: { chunkBytes?: number } = {}) => {
  const chunks: OutputChunk[] = []
  const cap = new OutputCap({ capBytes, emit: (c) => chunks.push(c), flushMs: 10_000, ...opts })
  return { cap, chunks }
}

describe('OutputCap', () => {
  it('keeps exactly the cap, counts every byte and marks the cut', () => {
    const { cap, chunks } = collect(10)
    cap.push('stdout', Buffer.from('123456\n'))
    cap.push('stdout', Buffer.from('789abcdef\n'))
    cap.push('stderr', Buffer.from('more\n'))
    const total = cap.finish()
    expect(total).toMatchObject({ bytes: 22, kept: 10, truncated: true })
    expect(chunks.map((c) => c.data).join('')).toBe('123456\n789')
  })

  it('does not mark output that fits', () => {
    const { cap } = collect(10)
    cap.push('stdout', Buffer.from('1234567890'))
    expect(cap.finish()).toMatchObject({ bytes: 10, kept: 10, truncated: false })
  })

  it('emits whole lines and holds a partial line until its newline or the end', () => {
    const { cap, chunks } = collect(1024)
    cap.push('stdout', Buffer.from('one\ntw'))
    expect(chunks).toEqual([{ stream: 'stdout', data: 'one\n' }])
    cap.push('stdout', Buffer.from('o\nthr'))
    expect(chunks.at(-1)).toEqual({ stream: 'stdout', data: 'two\n' })
    cap.finish()
    expect(chunks.at(-1)).toEqual({ stream: 'stdout', data: 'thr' })
  })

  it('never emits a chunk larger than chunkBytes, even for one long line', () => {
    const { cap, chunks } = collect(1 << 20, { chunkBytes: 100 })
    cap.push('stdout', Buffer.alloc(350, 'x'))
    cap.finish()
    expect(chunks.map((c) => c.data.length)).toEqual([100, 100, 100, 50])
  })

  it('decodes a UTF-8 character split across reads', () => {
    const { cap, chunks } = collect(1024)
    const bytes = Buffer.from('é\n')
    cap.push('stdout', bytes.subarray(0, 1))
    cap.push('stdout', bytes.subarray(1))
    cap.finish()
    expect(chunks.map((c) => c.data).join('')).toBe('é\n')
  })

  it('gives the same digest whatever the interleaving of stdout and stderr', () => {
    const a = collect(1024)
    a.cap.push('stdout', Buffer.from('out\n'))
    a.cap.push('stderr', Buffer.from('err\n'))
    const b = collect(1024)
    b.cap.push('stderr', Buffer.from('err\n'))
    b.cap.push('stdout', Buffer.from('out\n'))
    const c = collect(1024)
    c.cap.push('stdout', Buffer.from('err\n'))
    c.cap.push('stderr', Buffer.from('out\n'))
    const da = a.cap.finish().digest
    expect(b.cap.finish().digest).toBe(da)
    expect(c.cap.finish().digest).not.toBe(da)
  })
})
