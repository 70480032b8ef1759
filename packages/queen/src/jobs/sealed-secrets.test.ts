import { createSigner, generateSigningKey, isApiaryError, type SecretStore } from '@apiary/shared'
import { describe, expect, it } from 'vitest'
import { createSecretSealer, decrypt, encrypt, openWith, sealWith } from './sealed-secrets.ts'

const TOKEN = 's3cr3t-unit-4b1d'
const STDIN = 'stdin-unit-9e0c'
const secrets = { env: { TOKEN }, stdin: STDIN }

/** The secrets bucket as a map, for the pure logic; the real buckets run in the conformance suite. */
function mapBucket(): SecretStore & { values: Map<string, string> } {
  const values = new Map<string, string>()
  return {
    values,
    put: async (k, v) => void values.set(k, v),
    get: async (k) => values.get(k),
    delete: async (k) => void values.delete(k),
  }
}

async function failure(p: Promise<unknown> | (() => unknown)): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a failure')
}

function expectNoPlaintext(err: Error) {
  const text = `${err.message} ${String(err.cause)} ${JSON.stringify(err)}`
  expect(text).not.toContain(TOKEN)
  expect(text).not.toContain(STDIN)
}

describe('sealing', () => {
  const key = Buffer.alloc(32, 7)

  it('opens what it sealed, for the same job only', () => {
    const blob = sealWith(key, 'jaaaa0001', secrets)
    expect(blob).not.toContain(TOKEN)
    expect(Buffer.from(blob.split('.').at(-1)!, 'base64url').toString()).not.toContain(TOKEN)
    expect(openWith(key, 'jaaaa0001', blob)).toEqual(secrets)
    const err = failure(() => openWith(key, 'jaaaa0002', blob))
    return err.then((e) => {
      expect(isApiaryError(e, 'internal')).toBe(true)
      expectNoPlaintext(e)
    })
  })

  it('refuses a wrong key and a tampered blob with a clear error and never the plaintext', async () => {
    const blob = encrypt(key, Buffer.from(JSON.stringify(secrets)), Buffer.from('ad'))
    const wrong = await failure(() => decrypt(Buffer.alloc(32, 8), blob, Buffer.from('ad'), 'the test blob'))
    expect(wrong.message).toMatch(/the test blob cannot be opened: it was sealed under another key .* or altered/)
    expectNoPlaintext(wrong)
    const parts = blob.split('.')
    const body = Buffer.from(parts[3]!, 'base64url')
    body[0] = body[0]! ^ 1
    const tampered = await failure(() => decrypt(key, [...parts.slice(0, 3), body.toString('base64url')].join('.'), Buffer.from('ad'), 'the test blob'))
    expect(tampered.message).toMatch(/cannot be opened/)
    expectNoPlaintext(tampered)
    const garbage = await failure(() => decrypt(key, 'not a blob', Buffer.from('ad'), 'the test blob'))
    expect(garbage.message).toMatch(/not sealed the way this queen seals/)
  })
})

describe('createSecretSealer', () => {
  const signer = createSigner(generateSigningKey().privatePem)

  it('keeps only a wrapped data key in the bucket, opens the blob with it, and can no longer once forgotten', async () => {
    const bucket = mapBucket()
    const sealer = createSecretSealer(bucket, signer)
    const blob = await sealer.seal('jseal0001', secrets)
    expect([...bucket.values.keys()]).toEqual(['jseal0001'])
    expect(bucket.values.get('jseal0001')).not.toContain(TOKEN)
    expect(await sealer.open('jseal0001', blob)).toEqual(secrets)
    // Another queen of the deployment holds the same signing key: it opens it too.
    expect(await createSecretSealer(bucket, signer).open('jseal0001', blob)).toEqual(secrets)
    await sealer.forget('jseal0001')
    expect(bucket.values.size).toBe(0)
    const gone = await failure(sealer.open('jseal0001', blob))
    expect(isApiaryError(gone, 'not_found')).toBe(true)
    expect(gone.message).toMatch(/forgotten when it ended/)
    expectNoPlaintext(gone)
  })

  it('refuses a data key wrapped under another signing key, or moved to another job', async () => {
    const bucket = mapBucket()
    const blob = await createSecretSealer(bucket, signer).seal('jseal0002', secrets)
    const other = createSecretSealer(bucket, createSigner(generateSigningKey().privatePem))
    const err = await failure(other.open('jseal0002', blob))
    expect(isApiaryError(err, 'internal')).toBe(true)
    expect(err.message).toMatch(/the data key of job jseal0002 cannot be opened/)
    expectNoPlaintext(err)
    bucket.values.set('jseal0003', bucket.values.get('jseal0002')!)
    const moved = await failure(createSecretSealer(bucket, signer).open('jseal0003', blob))
    expect(moved.message).toMatch(/cannot be opened/)
  })

  it('derives a wrapping key that is the signing key’s alone, the same for every queen holding it', () => {
    const pem = generateSigningKey().privatePem
    expect(createSigner(pem).deriveKey('x')).toEqual(createSigner(pem).deriveKey('x'))
    expect(createSigner(pem).deriveKey('x')).not.toEqual(createSigner(pem).deriveKey('y'))
    expect(createSigner(pem).deriveKey('x')).not.toEqual(signer.deriveKey('x'))
  })
})
