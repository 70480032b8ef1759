import { ApiaryError, type Identity, permissionsFor } from '@apiary/shared'
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt'
import { createAccount, createOperator, createUser, fromSeed, type KeyPair } from '@nats-io/nkeys'
import { accountClaims, operatorClaims, systemAccountClaims, systemUserClaims, userClaims } from './claims.ts'
import { identityName } from './layout.ts'

/** The keys of a bus: the operator, the apiary account and its user-signing key, the system account. */
export interface Authority {
  operator: KeyPair
  account: KeyPair
  signing: KeyPair
  system: KeyPair
}

export const OPERATOR_NAME = 'apiary'
export const ACCOUNT_NAME = 'APIARY'
export const SYSTEM_ACCOUNT_NAME = 'SYS'

export function newAuthority(): Authority {
  return { operator: createOperator(), account: createAccount(), signing: createAccount(), system: createAccount() }
}

/** The seed of a key as it is written to its `.nk` file. */
export function seedText(kp: KeyPair): string {
  return new TextDecoder().decode(kp.getSeed())
}

/** A key from the seed in `file`; `prefix` is the seed's kind (`SO` operator, `SA` account). */
export function keyFromSeed(seed: string, prefix: 'SO' | 'SA', file: string): KeyPair {
  try {
    if (!seed.startsWith(prefix)) throw new Error(`not a ${prefix}… seed`)
    return fromSeed(new TextEncoder().encode(seed))
  } catch (err) {
    throw new ApiaryError('invalid_input', `${file} does not hold a valid ${prefix === 'SO' ? 'operator' : 'account'} nkey seed`, file, { cause: err })
  }
}

export function signOperator(a: Pick<Authority, 'operator' | 'system'>): Promise<string> {
  return encodeOperator(OPERATOR_NAME, a.operator, operatorClaims(a.system.getPublicKey()))
}

export function signSystemAccount(a: Pick<Authority, 'operator' | 'system'>): Promise<string> {
  return encodeAccount(SYSTEM_ACCOUNT_NAME, a.system.getPublicKey(), systemAccountClaims(), { signer: a.operator })
}

/** The apiary account's JWT, signed by the operator, with the revoked user keys and JetStream storage of `diskBytes` in all. */
export function signAccount(a: Pick<Authority, 'operator' | 'account' | 'signing'>, revocations: Readonly<Record<string, number>>, diskBytes: number): Promise<string> {
  return encodeAccount(ACCOUNT_NAME, a.account.getPublicKey(), accountClaims(a.signing.getPublicKey(), revocations, diskBytes), { signer: a.operator })
}

export interface IssuedUser {
  publicKey: string
  jwt: string
  /** The `.creds` file: the user JWT and the user's nkey seed. */
  creds: Uint8Array
}

/** A new user key for `who`, its JWT signed by the account's signing key with `permissionsFor(who)`. */
export async function issueUser(signing: KeyPair, accountPublicKey: string, who: Identity): Promise<IssuedUser> {
  const user = createUser()
  const jwt = await encodeUser(identityName(who), user, accountPublicKey, userClaims(permissionsFor(who)), { signer: signing })
  return { publicKey: user.getPublicKey(), jwt, creds: fmtCreds(jwt, user) }
}

/** The name of keeper's system-account user in its JWT. */
export const SYSTEM_USER_NAME = 'keeper.system'

/**
 * keeper's user of the system account, signed by the system account's own key: it pushes the
 * re-signed apiary account JWT to a running nats-server (`systemUserClaims`).
 */
export async function issueSystemUser(a: Pick<Authority, 'system' | 'account'>): Promise<IssuedUser> {
  const user = createUser()
  const jwt = await encodeUser(SYSTEM_USER_NAME, user, a.system, systemUserClaims(a.account.getPublicKey()))
  return { publicKey: user.getPublicKey(), jwt, creds: fmtCreds(jwt, user) }
}
