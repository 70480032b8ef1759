import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AuthMethod } from 'ssh2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sshKeyPair } from '../../../../../test/harness/ssh-keys.ts'
import { KeyRing, type KeyRingOptions } from './keys.ts'

const NONE: KeyRingOptions = { keyFile: undefined, passphraseFile: undefined, agent: undefined }

describe('KeyRing', () => {
  let dir: string
  let plainKey: string
  let lockedKey: string
  let passphrase: string
  let n = 0
  const secret = async (text: string) => {
    const file = join(dir, `secret-${++n}`)
    await writeFile(file, text, { mode: 0o600 })
    return file
  }
  const types = (methods: AuthMethod[]) => methods.map((m) => m.type)

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-keys-'))
    plainKey = await secret(sshKeyPair().private)
    // Few bcrypt rounds: the test is about which passphrase is used, not about strength.
    lockedKey = await secret(sshKeyPair({ passphrase: 'open sesame', cipher: 'aes256-ctr', rounds: 2 }).private)
    passphrase = await secret('open sesame')
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('offers the key, then the agent; with neither, says so', async () => {
    expect(types(await new KeyRing({ ...NONE, keyFile: plainKey, agent: '/run/agent.sock' }).auth({ user: 'deploy' }))).toEqual(['publickey', 'agent'])
    expect(types(await new KeyRing({ ...NONE, agent: '/run/agent.sock' }).auth({ user: 'deploy' }))).toEqual(['agent'])
    await expect(new KeyRing(NONE).auth({ user: 'deploy' })).rejects.toThrow('no key file and no ssh agent configured')
  })

  it('gives a target key only its own passphrase, never the pool key’s', async () => {
    const ring = new KeyRing({ ...NONE, keyFile: plainKey, passphraseFile: passphrase })
    await expect(ring.auth({ user: 'deploy', keyFile: lockedKey })).rejects.toThrow(`cannot use key ${lockedKey}`)
    expect(types(await ring.auth({ user: 'deploy', keyFile: lockedKey, passphraseFile: passphrase }))).toEqual(['publickey'])
    // A target naming only a passphrase gets the pool's key with it.
    const pooled = new KeyRing({ ...NONE, keyFile: lockedKey })
    expect(types(await pooled.auth({ user: 'deploy', passphraseFile: passphrase }))).toEqual(['publickey'])
  })

  it('parses a key once, but does not remember a failure', async () => {
    const later = join(dir, 'later')
    const ring = new KeyRing({ ...NONE, keyFile: plainKey })
    const key = (m: AuthMethod[]) => (m[0] as { key?: unknown }).key
    expect(key(await ring.auth({ user: 'a' }))).toBe(key(await ring.auth({ user: 'b' })))
    await expect(ring.auth({ user: 'a', keyFile: later })).rejects.toThrow('does not exist')
    await writeFile(later, sshKeyPair().private, { mode: 0o600 })
    expect(types(await ring.auth({ user: 'a', keyFile: later }))).toEqual(['publickey'])
  })
})
