import { randomBytes } from 'node:crypto'
import { isApiaryError } from '@apiary/shared'
import { readSecretFile, writeSecretFile } from '@apiary/shared/runtime'

/** Reads the API token, generating it (mode 0600) on first start. */
export async function ensureToken(path: string): Promise<{ token: string; created: boolean }> {
  try {
    return { token: await readSecretFile(path, 'token'), created: false }
  } catch (err) {
    if (!isApiaryError(err, 'not_found')) throw err
  }
  const token = randomBytes(32).toString('base64url')
  try {
    await writeSecretFile(path, token)
  } catch (err) {
    // Another queen created it first: use that one.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: await readSecretFile(path, 'token'), created: false }
    throw err
  }
  return { token, created: true }
}
