import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, type KeyObject, sign, verify } from 'node:crypto'
import { ApiaryError } from '../errors.ts'

/**
 * The queen's work signature: ed25519 over the canonical JSON of a message without its `sig`.
 * Hives and workers pin the queen's public key, written `ed25519:<base64url of 32 bytes>`.
 */
const PUBLIC_PREFIX = 'ed25519:'

/**
 * JSON with object keys sorted at every level and `undefined` members left out: the same
 * value always gives the same bytes, whoever serialises it.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new ApiaryError('invalid_input', 'a signed value cannot hold a non-finite number')
    return JSON.stringify(value) ?? 'null'
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
}

/** SHA-256 of a value's canonical JSON, hex: how a signature covers an operation it does not carry. */
export function digestOf(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex')
}

export interface Signer {
  /** The public key to pin (`ed25519:…`). */
  readonly publicKey: string
  /** The message with `sig` set: the signature over everything else in it. */
  sign<T extends object>(body: T): T & { sig: string }
  /**
   * A 32-byte key for `purpose`, derived (HKDF-SHA256) from the private key: every queen holding
   * the same signing key derives the same one, and it reveals nothing of the signing key.
   */
  deriveKey(purpose: string): Buffer
}

export interface Verifier {
  readonly publicKey: string
  /** Whether `sig` is the queen's signature over the rest of `body`. */
  verify(body: { sig: string }): boolean
}

function withoutSig(body: { sig?: unknown }): Buffer {
  const { sig: _sig, ...rest } = body
  return Buffer.from(canonicalJson(rest))
}

/** A new key pair: the private key as PKCS#8 PEM (for a 0600 file), the public key to pin. */
export function generateSigningKey(): { privatePem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: publicText(publicKey) }
}

function publicText(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' })
  return `${PUBLIC_PREFIX}${jwk.x}`
}

/** A signer from a PKCS#8 PEM ed25519 private key. The key is never put in an error. */
export function createSigner(privatePem: string): Signer {
  let key: KeyObject
  try {
    key = createPrivateKey(privatePem)
  } catch {
    throw new ApiaryError('invalid_input', 'the signing key is not a PEM private key', 'signing key')
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ApiaryError('invalid_input', `the signing key is ${key.asymmetricKeyType ?? 'not'} an ed25519 key`, 'signing key')
  const publicKey = publicText(createPublicKey(key))
  return {
    publicKey,
    sign(body) {
      const sig = sign(null, withoutSig(body as { sig?: unknown }), key).toString('base64url')
      return { ...body, sig }
    },
    deriveKey(purpose) {
      const seed = Buffer.from(key.export({ format: 'jwk' }).d ?? '', 'base64url')
      try {
        return Buffer.from(hkdfSync('sha256', seed, 'apiary', purpose, 32))
      } finally {
        seed.fill(0)
      }
    },
  }
}

/** Parses a pinned public key (`ed25519:<base64url>`), naming `field` when it is not one. */
export function parsePublicKey(text: string, field = 'queen key'): KeyObject {
  const t = text.trim()
  const x = t.startsWith(PUBLIC_PREFIX) ? t.slice(PUBLIC_PREFIX.length) : ''
  if (!/^[A-Za-z0-9_-]{43}$/.test(x)) {
    throw new ApiaryError('invalid_input', `${field} must be an ed25519 public key written ed25519:<43 base64url characters> (the queen prints it and writes it to signing.pub)`, field)
  }
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
  } catch {
    throw new ApiaryError('invalid_input', `${field} is not a valid ed25519 public key`, field)
  }
}

export function createVerifier(publicKey: string, field?: string): Verifier {
  const key = parsePublicKey(publicKey, field)
  return {
    publicKey: publicText(key),
    verify(body) {
      if (typeof body.sig !== 'string' || body.sig.length > 128) return false
      try {
        return verify(null, withoutSig(body), key, Buffer.from(body.sig, 'base64url'))
      } catch {
        return false
      }
    },
  }
}
