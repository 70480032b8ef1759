import { chmod, chown, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isApiaryError } from '@apiary/shared'
import { createLogger } from '@apiary/shared/runtime'
import { UserRegistry } from './users.ts'
import { hashToken, loadUsersFile, parseUsersFile } from './users-file.ts'

const H = (c: string) => `sha256:${c.repeat(64)}`

describe('the users file', () => {
  it('reads roles and users', () => {
    const f = parseUsersFile(
      `roles:
  web: { operations: [exec], targets: "role=web" }
users:
  alice: { token: "${H('a')}", roles: [admin] }
  bob: { token: "${H('b')}", roles: [web, viewer] }
`,
      'users.yaml',
    )
    expect(f.roles.web).toEqual({ operations: ['exec'], targets: 'role=web', destructive: false, cancelOthers: false, admin: false })
    expect(f.users.bob).toEqual({ token: H('b'), roles: ['web', 'viewer'] })
  })

  it.each([
    ['an unknown role', `users:\n  bob:\n    token: "${H('b')}"\n    roles: [viewer, deployer]\n`, 'users.yaml:4:21: users.bob.roles.1: unknown role "deployer" (roles: viewer, operator, admin)', 'users.bob.roles.1'],
    ['a token in clear', `users:\n  bob:\n    token: "not-a-hash"\n    roles: [viewer]\n`, 'users.yaml:3:5: users.bob.token: must be "sha256:"', 'users.bob.token'],
    ['an unknown key', `users:\n  bob: { token: "${H('b')}", roles: [viewer], admin: true }\n`, "users.yaml:2:3: users.bob: Unrecognized key", 'users.bob'],
    ['a bad selector', `roles:\n  web: { operations: [exec], targets: "role=" }\n`, 'users.yaml:2:30: roles.web.targets: term "role="', 'roles.web.targets'],
    ['a redefined built-in role', `roles:\n  admin: { operations: [] }\n`, 'users.yaml:2:3: roles.admin: "admin" is a built-in role', 'roles.admin'],
    ['a shared token', `users:\n  a: { token: "${H('c')}", roles: [viewer] }\n  b: { token: "${H('c')}", roles: [viewer] }\n`, 'users.yaml:3:8: users.b.token: the same token as user a', 'users.b.token'],
    ['a YAML syntax error', `users:\n  a: { token: [\n`, 'users.yaml:3:1: invalid YAML', 'users-file'],
  ])('refuses %s naming the file, line and field', (_what, text, message, field) => {
    let err: unknown
    try {
      parseUsersFile(text, 'users.yaml')
    } catch (e) {
      err = e
    }
    expect(isApiaryError(err, 'invalid_input')).toBe(true)
    expect((err as Error).message).toContain(message)
    expect((err as { field?: string }).field).toBe(field)
  })
})

