import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger } from './log.ts'

describe('createLogger', () => {
  it('blanks an operation’s env and stdin wherever an operation is logged', () => {
    const lines: string[] = []
    const destination = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) })
    const log = createLogger({ component: 'test', destination })
    const operation = { type: 'exec', argv: ['x'], env: { TOKEN: 's3cr3t-log-1' }, stdin: 'stdin-log-2' }
    log.info({ operation }, 'a')
    log.info({ task: { operation } }, 'b')
    log.info({ offer: { share: { operation } } }, 'c')
    log.info({ env: operation.env, stdin: operation.stdin }, 'd')
    log.child({ jobId: 'j1' }).warn({ request: { operation } }, 'e')
    expect(lines).toHaveLength(5)
    for (const l of lines) {
      expect(l).not.toContain('s3cr3t-log-1')
      expect(l).not.toContain('stdin-log-2')
    }
    expect(JSON.parse(lines[0]!)).toMatchObject({ operation: { argv: ['x'], env: '[redacted]', stdin: '[redacted]' } })
  })
})
