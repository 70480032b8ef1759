import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ExecOperation } from '@apiary/shared'
import type { OutputChunk } from '../output-cap.ts'
import { alive, waitUntil } from '../../../../test/harness/wait.ts'
import { runLocal } from './local.ts'

/** The local executor with real child processes. */
describe('runLocal', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-local-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** Runs `op`; `abortOn` aborts with its reason once the output contains its text. */
  const run = async (op: Partial<ExecOperation>, abortOn?: { text: string; reason: string }) => {
    const chunks: OutputChunk[] = []
    let started = 0
    const ac = new AbortController()
    const r = await runLocal(
      { op: { type: 'exec', shell: false, ...op } as ExecOperation, capBytes: 1 << 20, signal: ac.signal, killGraceMs: 300, drainMs: 300 },
      {
        onStart: () => started++,
        onOutput: (c) => {
          chunks.push(c)
          if (abortOn && c.data.includes(abortOn.text)) ac.abort(abortOn.reason)
        },
      },
    )
    const out = (s: 'stdout' | 'stderr') => chunks.filter((c) => c.stream === s).map((c) => c.data).join('')
    return { r, started, stdout: out('stdout'), stderr: out('stderr') }
  }

  it('runs argv without a shell: metacharacters stay literal', async () => {
    const { r, stdout, started } = await run({ argv: ['echo', '$HOME; echo pwned', '|', 'x'] })
    expect(started).toBe(1)
    expect(r).toMatchObject({ state: 'ok', exitCode: 0 })
    expect(stdout).toBe('$HOME; echo pwned | x\n')
  })

  it('runs a shell string with shell: true', async () => {
    const { r, stdout } = await run({ shell: true, command: 'echo a | tr a b; exit 3' })
    expect(r).toMatchObject({ state: 'failed', exitCode: 3 })
    expect(stdout).toBe('b\n')
  })

  it('passes stdin, env and cwd', async () => {
    const { stdout } = await run({ shell: true, command: 'cat; echo "$GREETING"; pwd', stdin: 'in\n', env: { GREETING: 'hi' }, cwd: dir })
    expect(stdout).toBe(`in\nhi\n${dir}\n`)
  })

  it('passes a command only the usual variables of the worker’s environment: no settings, no secrets', async () => {
    const planted = { APIARY_NATS_CREDS: '/etc/apiary/node.creds', NATS_TOKEN: 's3cret', AWS_SECRET_ACCESS_KEY: 'k3y', SSH_AUTH_SOCK: '/tmp/agent.sock', LC_ALL: 'C' }
    Object.assign(process.env, planted)
    try {
      const { stdout } = await run({ shell: true, command: 'env', env: { GREETING: 'hi' } })
      const names = stdout.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('=')))
      for (const k of ['APIARY_NATS_CREDS', 'NATS_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'SSH_AUTH_SOCK']) expect(names).not.toContain(k)
      expect(names).toEqual(expect.arrayContaining(['PATH', 'LC_ALL', 'GREETING']))
      expect(stdout).not.toMatch(/s3cret|k3y/)
    } finally {
      for (const k of Object.keys(planted)) delete process.env[k]
    }
  })

  it('names a working directory that does not exist', async () => {
    const { r } = await run({ argv: ['true'], cwd: '/nonexistent/dir' })
    expect(r).toMatchObject({ state: 'error', cause: 'cannot change to directory /nonexistent/dir' })
  })

  it('reports a missing program as an error, not a failure', async () => {
    const { r, started } = await run({ argv: ['/nonexistent/program'] })
    expect(started).toBe(0)
    expect(r).toMatchObject({ state: 'error', cause: 'program not found: /nonexistent/program' })
  })

  it('stops the whole process group on abort, grandchildren included', async () => {
    const pidFile = join(dir, 'grandchild.pid')
    // The pid file is written before "up", and "up" triggers the abort.
    const { r } = await run({ shell: true, command: `sh -c 'trap "" TERM; sleep 30' & echo $! > ${pidFile}; echo up; wait` }, { text: 'up', reason: 'timeout' })
    expect(r.state).toBe('timeout')
    const pid = Number((await readFile(pidFile, 'utf8')).trim())
    // It ignored SIGTERM, so only the SIGKILL to the group can have ended it; the executor
    // resolves after that SIGKILL, and the kernel reaps the orphan shortly after.
    await waitUntil(() => !alive(pid), `grandchild ${pid} to be gone`)
  })

  it('names a cancel by its reason', async () => {
    const { r } = await run({ shell: true, command: 'echo running; sleep 30' }, { text: 'running', reason: 'cancelled by request' })
    expect(r).toMatchObject({ state: 'cancelled', cause: 'cancelled by request' })
  })
})