describe('UserRegistry', () => {
  let dir: string
  const lines: string[] = []
  const log = createLogger({
    component: 'test',
    level: 'info',
    destination: new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk))
        cb()
      },
    }),
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-users-'))
    lines.length = 0
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('without a file, the bootstrap token is user admin', async () => {
    const reg = await UserRegistry.open({ bootstrapToken: 'boot', log })
    expect(reg.authenticate('boot')?.user).toEqual({ name: 'admin', roles: ['admin'] })
    expect(reg.authenticate('other')).toBeUndefined()
    await expect(reg.add('bob', ['viewer'])).rejects.toMatchObject({ code: 'conflict', field: 'users-file' })
    reg.close()
  })

  it('creates a missing file (0600) whose admin holds the bootstrap token, storing only its hash', async () => {
    const file = join(dir, 'users.yaml')
    const reg = await UserRegistry.open({ file, bootstrapToken: 'boot-token-value', log })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const text = await readFile(file, 'utf8')
    expect(text).toContain(hashToken('boot-token-value'))
    expect(text).not.toContain('boot-token-value')
    expect(reg.authenticate('boot-token-value')?.user.name).toBe('admin')
    reg.close()
  })

  it('adds, rotates and revokes: the file holds hashes only, an old token stops at once and aborts its signal', async () => {
    const file = join(dir, 'users.yaml')
    const reg = await UserRegistry.open({ file, bootstrapToken: 'boot', log })
    const { token } = await reg.add('bob', ['operator'])
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const text = await readFile(file, 'utf8')
    expect(text).not.toContain(token)
    expect(text).toContain(hashToken(token))
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const bob = reg.authenticate(token)!
    expect(bob.user).toEqual({ name: 'bob', roles: ['operator'] })

    const rotated = await reg.rotate('bob')
    expect(bob.signal.aborted).toBe(true)
    expect(reg.authenticate(token)).toBeUndefined()
    const bob2 = reg.authenticate(rotated.token)!
    await reg.revoke('bob')
    expect(bob2.signal.aborted).toBe(true)
    expect(reg.authenticate(rotated.token)).toBeUndefined()
    await expect(reg.revoke('admin')).rejects.toMatchObject({ code: 'conflict', message: expect.stringContaining('last user with an admin role') })
    await expect(reg.add('carol', ['deployer'])).rejects.toMatchObject({ code: 'invalid_input', field: 'roles' })
    await expect(reg.rotate('nobody')).rejects.toMatchObject({ code: 'not_found' })
    expect(lines.join('')).not.toContain(token)
    expect(lines.join('')).not.toContain(rotated.token)
    reg.close()
  })

  it('loses no change when two registries (two queens) change one file at once', async () => {
    const file = join(dir, 'users.yaml')
    const a = await UserRegistry.open({ file, bootstrapToken: 'boot-token-0123456789', log, pollMs: 60_000 })
    const b = await UserRegistry.open({ file, bootstrapToken: 'boot-token-0123456789', log, pollMs: 60_000 })
    for (let i = 0; i < 6; i++) await a.add(`gone${i}`, ['viewer'])
    const names = Array.from({ length: 16 }, (_, i) => `u${i}`)
    await Promise.all([
      ...names.map((n, i) => (i % 2 ? a : b).add(n, ['viewer'])),
      ...Array.from({ length: 6 }, (_, i) => (i % 2 ? b : a).revoke(`gone${i}`)),
    ])
    const onDisk = Object.keys((await loadUsersFile(file)).users).sort()
    expect(onDisk).toEqual(['admin', ...names].sort())
    await expect(readFile(`${file}.lock`)).rejects.toMatchObject({ code: 'ENOENT' })
    a.close()
    b.close()
  })

  it('refuses a bad new version with its line and field and keeps the last good one', async () => {
    const file = join(dir, 'users.yaml')
    await writeFile(file, `users:\n  alice: { token: "${hashToken('alice-token')}", roles: [admin] }\n`, { mode: 0o600 })
    const reg = await UserRegistry.open({ file, bootstrapToken: 'boot', log, pollMs: 60_000 })
    await writeFile(file, `users:\n  alice: { token: "${hashToken('alice-token')}", roles: [admin, nosuch] }\n`)
    const r = await reg.reload()
    expect(r).toEqual({ ok: false, error: expect.stringContaining(`${file}:2:`) })
    expect(!r.ok && r.error).toContain('users.alice.roles.1: unknown role "nosuch"')
    expect(lines.join('')).toContain('users file refused; keeping the last good one')
    expect(reg.authenticate('alice-token')?.user.name).toBe('alice')
    // A bad file is never rewritten by a change through the API.
    await expect(reg.add('bob', ['viewer'])).rejects.toMatchObject({ code: 'conflict' })
    reg.close()
  })

  it('refuses a users file others may write, at start', async () => {
    const file = join(dir, 'users.yaml')
    await writeFile(file, 'users: {}\n')
    await chmod(file, 0o666)
    await expect(UserRegistry.open({ file, bootstrapToken: 'b', log })).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringContaining('writable by others') })
    await expect(loadUsersFile(join(dir, 'missing.yaml'))).rejects.toMatchObject({ code: 'not_found' })
  })

  it('refuses a users file behind a symbolic link, or owned by another user', async () => {
    const real = join(dir, 'real.yaml')
    await writeFile(real, 'users: {}\n', { mode: 0o600 })
    const link = join(dir, 'link.yaml')
    await symlink(real, link)
    await expect(loadUsersFile(link)).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringContaining('is a symbolic link') })
    if (process.geteuid?.() === 0) {
      await chown(real, 65534, 65534)
      await expect(loadUsersFile(real)).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringContaining('is owned by uid 65534') })
    }
  })
})
