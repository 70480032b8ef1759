import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '@apiary/shared/runtime'
import { createJobClient } from '@apiary/shared/client'
import { type Embedded, startEmbedded } from '@apiary/keeper'
import { hashToken } from '@apiary/queen'
import { runBin, type TempDir, tempDir, waitUntil } from '../harness/index.ts'

/** Runs SQL on a database file with the sqlite3 shell: the audit log edited behind the queen's back. */
const sqlite = (file: string, sql: string) => promisify(execFile)('sqlite3', [file, sql])

/**
 * Users and audit through the real programs: keeper adds, rotates and revokes a user of a
 * served cluster (an open event stream of that user ends), refusals exit 2 naming the rule,
 * keeper and apiary-queen verify the audit chain, and a record edited or deleted with sqlite
 * is named.
 */
describe('keeper users and keeper audit', () => {
  let dir: TempDir
  let cluster: Embedded
  let stateDir = ''
  let usersFile = ''
  let adminToken = ''
  const env = () => ({ APIARY_QUEEN_URL: cluster.queen.url, APIARY_TOKEN_FILE: join(stateDir, 'token'), APIARY_STATE_DIR: stateDir })
  const keeper = (args: string[], tokenFile?: string) => runBin('keeper', args, { ...env(), ...(tokenFile ? { APIARY_TOKEN_FILE: tokenFile } : {}) })
  const tokenFileFor = async (name: string, token: string) => {
    const f = join(dir.path, `${name}.token`)
    await writeFile(f, `${token}\n`, { mode: 0o600 })
    await chmod(f, 0o600)
    return f
  }
  const status = async (token: string) => (await fetch(`${cluster.queen.url}/v1/jobs`, { headers: { authorization: `Bearer ${token}` } })).status

  beforeAll(async () => {
    dir = await tempDir('access-cli')
    stateDir = join(dir.path, 'state')
    usersFile = join(dir.path, 'users.yaml')
    cluster = await startEmbedded({
      log: silentLogger(),
      queen: { stateDir, usersFile, usersPollMs: 100 },
      defaults: { heartbeatMs: 200 },
      hives: [{}],
      workers: [{ nodeId: 'web-1', labels: { role: 'web' } }],
    })
    adminToken = (await readFile(join(stateDir, 'token'), 'utf8')).trim()
  })
  afterAll(async () => {
    await cluster?.close()
    await dir?.remove()
  })

  it('made the missing users file (0600) with the bootstrap token as admin', async () => {
    expect((await stat(usersFile)).mode & 0o777).toBe(0o600)
    expect(await readFile(usersFile, 'utf8')).toContain(hashToken(adminToken))
    const list = await keeper(['users', 'list'])
    expect(list).toMatchObject({ code: 0 })
    expect(list.stdout).toMatch(/admin\s+admin/)
  })

  it('adds, rotates and revokes through keeper; the token shows once and an open stream of the user ends', async () => {
    const added = await keeper(['users', 'add', 'bob', '--role', 'operator'])
    expect(added.code).toBe(0)
    const token = added.stdout.trim()
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(added.stderr).toContain('user bob added (roles operator)')
    expect(await readFile(usersFile, 'utf8')).not.toContain(token)
    const bob = createJobClient({ url: cluster.queen.url, token })
    const { jobId } = await bob.submit({ operation: { type: 'exec', argv: ['sleep', '30'] }, targets: 'web-1' })
    const res = await fetch(`${cluster.queen.url}/v1/jobs/${jobId}/stream`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    let seen = ''
    while (!seen.includes('event: node.started')) seen += new TextDecoder().decode((await reader.read()).value)

    const rotated = await keeper(['users', 'rotate', 'bob'])
    expect(rotated.code).toBe(0)
    const token2 = rotated.stdout.trim()
    // The stream of the rotated-away token ends (the job still runs).
    for (;;) if ((await reader.read()).done) break
    expect(await status(token)).toBe(401)
    expect(await status(token2)).toBe(200)

    // Bob cannot cancel another user's job, nor run a destructive one: exit 2, the rule named.
    const bobFile = await tokenFileFor('bob', token2)
    const admins = await createJobClient({ url: cluster.queen.url, token: adminToken }).submit({ operation: { type: 'exec', argv: ['sleep', '30'] }, targets: 'web-1' })
    const cancel = await keeper(['cancel', admins.jobId, '--no-wait'], bobFile)
    expect(cancel.code).toBe(2)
    expect(cancel.stderr).toContain('role operator does not allow acting on jobs of other users (this one was submitted by admin)')
    const wipe = await keeper(['run', '--yes', '--targets', 'web-1', '--', 'rm', '-rf', '/'], bobFile)
    expect(wipe.code).toBe(2)
    expect(wipe.stderr).toContain('role operator does not allow destructive operations')
    expect((await keeper(['users', 'list'], bobFile)).stderr).toContain('role operator does not allow administering users')

    const jobs = await keeper(['jobs'])
    expect(jobs.stdout).toMatch(new RegExp(`${jobId}.*bob`))
    expect((await keeper(['job', jobId])).stdout).toMatch(/by\s+bob/)
    expect((await keeper(['cancel', jobId, '--no-wait'], bobFile)).code).toBe(0)

    expect((await keeper(['users', 'revoke', 'bob'])).code).toBe(0)
    expect(await status(token2)).toBe(401)
    expect((await keeper(['cancel', admins.jobId])).code).toBe(0)
    await bob.close()
  })

  it('takes an edit of the file without a restart, and keeps the last good one past a bad edit', async () => {
    const carol = 'carol-token-0123456789abcdefghij'
    const text = await readFile(usersFile, 'utf8')
    await writeFile(usersFile, text.replace('users:\n', `users:\n  carol: { token: "${hashToken(carol)}", roles: [viewer] }\n`))
    // The file is polled: there is no event to await.
    await waitUntil(async () => (await status(carol)) === 200, 'the queen to take the edited users file')
    await writeFile(usersFile, `${text}\n  dave: { token: "nope", roles: [viewer] }\n`)
    // The bad version is refused (and recorded): carol, in the last good one, still works.
    await waitUntil(async () => (await keeper(['audit', '-o', 'json'])).stdout.includes('"problem"'), 'the queen to refuse the bad users file', 20_000, 200)
    expect(await status(carol)).toBe(200)
    const audit = JSON.parse((await keeper(['audit', '-o', 'json', '--since', '1h'])).stdout) as { records: Array<{ kind: string; detail: Record<string, unknown> }> }
    const refused = audit.records.find((r) => r.kind === 'users.reloaded' && r.detail.ok === false)
    expect(refused?.detail.problem).toMatch(/users\.yaml:\d+:\d+: users\.dave\.token/)
    await writeFile(usersFile, text)
  })

  it('lists and verifies the audit log with keeper; a record edited with sqlite is named', async () => {
    const list = await keeper(['audit', '--user', 'bob'])
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/login/)
    expect(list.stdout).toMatch(/refused.*role operator does not allow destructive operations/)
    expect(list.stdout).not.toMatch(/user\.added/) // bob did not add himself; admin did
    const all = await keeper(['audit', '-o', 'json'])
    const records = (JSON.parse(all.stdout) as { records: Array<{ kind: string; user?: string; detail: Record<string, unknown> }> }).records
    expect(records.find((r) => r.kind === 'user.added')).toMatchObject({ user: 'admin', detail: { name: 'bob', roles: ['operator'] } })
    expect(all.stdout).not.toMatch(/sha256:[0-9a-f]{64}/)
    expect(all.stdout).not.toContain(adminToken)

    const ok = await keeper(['audit', 'verify'])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/^intact: \d+ records, head \d+ [0-9a-f]{64}$/m)

    await sqlite(join(stateDir, 'audit.db'), `UPDATE audit SET body = json_set(body, '$.user', 'mallory') WHERE seq = 3`)
    const broken = await keeper(['audit', 'verify'])
    expect(broken.code).toBe(1)
    expect(broken.stdout).toContain('broken: record 3: hash mismatch')
  })

  it('verifies offline with apiary-queen and names a deleted record; manages users offline', async () => {
    await cluster.stopQueen()
    await runBin('apiary-queen', ['audit', 'verify', '--state-dir', stateDir]).then((r) => {
      expect(r.code).toBe(1)
      expect(r.stdout).toContain('broken: record 3: hash mismatch')
    })
    // The records up to the edited one gone (as retention would prune them), and one deleted after.
    await sqlite(join(stateDir, 'audit.db'), 'DELETE FROM audit WHERE seq <= 3; DELETE FROM audit WHERE seq = 6;')
    const r = await runBin('apiary-queen', ['audit', 'verify', '--state-dir', stateDir])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('chain starts at record 4; earlier records pruned by retention')
    expect(r.stdout).toContain('broken: record 7: prev mismatch: it does not follow record 5 (1 record before it removed)')
    // A dropped table is not verified as an empty chain.
    await sqlite(join(stateDir, 'audit.db'), 'DROP TABLE audit')
    const dropped = await runBin('apiary-queen', ['audit', 'verify', '--state-dir', stateDir])
    expect([dropped.code, dropped.stdout]).toEqual([1, expect.stringContaining('holds no audit table (it was dropped)')])

    const add = await runBin('apiary-queen', ['users', 'add', 'erin', '--role', 'viewer', '--users-file', usersFile])
    expect(add.code).toBe(0)
    const erin = add.stdout.trim()
    expect(await readFile(usersFile, 'utf8')).toContain(hashToken(erin))
    const bad = await runBin('apiary-queen', ['users', 'add', 'frank', '--role', 'nosuch', '--users-file', usersFile])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('roles: unknown role "nosuch"')
    const list = await runBin('apiary-queen', ['users', 'list', '--users-file', usersFile])
    expect(list.stdout).toContain('erin\tviewer')
    await cluster.startQueen()
    expect(await status(erin)).toBe(200)
  })
})
