import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadOrCreateSigningKey, publicKeyPath, readQueenKey } from './keys.ts'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'apiary-keys-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const mode = async (f: string) => ((await stat(f)).mode & 0o777).toString(8)

describe('the queen’s signing key', () => {
  it('is made on first use, 0600, with its public key beside it, and the same key after', async () => {
    const file = join(dir, 'state', 'signing.key')
    const first = await loadOrCreateSigningKey(file)
    expect(first.created).toBe(true)
    expect(await mode(file)).toBe('600')
    expect(publicKeyPath(file)).toBe(join(dir, 'state', 'signing.pub'))
    expect((await readFile(publicKeyPath(file), 'utf8')).trim()).toBe(first.signer.publicKey)
    const again = await loadOrCreateSigningKey(file)
    expect(again).toMatchObject({ created: false, signer: { publicKey: first.signer.publicKey } })
    // What it signs, the pinned public key verifies.
    const v = await readQueenKey(publicKeyPath(file))
    expect(v.verify(again.signer.sign({ job: 'j1' }))).toBe(true)
  })

  it('is refused when others can read it, naming the file and never showing it', async () => {
    const file = join(dir, 'signing.key')
    const { signer } = await loadOrCreateSigningKey(file)
    await chmod(file, 0o644)
    const pem = await readFile(file, 'utf8')
    const err = await loadOrCreateSigningKey(file).catch((e: unknown) => e as Error)
    expect(err).toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/signing key file .*signing\.key is readable by others .*chmod 600/) })
    expect(String(err)).not.toContain(pem.split('\n')[1])
    expect(signer.publicKey).toMatch(/^ed25519:/)
  })

  it('is refused when it is not an ed25519 PEM key', async () => {
    const file = join(dir, 'signing.key')
    await writeFile(file, 'not a key\n', { mode: 0o600 })
    await expect(loadOrCreateSigningKey(file)).rejects.toMatchObject({ code: 'invalid_input', message: 'the signing key is not a PEM private key' })
  })
})

describe('the pinned queen key', () => {
  it('is the key itself or the file holding it, and a bad one names --queen-key', async () => {
    const { signer } = await loadOrCreateSigningKey(join(dir, 'signing.key'))
    expect((await readQueenKey(signer.publicKey)).publicKey).toBe(signer.publicKey)
    await expect(readQueenKey(join(dir, 'missing.pub'))).rejects.toMatchObject({ field: '--queen-key', message: expect.stringMatching(/cannot read .*missing\.pub: no such file/) })
    await writeFile(join(dir, 'bad.pub'), 'ssh-ed25519 AAAA\n')
    await expect(readQueenKey(join(dir, 'bad.pub'))).rejects.toMatchObject({ field: '--queen-key', message: expect.stringMatching(/must be an ed25519 public key/) })
  })
})
