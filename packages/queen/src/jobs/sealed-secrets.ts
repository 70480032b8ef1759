import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { ApiaryError, errorMessage, isApiaryError, type OperationSecrets, type SecretStore, type Signer } from '@apiary/shared'

/**
 * An operation's secrets (env values, stdin) at rest (DESIGN.md, "Trust" 6): the job log and
 * the index hold only a blob sealed with AES-256-GCM under a random data key of the job's own;
 * the data key is kept, wrapped (AES-256-GCM) under a key derived from the queens' signing key,
 * in the secrets bucket. Every queen of a deployment signs with the same key, so each can
 * unwrap; the NATS server's disk alone holds no usable key. When the job ends its data key is
 * purged, and the blob in the append-only log can never be opened again.
 */
export interface SecretSealer {
  /** Seals a new job's secrets: its data key goes (wrapped) to the bucket first, then the blob is returned. */
  seal(jobId: string, secrets: OperationSecrets): Promise<string>
  /** Opens a job's blob; `not_found` when its data key is gone (the job ended), `internal` when the key or blob is not this deployment's or was altered. */
  open(jobId: string, blob: string): Promise<OperationSecrets>
  /** Purges the job's data key. */
  forget(jobId: string): Promise<void>
}

/** What the wrapping key is derived for (HKDF info): never the same key as anything else. */
export const WRAP_PURPOSE = 'apiary secrets: data-key wrapping v1'
const VERSION = 'v1'
/** A blob and a wrapped key are bound to their job: one cannot be passed off as another job's. */
const aad = (what: 'secrets' | 'data key', jobId: string) => Buffer.from(`apiary ${what} ${VERSION} ${jobId}`)

/** How long an open or a seal retries a bucket that is away (a restarting server, a new bucket leader). */
const PATIENCE_MS = 10_000

export function encrypt(key: Buffer, plain: Buffer, ad: Buffer): string {
  const iv = randomBytes(12)
  const c = createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(ad)
  const body = Buffer.concat([c.update(plain), c.final()])
  return [VERSION, iv.toString('base64url'), c.getAuthTag().toString('base64url'), body.toString('base64url')].join('.')
}

/** Throws `internal` (naming `what`, never a byte of it) when the text is not one `encrypt` made under this key for this `ad`. */
export function decrypt(key: Buffer, text: string, ad: Buffer, what: string): Buffer {
  const [v, iv, tag, body, ...more] = text.split('.')
  if (v !== VERSION || iv === undefined || tag === undefined || body === undefined || more.length > 0) {
    throw new ApiaryError('internal', `${what} is not sealed the way this queen seals (${VERSION})`)
  }
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    d.setAAD(ad)
    d.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()])
  } catch (err) {
    throw new ApiaryError('internal', `${what} cannot be opened: it was sealed under another key (another signing key?) or altered`, undefined, { cause: new Error(errorMessage(err)) })
  }
}

/** Seals secrets under a job's data key. */
export function sealWith(dataKey: Buffer, jobId: string, secrets: OperationSecrets): string {
  return encrypt(dataKey, Buffer.from(JSON.stringify(secrets)), aad('secrets', jobId))
}

export function openWith(dataKey: Buffer, jobId: string, blob: string): OperationSecrets {
  const plain = decrypt(dataKey, blob, aad('secrets', jobId), `the sealed secrets of job ${jobId}`)
  const parsed = JSON.parse(plain.toString()) as OperationSecrets
  plain.fill(0)
  return parsed
}

async function patiently<T>(what: () => Promise<T>): Promise<T> {
  const until = Date.now() + PATIENCE_MS
  for (let n = 0; ; n++) {
    try {
      return await what()
    } catch (err) {
      if (!isApiaryError(err, 'unavailable') || Date.now() > until) throw err
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** n)).unref())
    }
  }
}

/**
 * The queen's sealer over the secrets bucket, its wrapping key derived from `signer`.
 *
 * @example const sealer = createSecretSealer(bus.durable.secrets, signer); const blob = await sealer.seal(jobId, { env })
 */
export function createSecretSealer(bucket: SecretStore, signer: Pick<Signer, 'deriveKey'>): SecretSealer {
  const wrapKey = signer.deriveKey(WRAP_PURPOSE)
  return {
    async seal(jobId, secrets) {
      const dataKey = randomBytes(32)
      try {
        await patiently(() => bucket.put(jobId, encrypt(wrapKey, dataKey, aad('data key', jobId))))
        return sealWith(dataKey, jobId, secrets)
      } finally {
        dataKey.fill(0)
      }
    },
    async open(jobId, blob) {
      const wrapped = await patiently(() => bucket.get(jobId))
      if (wrapped === undefined) throw new ApiaryError('not_found', `the data key of job ${jobId} is gone: its env values and stdin were forgotten when it ended`)
      const dataKey = decrypt(wrapKey, wrapped, aad('data key', jobId), `the data key of job ${jobId}`)
      try {
        return openWith(dataKey, jobId, blob)
      } finally {
        dataKey.fill(0)
      }
    },
    forget: (jobId) => patiently(() => bucket.delete(jobId)),
  }
}
