import { CLAIMS_BUCKET, LEASE_BUCKET, SECRETS_BUCKET, STREAMS } from '../bus/durable.ts'
import { subjects, subjectToken, type Role } from '../subjects.ts'

/**
 * Who a bus connection is: its role, its id (the node id for an agent worker) and, for every
 * role but the queen, its region. A credential is issued for one identity, and nats-server
 * lets it publish and receive only what `permissionsFor` grants.
 */
export interface Identity {
  role: Role
  id: string
  region?: string
}

/** What nats-server lets one identity do (the shape of a NATS user's permissions). */
export interface BusPermissions {
  pub: string[]
  sub: string[]
  /** May answer requests it received (once each, to the requester's reply subject). */
  respond: boolean
  /** The largest message it may publish, in bytes: the broker refuses more. */
  maxPayload: number
  /** The most subscriptions it may hold at once. */
  maxSubs: number
}

/** A node's events, heartbeat and acknowledgements fit in this; tasks and shares carry an operation (1 MiB of stdin). */
const PAYLOAD = { node: 512 * 1024, sshWorker: 4 * 1024 * 1024, operation: 8 * 1024 * 1024 }

/**
 * What the queen may ask of JetStream, on apiary's streams and lease bucket only. These are
 * nats-server's API subjects (2.9: server/jetstream_api.go), as nats.js 3.3 sends them:
 *
 * - the streams and the bucket's stream (`KV_<bucket>`): create, update, info (`ensure`,
 *   `lastSeq`, and an ordered reader asks for its stream's info first); never delete, list,
 *   or another stream; purge only `APIARY_EVENTS`, whose leader trims what it applied (the
 *   broker cannot limit what a purge takes: the queen, which holds the signing key, is trusted).
 * - consumers of the two streams: create (nats.js names every consumer, so on 2.9 it always
 *   sends `CONSUMER.CREATE.<stream>.<name>[.<filter>]`, never the older `DURABLE.CREATE`), info,
 *   delete (a durable consumer made again from its ack floor, an ordered reader replacing its
 *   consumer after a gap), pull (`MSG.NEXT`) and acknowledge (`$JS.ACK.<stream>.<consumer>.…`).
 * - the lease bucket's keys: put, create, update and delete are publishes to
 *   `$KV.<bucket>.<key>`; a read is `STREAM.MSG.GET.KV_<bucket>` (the bucket is read without
 *   direct gets, from the stream's leader, so a revision is never stale).
 * - the secrets bucket (`KV_APIARY_SECRETS`, the wrapped data keys of running jobs) as the lease
 *   bucket: its keys' subjects and `STREAM.MSG.GET` of its stream. No other identity may, so a
 *   hive or worker never holds even a wrapped key.
 * - the claims bucket (`KV_APIARY_CLAIMS`): made and kept by `ensure` like the others; the queen
 *   neither reads nor writes a claim (the SSH workers do, `sshWorkerClaims`).
 * - `$JS.API.INFO`, the account's JetStream limits and usage, which `ensure` asks first.
 *
 * Deliveries, API answers and publish acknowledgements come to its own inbox.
 */
function queenJetStream(): string[] {
  const api = '$JS.API'
  const kv = `KV_${LEASE_BUCKET}`
  const secrets = `KV_${SECRETS_BUCKET}`
  const claims = `KV_${CLAIMS_BUCKET}`
  const streams = [STREAMS.events, STREAMS.log]
  return [
    `${api}.INFO`,
    ...[...streams, kv, secrets, claims].flatMap((s) => [`${api}.STREAM.CREATE.${s}`, `${api}.STREAM.UPDATE.${s}`, `${api}.STREAM.INFO.${s}`]),
    // What the leader applied, trimmed from the events stream (never the log).
    `${api}.STREAM.PURGE.${STREAMS.events}`,
    ...streams.flatMap((s) => [`${api}.CONSUMER.CREATE.${s}.>`, `${api}.CONSUMER.INFO.${s}.*`, `${api}.CONSUMER.DELETE.${s}.*`, `${api}.CONSUMER.MSG.NEXT.${s}.*`, `$JS.ACK.${s}.>`]),
    `$KV.${LEASE_BUCKET}.>`,
    `${api}.STREAM.MSG.GET.${kv}`,
    `$KV.${SECRETS_BUCKET}.>`,
    `${api}.STREAM.MSG.GET.${secrets}`,
  ]
}

