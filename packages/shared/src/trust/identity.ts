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
 * Least privilege per role (DESIGN.md, "Trust"): the subjects of its own node or region, its
 * own heartbeat, replies through its own inbox prefix.
 */
export function permissionsFor(who: Identity): BusPermissions {
  const p = subjects.prefix
  const inbox = `${subjects.inboxPrefix(who.role, who.id, who.region)}.>`
  if (who.role === 'queen') {
    return {
      pub: [`${p}.hive.*.jobs`, `${p}.hive.*.chunk.*`, subjects.controlAll],
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
        pub: [`${p}.sev.${r}.*.*`, subjects.heartbeat('ssh-worker', region, who.id)],
        sub: [subjects.ssh(region), subjects.controlAll, inbox],
        respond: true,
        maxPayload: PAYLOAD.sshWorker,
        maxSubs: 16,
      }
  }
}
