import type { EventOf } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'
import { describe, expect, it } from 'vitest'
import { summaryLines } from './summary.ts'

describe('summaryLines', () => {
  it("escapes the narration, a group's cause and its sample output, and keeps its own colours", async () => {
    const output: Record<string, string> = { 'web-1': 'fine\n', 'web-2': '\x1b]0;pwned\x07line one\r\nline two\n' }
    const client = {
      logsPage: (_jobId: string, q: { node?: string }) => Promise.resolve({ chunks: [{ node: q.node!, stream: 'stdout', data: output[q.node!] ?? '', seq: 1 }], next: null }),
    } as unknown as JobClient
    const fin: EventOf<'job.finished'> = {
      jobId: 'j0000000000',
      seq: 9,
      ts: 0,
      kind: 'job.finished',
      human: 'job j0000000000 failed in 1 s\x1b[2J',
      state: 'failed',
      counts: { ok: 1, failed: 1 },
      groups: [
        { state: 'ok', exitCode: 0, digest: 'a', cause: null, count: 1, nodes: ['web-1'] },
        { state: 'failed', exitCode: 1, digest: 'b', cause: 'bad\nweb-2: ok \u202e', count: 1, nodes: ['web-2'] },
      ],
      durationMs: 1000,
      stopReason: null,
    }
    const lines = await summaryLines(client, fin, true)
    expect(lines).toEqual([
      '',
      'job j0000000000 failed in 1 s\\x1b[2J',
      '1 identical, 1 differ',
      '── 1 node \x1b[32mok\x1b[0m: web-1',
      '   fine',
      '── 1 node \x1b[31mfailed\x1b[0m, exit 1, bad\\x0aweb-2: ok \\u202e: web-2',
      '   \\x1b]0;pwned\\x07line one\\x0d',
      '   line two',
    ])
  })
})