/**
 * What an SSH worker of `region` may do with the claims bucket: create, update and read its
 * region's keys (`claimKey` puts the region first), nothing else of JetStream. A write is a
 * publish to the key's subject (the revision check travels in a header); a read is a direct get
 * whose subject names the key, so the broker can tell one region's reads from another's
 * (a `STREAM.MSG.GET` names the key only in its body). A publish cannot be told apart from a
 * delete marker, which the broker cannot refuse: an identity that could write one may already
 * run commands on its region's hosts. The bucket takes no rollup, so nobody purges a key.
 */
function sshWorkerClaims(region: string): string[] {
  const keys = `$KV.${CLAIMS_BUCKET}.${subjectToken(region, 'region')}.>`
  return [keys, `$JS.API.DIRECT.GET.KV_${CLAIMS_BUCKET}.${keys}`]
}

/**
 * Least privilege per role (DESIGN.md, "Trust"): the subjects of its own node or region, its
 * own heartbeat, replies through its own inbox prefix.
 *
 * JetStream: only the queen uses its API (`queenJetStream`), and only the queen writes the job
 * log. A hive or worker stores its events with a plain publish on the subjects it already may
 * publish, asking for a reply: the stream's acknowledgement comes to its inbox. It cannot
 * make, change, read, purge or delete a stream, nor touch a lease. An SSH worker also claims
 * its region's tasks in the claims bucket (`sshWorkerClaims`).
 */
export function permissionsFor(who: Identity): BusPermissions {
  const p = subjects.prefix
  const inbox = `${subjects.inboxPrefix(who.role, who.id, who.region)}.>`
  if (who.role === 'queen') {
    return {
      pub: [`${p}.hive.*.jobs`, `${p}.hive.*.chunk.*`, subjects.controlAll, subjects.log, ...queenJetStream()],
      sub: [subjects.nodeEventsAll, subjects.sshEventsAll, subjects.hiveEventsAll, subjects.heartbeatAll, inbox],
      respond: false,
      maxPayload: PAYLOAD.operation,
      maxSubs: 100,
    }
  }
  const region = who.region
  if (region === undefined) throw new Error(`a ${who.role} identity needs a region`)
  const r = subjectToken(region, 'region')
  const id = subjectToken(who.id, who.role === 'worker' ? 'node id' : 'id')
  switch (who.role) {
    case 'hive':
      return {
        pub: [`${p}.task.${r}.*`, subjects.ssh(region), `${p}.hev.${r}.*`, subjects.heartbeat('hive', region, who.id)],
        sub: [subjects.hiveJobs(region), `${p}.hive.${r}.chunk.${id}`, `${p}.ev.${r}.*.*`, `${p}.sev.${r}.*.*`, subjects.controlAll, inbox],
        respond: true,
        maxPayload: PAYLOAD.operation,
        // Three per share it runs.
        maxSubs: 30_000,
      }
    case 'worker':
      return {
        pub: [`${p}.ev.${r}.${id}.*`, subjects.heartbeat('worker', region, who.id)],
        sub: [subjects.task(region, who.id), subjects.controlAll, inbox],
        respond: true,
        maxPayload: PAYLOAD.node,
        maxSubs: 16,
      }
    case 'ssh-worker':
      return {
        pub: [`${p}.sev.${r}.*.*`, subjects.heartbeat('ssh-worker', region, who.id), ...sshWorkerClaims(region)],
        sub: [subjects.ssh(region), subjects.controlAll, inbox],
        respond: true,
        maxPayload: PAYLOAD.sshWorker,
        maxSubs: 16,
      }
  }
}
