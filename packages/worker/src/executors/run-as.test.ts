import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isApiaryError } from '@apiary/shared'
import { canSwitchUser, passwdEntry, resolveRunAs } from './run-as.ts'

const PASSWD = `root:x:0:0:root:/root:/bin/bash
# a comment:x:1:1:::
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
broken:x:notanumber:1::/home/broken:/bin/sh
app:x:1001:1002:the app:/srv/app:/bin/sh
`

describe('passwdEntry', () => {
  it('finds a user by name or by uid, and nothing for an unknown one or a malformed line', () => {
    expect(passwdEntry(PASSWD, 'nobody')).toEqual({ user: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent', shell: '/usr/sbin/nologin' })
    expect(passwdEntry(PASSWD, '1001')).toEqual({ user: 'app', uid: 1001, gid: 1002, home: '/srv/app', shell: '/bin/sh' })
    expect(passwdEntry(PASSWD, 'ghost')).toBeUndefined()
    expect(passwdEntry(PASSWD, 'broken')).toBeUndefined()
    expect(passwdEntry(PASSWD, '# a comment')).toBeUndefined()
  })
})

describe('canSwitchUser', () => {
  const status = (capEff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`
  it('root may; another user only with CAP_SETUID and CAP_SETGID both in effect', () => {
    expect(canSwitchUser(0, '')).toBe(true)
    expect(canSwitchUser(1000, status('0000000000000000'))).toBe(false)
    expect(canSwitchUser(1000, status('00000000000000c0'))).toBe(true)
    expect(canSwitchUser(1000, status('0000000000000080'))).toBe(false) // CAP_SETUID alone
    expect(canSwitchUser(1000, status('000001ffffffffff'))).toBe(true)
    expect(canSwitchUser(1000, 'no capabilities here')).toBe(false)
  })
})

describe('resolveRunAs', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-run-as-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  const files = async (passwd: string, capEff = '0000000000000000') => {
    await writeFile(join(dir, 'passwd'), passwd)
    await writeFile(join(dir, 'status'), `CapEff:\t${capEff}\n`)
    return { passwd: join(dir, 'passwd'), status: join(dir, 'status') }
  }
  const refusal = async (name: string, f: { passwd: string; status: string }) => {
    const err = await resolveRunAs(name, '--run-as', f).then(() => undefined, (e: unknown) => e)
    expect(isApiaryError(err, 'invalid_input'), String(err)).toBe(true)
    expect((err as { field: string }).field).toBe('--run-as')
    return (err as Error).message
  }
  const me = process.geteuid!()

  it('refuses a user that does not exist, and the worker’s own user', async () => {
    const f = await files(`${PASSWD}self:x:${me}:${me}::/:/bin/sh\n`)
    expect(await refusal('ghost', f)).toBe(`--run-as ghost: no such user in ${f.passwd}`)
    expect(await refusal('self', f)).toBe("--run-as self: that is the user this worker runs as, so its commands could read the worker's credentials and journal: give another user")
  })

  it('starts commands in the user’s home, or / when it has none', async () => {
    const f = await files(`nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\nhomed:x:4242:4242::${dir}:/bin/sh\n`)
    if (me === 0) {
      expect(await resolveRunAs('nobody', '--run-as', f)).toMatchObject({ uid: 65534, gid: 65534, cwd: '/' })
      expect(await resolveRunAs('4242', '--run-as', f)).toMatchObject({ user: 'homed', home: dir, cwd: dir })
    } else {
      expect(await refusal('nobody', f)).toBe(`--run-as nobody: this worker (uid ${me}) cannot run commands as another user: it must run as root, or hold CAP_SETUID and CAP_SETGID`)
    }
  })
})
