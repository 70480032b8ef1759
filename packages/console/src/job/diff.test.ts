import { describe, expect, it } from 'vitest'
import { lineDiff, MAX_DIFF_LINES } from './diff.ts'

const render = (d: ReturnType<typeof lineDiff>) => d.map((l) => `${l.op}${l.text}`)

describe('lineDiff', () => {
  it('keeps common lines and marks what the outlier lacks and adds', () => {
    expect(render(lineDiff('nginx 1.24\nok\nuptime 3d\n', 'nginx 1.22\nok\nuptime 3d\nwarning: old\n'))).toEqual(['-nginx 1.24', '+nginx 1.22', ' ok', ' uptime 3d', '+warning: old'])
  })

  it('says nothing differs for equal outputs, and handles empty ones', () => {
    expect(render(lineDiff('a\nb', 'a\nb\n'))).toEqual([' a', ' b'])
    expect(render(lineDiff('', 'x\n'))).toEqual(['+x'])
    expect(render(lineDiff('x\n', ''))).toEqual(['-x'])
    expect(lineDiff('', '')).toEqual([])
  })

  it('compares at most MAX_DIFF_LINES lines a side, and the rest as one block', () => {
    const many = (tag: string) => Array.from({ length: MAX_DIFF_LINES + 50 }, (_, k) => `${tag}${k}`).join('\n')
    const d = lineDiff(many('a'), many('a').replace('a3\n', 'b3\n'))
    expect(d.filter((l) => l.op === '-').map((l) => l.text)).toEqual(['a3', ...Array.from({ length: 50 }, (_, k) => `a${MAX_DIFF_LINES + k}`)])
    expect(d.filter((l) => l.op === '+')).toHaveLength(51)
    expect(d.filter((l) => l.op === ' ')).toHaveLength(MAX_DIFF_LINES - 1)
  })
})
