import { type BusPermissions, CLAIMS_BUCKET, LEASE_BUCKET, MAX_ACK_PENDING, SECRETS_BUCKET, STREAMS } from '@apiary/shared'
import type { Account, Operator, OperatorLimits, Permission, User } from '@nats-io/jwt'

/**
 * How long after a request arrived its receiver may answer it, in nanoseconds (a JWT's `ttl`
 * is a Go duration). Zero would mean the same to nats-server 2.9 (it substitutes its default,
 * 2 minutes), but then that number silently becomes our contract: it is stated here instead.
 * apiary's hives and workers acknowledge a request as soon as it arrives.
 */
export const RESPONSE_TTL_NS = 2 * 60 * 1e9

/** The account has no limits of its own: nats-server's (max_payload and so on) apply. */
const UNLIMITED: OperatorLimits = { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true, disallow_bearer: true }

/**
 * Only these subjects. An empty allow list would mean "everything" to nats-server, so an empty
 * list is spelled as a denial of all instead.
 */
function only(subjects: readonly string[]): Partial<Permission> {
  return subjects.length > 0 ? { allow: [...subjects] } : { deny: ['>'] }
}

/**
 * The permissions of a user JWT: publish and subscribe allow lists (everything else refused),
 * and, for a role that answers requests, `resp`: it may publish one reply to the reply subject
 * of each message it received, within `RESPONSE_TTL_NS`, whatever its publish list says.
 * Plain client connections only: no websocket, MQTT or leaf node with these credentials.
 */
export function userClaims(p: BusPermissions): Partial<User> {
  return {
    pub: only(p.pub),
    sub: only(p.sub),
    ...(p.respond ? { resp: { max: 1, ttl: RESPONSE_TTL_NS } } : {}),
    allowed_connection_types: ['STANDARD'],
    // What one identity may send and hold: a message past `payload` or a subscription past
    // `subs` is refused by the broker.
    payload: p.maxPayload,
    subs: p.maxSubs,
    data: -1,
  }
}

/** apiary's streams: the events, the job log, and the lease, secrets and claims buckets' (`KV_<bucket>`). */
export const JETSTREAM_STREAMS = [STREAMS.events, STREAMS.log, `KV_${LEASE_BUCKET}`, `KV_${SECRETS_BUCKET}`, `KV_${CLAIMS_BUCKET}`] as const

/**
 * The most consumers one stream may have (nats-server counts them per stream): the leader's
 * durable one, and an ordered reader per queen, per rebuild and per lease watch, each replaced
 * after a gap while the old one's deletion may still be on its way.
 */
export const JETSTREAM_CONSUMERS_PER_STREAM = 128

/**
 * JetStream for the apiary account (nats-server enables it for an account whose JWT gives it
 * storage). On disk only: no memory storage, so every stream survives a restart. As many streams
 * as apiary keeps, so nothing else is made in the account. `diskBytes` bounds what all streams
 * may hold together, counting every replica (an R3 stream of 1 GiB takes 3 GiB): a stream whose
 * max_bytes (times its replicas) does not fit is refused when it is made.
 */
export function jetStreamLimits(diskBytes: number): OperatorLimits {
  return {
    disk_storage: diskBytes,
    mem_storage: 0,
    streams: JETSTREAM_STREAMS.length,
    consumer: JETSTREAM_CONSUMERS_PER_STREAM,
    // What a durable consumer asks for, and no more: nats-server refuses a consumer that asks
    // for more than the account allows.
    max_ack_pending: MAX_ACK_PENDING,
  }
}

/**
 * The apiary account: users are signed by its signing key (so the account's own key can stay
 * offline), and `revocations` maps a user public key to the second from which its JWTs no
 * longer count (nats-server refuses a user whose JWT was issued at or before it). JetStream
 * as `jetStreamLimits(diskBytes)` says.
 */
export function accountClaims(signingKey: string, revocations: Readonly<Record<string, number>>, diskBytes: number): Partial<Account> {
  return {
    signing_keys: [signingKey],
    limits: { ...UNLIMITED, ...jetStreamLimits(diskBytes) },
    ...(Object.keys(revocations).length > 0 ? { revocations: { ...revocations } } : {}),
  }
}

/** The system account that nats-server needs in operator mode; its one user is keeper's (`systemUserClaims`). */
export function systemAccountClaims(): Partial<Account> {
  return { limits: { ...UNLIMITED } }
}

export function operatorClaims(systemAccount: string): Partial<Operator> {
  return { system_account: systemAccount }
}

/**
 * Where nats-server 2.9 takes a new JWT of `account` from a user of the system account (the
 * `REQ` form; it also listens on the older `$SYS.ACCOUNT.<key>.CLAIMS.UPDATE`). It answers on
 * the request's reply subject.
 */
export function claimsUpdateSubject(account: string): string {
  return `$SYS.REQ.ACCOUNT.${account}.CLAIMS.UPDATE`
}

/** The inbox prefix keeper's system user connects with: its only subscription is its replies. */
export const SYSTEM_INBOX_PREFIX = '_INBOX.keeper'

/**
 * keeper's user of the system account: it may publish a claims update of the apiary account
 * `account` and nothing else (not the system account's own, not the server's monitoring or
 * other accounts' requests), and subscribe only to its own inbox, where nats-server answers.
 * It answers nobody (no `resp`). The server checks that a pushed JWT is signed by the operator,
 * so the credential cannot forge an account; it can push back an older one, so it is a secret.
 */
export function systemUserClaims(account: string): Partial<User> {
  return {
    pub: only([claimsUpdateSubject(account)]),
    sub: only([`${SYSTEM_INBOX_PREFIX}.>`]),
    allowed_connection_types: ['STANDARD'],
  }
}
