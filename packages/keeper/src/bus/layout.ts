import { join } from 'node:path'
import type { Identity, Role } from '@apiary/shared'

/** The roles a bus credential is issued for. */
export const ROLES = ['queen', 'hive', 'worker', 'ssh-worker'] as const satisfies readonly Role[]

/**
 * The files of a bus directory (the directory 0700, every file 0600). The `.nk` files are the
 * secrets: whoever holds `operator.nk` can sign accounts, whoever holds `account-signing.nk`
 * can issue users of the apiary account.
 */
export const BUS_FILES = {
  operatorSeed: 'operator.nk',
  operatorJwt: 'operator.jwt',
  accountSeed: 'account.nk',
  signingSeed: 'account-signing.nk',
  accountJwt: 'account.jwt',
  systemSeed: 'system-account.nk',
  systemJwt: 'system-account.jwt',
  /** keeper's user of the system account (a secret): pushes a re-signed account JWT to nats-server. */
  systemCreds: 'sys.creds',
  serverConfig: 'nats-server.conf',
  /** Where each server's config goes and what it listens on, so a revoke rewrites the same files. */
  serverSettings: 'server.json',
  /** The password a cluster's routes present to each other (a secret): written into every server's config. */
  routeSecret: 'cluster-route.secret',
  registry: 'identities.json',
  creds: 'creds',
  lock: '.lock',
} as const

/** `worker.eu.web-1`, `queen.queen`: the name of an identity's user JWT and its `.creds` file. */
export function identityName(who: Identity): string {
  return who.role === 'queen' ? `queen.${who.id}` : `${who.role}.${who.region ?? ''}.${who.id}`
}

/** `<dir>/creds/<role>.<region>.<id>.creds` (the queen's: `queen.<id>.creds`). */
export function defaultCredsPath(dir: string, who: Identity): string {
  return join(dir, BUS_FILES.creds, `${identityName(who)}.creds`)
}

/** `worker web-1 of eu`, `queen queen`: an identity in a sentence. */
export function describeIdentity(who: Identity): string {
  return who.role === 'queen' ? `queen ${who.id}` : `${who.role} ${who.id} of ${who.region ?? '?'}`
}

export function sameIdentity(a: Identity, b: Identity): boolean {
  return a.role === b.role && a.id === b.id && (a.role === 'queen' || a.region === b.region)
}
