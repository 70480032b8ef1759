import { ApiaryError, type Identity, NodeId, parseOrThrow, Region } from '@apiary/shared'
import { z } from 'zod'
import { ROLES, sameIdentity } from './layout.ts'

/** One issued credential: who it is for, its user key, when it was issued and revoked. */
export const RegistryEntry = z.object({
  role: z.enum(ROLES),
  region: Region.optional(),
  id: NodeId,
  publicKey: z.string().regex(/^U[A-Z2-7]{55}$/, 'is not a user public key'),
  issuedAt: z.iso.datetime(),
  revokedAt: z.iso.datetime().nullable(),
})
export type RegistryEntry = z.infer<typeof RegistryEntry>

/**
 * `identities.json`: every credential ever issued from this bus directory, in the order
 * issued. Re-issuing an identity adds an entry and revokes the previous ones, so the account's
 * revocations can always be derived from this file alone.
 */
export const Registry = z.object({ version: z.literal(1), identities: z.array(RegistryEntry) })
export type Registry = z.infer<typeof Registry>

export function emptyRegistry(): Registry {
  return { version: 1, identities: [] }
}

export function parseRegistry(text: string, file: string): Registry {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ApiaryError('invalid_input', `${file} is not valid JSON`, file, { cause: err })
  }
  return parseOrThrow(Registry, json, file)
}

function entryOf(who: Identity, publicKey: string, now: Date): RegistryEntry {
  return { role: who.role, ...(who.role === 'queen' ? {} : { region: who.region }), id: who.id, publicKey, issuedAt: now.toISOString(), revokedAt: null }
}

function revoke(reg: Registry, who: Identity, now: Date): { identities: RegistryEntry[]; revoked: RegistryEntry[] } {
  const revoked: RegistryEntry[] = []
  const identities = reg.identities.map((e) => {
    if (e.revokedAt !== null || !sameIdentity(e, who)) return e
    const r = { ...e, revokedAt: now.toISOString() }
    revoked.push(r)
    return r
  })
  return { identities, revoked }
}

/**
 * A new credential for `who`; its earlier ones, still active, are revoked as of `now`. A node
 * id is one node fleet-wide: a worker of the same id active in another region is refused (the
 * queen knows a node by its id, so the second would take the first's place and its jobs).
 */
export function recordIssue(reg: Registry, who: Identity, publicKey: string, now: Date): { registry: Registry; revoked: RegistryEntry[] } {
  if (who.role === 'worker') {
    const elsewhere = reg.identities.find((e) => e.revokedAt === null && e.role === 'worker' && e.id === who.id && e.region !== who.region)
    if (elsewhere) {
      throw new ApiaryError('conflict', `node ${who.id} is enrolled in region ${elsewhere.region}: revoke it there first (keeper bus revoke --role worker --region ${elsewhere.region} --node-id ${who.id})`, '--node-id')
    }
  }
  const { identities, revoked } = revoke(reg, who, now)
  return { registry: { ...reg, identities: [...identities, entryOf(who, publicKey, now)] }, revoked }
}

/** Revokes every active credential of `who` as of `now`; `revoked` is empty when it had none. */
export function recordRevoke(reg: Registry, who: Identity, now: Date): { registry: Registry; revoked: RegistryEntry[] } {
  const { identities, revoked } = revoke(reg, who, now)
  return { registry: { ...reg, identities }, revoked }
}

/**
 * The account JWT's `revocations`: each revoked user key and the second it was revoked.
 * nats-server refuses a user whose JWT was issued (`iat`, in seconds) at or before that second;
 * a revocation is always recorded after its issue, so the floor of both keeps that true.
 */
export function revocationsOf(reg: Registry): Record<string, number> {
  const out: Record<string, number> = {}
  for (const e of reg.identities) if (e.revokedAt !== null) out[e.publicKey] = Math.floor(Date.parse(e.revokedAt) / 1000)
  return out
}
