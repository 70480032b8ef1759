import { readFile, writeFile } from 'node:fs/promises'
import { ApiaryError } from '../errors.ts'
import { createSigner, createVerifier, generateSigningKey, type Signer, type Verifier } from '../trust/signing.ts'
import { readSecretFile, writeSecretFile } from './config.ts'

/** Where a signing key's public half is written: `signing.key` → `signing.pub`. */
export function publicKeyPath(privatePath: string): string {
  return privatePath.replace(/(\.key)?$/, '.pub')
}

/**
 * The queen's work-signing key from its 0600 file, created (with the public key beside it,
 * `<name>.pub`) when the file does not exist yet.
 */
export async function loadOrCreateSigningKey(path: string): Promise<{ signer: Signer; created: boolean }> {
  let created = false
  let pem: string
  try {
    pem = await readSecretFile(path, 'signing key')
  } catch (err) {
    if (!(err instanceof ApiaryError && err.code === 'not_found')) throw err
    const fresh = generateSigningKey()
    try {
      await writeSecretFile(path, fresh.privatePem.trim())
      created = true
    } catch (werr) {
      // Another process made it meanwhile: use theirs.
      if ((werr as NodeJS.ErrnoException).code !== 'EEXIST') throw werr
    }
    pem = await readSecretFile(path, 'signing key')
  }
  const signer = createSigner(pem)
  if (created) await writeFile(publicKeyPath(path), `${signer.publicKey}\n`, { mode: 0o644 })
  return { signer, created }
}

/**
 * The queen's public key that hives and workers pin: the key itself (`ed25519:…`) or a file
 * holding it (the queen's `signing.pub`). `field` names the flag in errors.
 */
export async function readQueenKey(valueOrPath: string, field = '--queen-key'): Promise<Verifier> {
  const v = valueOrPath.trim()
  if (v.startsWith('ed25519:')) return createVerifier(v, field)
  let text: string
  try {
    text = await readFile(v, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ApiaryError('invalid_input', `${field}: cannot read ${v}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'error')} (give the queen's public key, ed25519:…, or the file holding it)`, field)
  }
  return createVerifier(text, field)
}
