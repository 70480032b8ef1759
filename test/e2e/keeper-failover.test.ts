import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { JobEvent } from '@apiary/shared'
import { FakeQueen, finishedJob } from '../harness/fake-queen.ts'
import { freePort, runBin, type TempDir, tempDir } from '../harness/index.ts'

const TOKEN = 'test-token-0123456789abcdef'

/**
 * keeper given two queens (`--queen A,B`): the first streams part of a job and dies with its
 * sockets, the second serves the rest from keeper's Last-Event-ID; keeper prints every event
 * exactly once, in order. Writes a standby refuses go to the other queen; no queen at all is a
 * prompt exit 4 naming each. The queens are fakes of the HTTP API on real ports.
 */
describe('keeper across a queen failover', () => {
  let dir: TempDir
  let tokenFile = ''
  const open: FakeQueen[] = []
  beforeAll(async () => {
    dir = await tempDir('keeper-failover')
    tokenFile = join(dir.path, 'token')
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 })
  })
  afterEach(async () => {
    for (const q of open.splice(0)) await q.close()
  })
  afterAll(async () => {
    await dir?.remove()
  })

  async function twoQueens(jobId: string, nodes = 4) {
    const fixture = finishedJob(jobId, nodes)
    const a = await FakeQueen.start(TOKEN)
    const b = await FakeQueen.start(TOKEN)
    open.push(a, b)
    for (const q of [a, b]) {
      q.job = fixture.job
      q.push(...fixture.events)
    }
    return { a, b, ...fixture }
  }
  const keeper = (args: string[]) => runBin('keeper', ['--token-file', tokenFile, ...args], { XDG_STATE_HOME: dir.path, APIARY_STATE_DIR: '', APIARY_QUEEN_URL: '', APIARY_TOKEN_FILE: '' })
  const lines = (text: string) => text.split('\n').filter(Boolean)

  it('keeper watch -o ndjson prints every event once, in order, across the first queen dying mid-stream', async () => {
    const { a, b, events } = await twoQueens('jwatch000000001')
    a.dieAfter = 6
    const r = await keeper(['--queen', `${a.url},${b.url}`, 'watch', 'jwatch000000001', '-o', 'ndjson'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(lines(r.stdout).map((l) => (JSON.parse(l) as JobEvent).seq)).toEqual(events.map((e) => e.seq))
    expect(b.requests.filter((q) => q.path.endsWith('/stream')).map((q) => q.lastEventId)).toEqual(['6'])
  })

  it('keeper watch in text says on stderr which queen it reconnects to, and shows each node once', async () => {
    const { a, b } = await twoQueens('jwatch000000002')
    a.dieAfter = 5 // n2 has started: a stream without output resumes past its output chunk
    const r = await keeper(['--queen', `${a.url},${b.url}`, 'watch', 'jwatch000000002'])
    expect(r.code).toBe(0)
    expect(r.stderr).toContain(`keeper: reconnecting to ${b.url}… (lost ${a.url}: `)
    for (const n of ['n1', 'n2', 'n3', 'n4']) expect(lines(r.stdout).filter((l) => l.startsWith(`${n}: ok`))).toHaveLength(1)
    expect(r.stdout).toContain('all 4 identical')
  })

  it('keeper run sends its job to the queen that leads when the first is a standby, and follows it there', async () => {
    const { a, b, events } = await twoQueens('jwatch000000003')
    b.leader = true
    const r = await keeper(['--queen', `${a.url},${b.url}`, 'run', '-o', 'ndjson', '--', 'echo', 'hi'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(lines(r.stdout).map((l) => (JSON.parse(l) as JobEvent).seq)).toEqual(events.map((e) => e.seq))
    expect(a.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['POST /v1/jobs'])
    expect(b.created).toBe(1)
    expect(b.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['POST /v1/jobs', 'GET /v1/jobs/jwatch000000003/stream'])
  })

  it('exits 4 at once when no queen answers, naming each, and refuses a bad --queen naming the flag', async () => {
    const dead = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`]
    const r = await keeper(['--queen', dead.join(','), 'run', '--', 'true'])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/^keeper: cannot reach any queen: /)
    for (const u of dead) expect(r.stderr).toContain(`${u} (connect ECONNREFUSED`)
    const bad = await keeper(['--queen', 'http://127.0.0.1:7070,ftp://q2', 'jobs'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe('keeper: queen 2 of --queen: "ftp://q2" must start with http:// or https://\n')
    const secret = await keeper(['--queen', 'http://alice:hunter22@127.0.0.1:7070', 'jobs'])
    expect(secret.code).toBe(2)
    expect(secret.stderr).not.toContain('hunter22')
  })
})
