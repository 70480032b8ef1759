import { chmod, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, type Proc, runBin, startBin, type TempDir, tempDir } from '../harness/index.ts'

/** keeper's promises at the CLI boundary: clear messages, the documented exit codes. */
describe('keeper CLI', () => {
  let dir: TempDir
  let dev: Proc
  let queen = ''
  let tokenFile = ''
  const env = () => ({ XDG_STATE_HOME: dir.path, APIARY_STATE_DIR: '', APIARY_QUEEN_URL: queen, APIARY_TOKEN_FILE: '' })

  beforeAll(async () => {
    dir = await tempDir('cli')
    const port = await freePort()
    queen = `http://127.0.0.1:${port}`
    tokenFile = join(dir.path, 'apiary', 'token')
    dev = startBin('keeper', ['dev', '--port', String(port), '--workers', '1'], { XDG_STATE_HOME: dir.path, APIARY_STATE_DIR: '' })
    await dev.waitFor(/apiary embedded cluster/)
  })
  afterAll(async () => {
    await dev?.stop()
    await dir?.remove()
  })

  const keeper = (args: string[], extra: NodeJS.ProcessEnv = {}) => runBin('keeper', args, { ...env(), ...extra })

  it('answers --help for the program and for each command', async () => {
    const top = await keeper(['--help'])
    expect(top.code).toBe(0)
    for (const cmd of ['run', 'facts', 'jobs', 'job', 'logs', 'nodes', 'cancel', 'dev']) expect(top.stdout).toContain(`  ${cmd}`)
    expect(top.stdout).toMatch(/exit codes/)
    const run = await keeper(['run', '--help'])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain('--targets SEL')
    expect(run.stdout).toContain('--timeout DUR')
    // The help of a command under dev starts no cluster: it answers with an empty state dir.
    const empty = await tempDir('dev-help')
    try {
      const devRun = await keeper(['dev', 'run', '--help'], { APIARY_STATE_DIR: empty.path })
      expect(devRun.code).toBe(0)
      expect(devRun.stdout).toContain('keeper run:')
      expect(await readdir(empty.path)).toEqual([])
    } finally {
      await empty.remove()
    }
  })

  it.each([
    [['run', '--bogus', '--', 'true'], /unknown flag --bogus/],
    [['run', '--timeout', 'soon', '--', 'true'], /--timeout: "soon" is not a duration/],
    [['run', '--timeout', '8d', '--', 'true'], /--timeout: "8d" must be from 1ms to 7d/],
    [['run', '--concurrency', '0', '--', 'true'], /--concurrency: "0" must be at least 1/],
    [['run', '--max-errors', '200%', '--', 'true'], /--max-errors: "200%" must be a count or a percentage/],
    [['run', '-o', 'yaml', '--', 'true'], /--output: "yaml" must be one of text, json, ndjson/],
    [['facts', '--aggregate', 'shoe-size'], /--aggregate: "shoe-size" is not a fact/],
    [['rerun', 'jdoesnotexist0000', '--only', 'meh'], /--only: "meh" is not a final state/],
    [['run', '--targets', 'role=', '--', 'true'], /targets: term "role="/],
    [['run'], /no command given/],
    [['explode'], /unknown command "explode"/],
    [['job'], /takes one job id/],
    [['jobs', '--state', 'weird'], /--state: "weird" must be one of/],
    [['job', 'jdoesnotexist0000'], /job jdoesnotexist0000 does not exist/],
    [['run', '--targets', 'nothing-here', '--', 'true'], /matches no node/],
  ])('keeper %j exits 2 with a message that names the problem', async (args, message) => {
    const r = await keeper(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).toBe('')
  })

  it('exits 2 for a wrong token, and never prints the token', async () => {
    const bad = join(dir.path, 'bad-token')
    await writeFile(bad, 'not-the-token-0123456789\n', { mode: 0o600 })
    const r = await keeper(['jobs', '--token-file', bad])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/token is not valid/)
    expect(r.stderr).not.toContain('not-the-token')
  })

  it('refuses a token file others can read', async () => {
    const loose = join(dir.path, 'loose-token')
    await writeFile(loose, 'whatever\n')
    await chmod(loose, 0o644)
    const r = await keeper(['jobs', '--token-file', loose])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/readable by others.*chmod 600/)
  })

  it('exits 4 when the queen cannot be reached', async () => {
    const port = await freePort()
    const r = await keeper(['nodes', '--queen', `http://127.0.0.1:${port}`, '--token-file', tokenFile])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/cannot reach the queen at http:\/\/127\.0\.0\.1:\d+/)
  })

  it('lists nodes and jobs, shows a job, prints its logs', async () => {
    const run = await keeper(['run', '--', 'echo', 'from-cli'])
    expect(run.code).toBe(0)
    const jobId = /job (j[0-9a-z]+)/.exec(run.stdout)![1]!
    const nodes = await keeper(['nodes'])
    expect(nodes.stdout).toMatch(/local-1\s+default\s+online/)
    const jobs = await keeper(['jobs', '--state', 'ok'])
    expect(jobs.stdout).toContain(jobId)
    const job = await keeper(['job', jobId])
    expect(job.stdout).toMatch(/local-1\s+default\s+ok\s+0/)
    const logs = await keeper(['logs', jobId])
    expect(logs.stdout).toBe('local-1 | from-cli\n')
    const raw = await keeper(['logs', jobId, '--node', 'local-1'])
    expect(raw.stdout).toBe('from-cli\n')
    const cancel = await keeper(['cancel', jobId])
    expect(cancel.stdout).toContain('already ended: ok')
  })

  it('follows a running job with logs -f until it finishes', async () => {
    const { startBin: start } = await import('../harness/index.ts')
    const run = start('keeper', ['--queen', queen, '--token-file', tokenFile, 'run', '--shell', '--', 'echo first; sleep 1; echo second'], env())
    const line = await run.waitFor(/job j[0-9a-z]+:/)
    const jobId = /job (j[0-9a-z]+)/.exec(line)![1]!
    const follow = await keeper(['logs', jobId, '-f'])
    expect(follow.code).toBe(0)
    expect(follow.stdout).toBe('local-1 | first\nlocal-1 | second\n')
    expect((await run.exited).code).toBe(0)
  })

  it('on a terminal draws one progress line instead of a line per node, and honours NO_COLOR', async () => {
    const { spawnSync } = await import('node:child_process')
    const { ROOT } = await import('../harness/index.ts')
    const cmd = `${process.execPath} ${ROOT}packages/keeper/bin/keeper.mjs --queen ${queen} --token-file ${tokenFile} run -- true`
    // script(1) gives keeper a pseudo-terminal as stdout.
    const tty = (extra: NodeJS.ProcessEnv) => spawnSync('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env(), ...extra }, encoding: 'utf8', timeout: 30_000 })
    const colored = tty({ NO_COLOR: '' })
    expect(colored.status).toBe(0)
    expect(colored.stdout).toContain('\r\x1b[2K')
    expect(colored.stdout).toMatch(/1\/1 done · .*1 ok/)
    expect(colored.stdout).not.toMatch(/local-1: ok \(exit 0/)
    expect(colored.stdout).toContain('\x1b[32m')
    const plain = tty({ NO_COLOR: '1' })
    expect(plain.status).toBe(0)
    expect(plain.stdout).toMatch(/1\/1 done/)
    expect(plain.stdout).not.toContain('\x1b[32m')
  })

  it('prints -o json as one document even when it fails', async () => {
    const r = await keeper(['run', '-o', 'json', '--targets', 'nothing-*', '--', 'true'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'invalid_input', field: 'targets' } })
    const ok = await keeper(['jobs', '-o', 'json'])
    expect(Array.isArray((JSON.parse(ok.stdout) as { jobs: unknown[] }).jobs)).toBe(true)
  })

  it('refuses a destructive operation off a terminal without --yes, and runs it with --yes', async () => {
    // Destructive by its words, harmless here: it deletes ./* in a new empty directory (and
    // nothing at all unless that directory was made and entered), then removes the directory.
    const cmd = ['--shell', '--', 'd=$(mktemp -d) && test -d "$d" && cd "$d" && rm -rf ./* && cd / && rmdir "$d" && echo done']
    const refused = await keeper(['run', ...cmd])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/refusing a destructive operation \(recursive delete of a broad path\) on 1 node without confirmation: pass --yes/)
    const plan = await keeper(['run', '--plan', ...cmd])
    expect(plan.code).toBe(0)
    expect(plan.stdout).toMatch(/risk\s+destructive/)
    const yes = await keeper(['run', '--yes', ...cmd])
    expect(yes.code).toBe(0)
    expect(yes.stdout).toContain('   done')
  })

  it('reruns failed nodes and shows the policy and link in keeper job', async () => {
    const first = await keeper(['run', '--max-errors', '1', '--', 'false'])
    expect(first.code).toBe(1)
    const id = /job (j[0-9a-z]+)/.exec(first.stdout)![1]!
    const again = await keeper(['rerun', id, '--only', 'failed'])
    expect(again.code).toBe(1)
    const newId = /job (j[0-9a-z]+)/.exec(again.stdout)![1]!
    expect(newId).not.toBe(id)
    const shown = await keeper(['job', newId])
    expect(shown.stdout).toMatch(/rollout\s+concurrency 100, max errors 1, timeout 30000 ms/)
    expect(shown.stdout).toContain(`re-runs    ${id}`)
  })

  it('cancel waits until every node has confirmed', async () => {
    const { startBin: start } = await import('../harness/index.ts')
    const run = start('keeper', ['--queen', queen, '--token-file', tokenFile, 'run', '--no-group', '--shell', '--', 'echo go; sleep 30'], env())
    const line = await run.waitFor(/job j[0-9a-z]+:/)
    await run.waitFor(/local-1 \| go/)
    const jobId = /job (j[0-9a-z]+)/.exec(line)![1]!
    const cancel = await keeper(['cancel', jobId])
    expect(cancel.code).toBe(0)
    expect(cancel.stdout).toContain(`cancel requested for job ${jobId}`)
    expect(cancel.stdout).toMatch(/local-1: cancelled: cancelled by request/)
    expect(cancel.stdout).toMatch(/job j[0-9a-z]+ cancelled in/)
    expect((await run.exited).code).toBe(3)
  })

  it('Ctrl-C detaches with the job id; keeper watch picks it up where keeper left off', async () => {
    const { startBin: start } = await import('../harness/index.ts')
    const run = start('keeper', ['--queen', queen, '--token-file', tokenFile, 'run', '--no-group', '--shell', '--', 'echo one; sleep 2; echo two'], env())
    const line = await run.waitFor(/job j[0-9a-z]+:/)
    const jobId = /job (j[0-9a-z]+)/.exec(line)![1]!
    await run.waitFor(/local-1 \| one/)
    run.child.kill('SIGINT')
    const { code } = await run.exited
    expect(code).toBe(130)
    expect(run.output()).toContain(`keeper: detached; job ${jobId} goes on (keeper watch ${jobId}`)
    const watched = await keeper(['watch', jobId, '--no-group'])
    expect(watched.code).toBe(0)
    expect(watched.stdout).toMatch(new RegExp(`^reattaching to job ${jobId} after event \\d+`))
    // What was printed before the detach is not printed again; what came after is.
    expect(watched.stdout).not.toContain('local-1 | one')
    expect(watched.stdout).toContain('local-1 | two')
    expect(watched.stdout).toMatch(/job j[0-9a-z]+ ok in/)
  })

  it('Ctrl-C with --cancel-on-interrupt cancels the job', async () => {
    const { startBin: start } = await import('../harness/index.ts')
    const run = start('keeper', ['--queen', queen, '--token-file', tokenFile, 'run', '--cancel-on-interrupt', '--no-group', '--shell', '--', 'echo up; sleep 30'], env())
    const jobId = /job (j[0-9a-z]+)/.exec(await run.waitFor(/job j[0-9a-z]+:/))![1]!
    await run.waitFor(/local-1 \| up/)
    run.child.kill('SIGINT')
    expect((await run.exited).code).toBe(3)
    const shown = await keeper(['watch', jobId])
    expect(shown.stdout).toMatch(/cancelled in/)
  })

  it("shows a node's control characters visibly in text, and sends them as they are in -o ndjson", async () => {
    // Clear the screen, write the clipboard (OSC 52), then overwrite the line with a carriage return.
    const cmd = ['--shell', '--', "printf '\\033[2J\\033]52;c;cHduZWQ=\\007evil\\r\\n'"]
    const sent = '\x1b[2J\x1b]52;c;cHduZWQ=\x07evil\r\n'
    const shown = '\\x1b[2J\\x1b]52;c;cHduZWQ=\\x07evil\\x0d'
    const noControls = (text: string) => expect(text).not.toMatch(/[\x1b\x07\r]/)
    const grouped = await keeper(['run', ...cmd])
    expect(grouped.code).toBe(0)
    expect(grouped.stdout).toContain(`   ${shown}\n`)
    noControls(grouped.stdout)
    const jobId = /job (j[0-9a-z]+)/.exec(grouped.stdout)![1]!
    const live = await keeper(['run', '--no-group', ...cmd])
    expect(live.stdout).toContain(`local-1 | ${shown}\n`)
    noControls(live.stdout)
    expect((await keeper(['logs', jobId])).stdout).toBe(`local-1 | ${shown}\n`)
    expect((await keeper(['logs', jobId, '--node', 'local-1'])).stdout).toBe(`${shown}\n`)
    const ndjson = await keeper(['run', '-o', 'ndjson', ...cmd])
    expect(ndjson.code).toBe(0)
    noControls(ndjson.stdout) // JSON escapes them itself…
    expect(ndjson.stdout).toContain('\\u001b]52;c;cHduZWQ=\\u0007evil\\r\\n')
    const events = ndjson.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; data?: string })
    // …and they parse back to what the node wrote.
    expect(events.filter((e) => e.kind === 'node.output').map((e) => e.data).join('')).toBe(sent)
  })

  it('prints facts as a table', async () => {
    const r = await keeper(['facts'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/NODE\s+OS\s+KERNEL/)
    expect(r.stdout).toMatch(/local-1\s+\S/)
  })
})
