import { type Control, type ControlOrder, type Grant, type HiveJob, MAX_CHUNK_NODES, type ShareChunk, type ShareOffer, type Task } from '../schema/messages.ts'
import type { Operation } from '../schema/operation.ts'
import type { Risk } from '../schema/risk.ts'
import { leafHash, merkleTree, type MerkleTree, verifyProof } from './merkle.ts'
import { digestOf, type Signer, type Verifier } from './signing.ts'

/** Slack past a share's longest possible run before its grant expires. */
const GRANT_SLACK_MS = 10 * 60_000
/**
 * What one round of a window may take beyond the task's deadlines: a silent node holds its
 * slot until the hive gives up on it (its result grace, 15 s by default), plus the bus.
 */
const ROUND_GRACE_MS = 60_000
const MAX_GRANT_MS = 7 * 24 * 3600_000
/** How long a control message may be acted on after it was signed. */
export const CONTROL_TTL_MS = 10 * 60_000

function leaves(nodes: readonly string[], agentless: ReadonlySet<string>) {
  return nodes.map((n) => leafHash(n, agentless.has(n)))
}

/**
 * Signs one region's share once, however many nodes it holds: the grant covers the Merkle
 * root of its nodes and the digest of its operation. The nodes travel in chunks of at most
 * `MAX_CHUNK_NODES`, so a region of 100,000 nodes stays under the server's max payload.
 */
export function signShare(share: HiveJob, signer: Signer, now: number, chunkNodes = MAX_CHUNK_NODES): { offer: ShareOffer; chunks: ShareChunk[] } {
  const agentless = new Set(share.agentless)
  const tree = merkleTree(leaves(share.nodes, agentless))
  const parts: string[][] = []
  for (let i = 0; i < share.nodes.length; i += chunkNodes) parts.push(share.nodes.slice(i, i + chunkNodes))
  // The longest the share can run: every node one after the other in windows of `concurrency`.
  const rounds = Math.ceil(share.nodes.length / share.concurrency)
  const life = Math.min(MAX_GRANT_MS, rounds * (share.timeoutMs + share.deliveryTimeoutMs + ROUND_GRACE_MS) + GRANT_SLACK_MS)
  const grant = signer.sign({
    v: 1 as const,
    jobId: share.jobId,
    phase: share.phase,
    attempt: share.attempt,
    region: share.region,
    op: digestOf(share.operation),
    nodes: share.nodes.length,
    chunks: parts.length,
    root: tree.root,
    targets: share.targets,
    confirm: share.confirm,
    concurrency: share.concurrency,
    maxErrors: share.maxErrors,
    errorsSoFar: share.errorsSoFar,
    timeoutMs: share.timeoutMs,
    deliveryTimeoutMs: share.deliveryTimeoutMs,
    outputCapBytes: share.outputCapBytes,
    issuedAt: now,
    expiresAt: now + life,
  })
  const of = (nodes: string[]) => ({ nodes, agentless: nodes.filter((n) => agentless.has(n)) })
  return {
    offer: { grant, operation: share.operation, ...of(parts[0]!) },
    chunks: parts.slice(1).map((nodes, i) => ({ jobId: share.jobId, phase: share.phase, attempt: share.attempt, index: i + 1, ...of(nodes) })),
  }
}

/** Why a grant cannot be acted on here and now, or null. */
function grantRefusal(grant: Grant, verifier: Verifier, region: string, now: number, verified?: Set<string>): string | null {
  if (grant.region !== region) return `the grant is for region ${grant.region}, not ${region}`
  if (now > grant.expiresAt) return `the grant expired at ${new Date(grant.expiresAt).toISOString()}`
  // Remembered by the digest of everything the grant says, its signature included: a grant that
  // differs in any field from one verified before is verified again, and fails.
  const key = verified ? digestOf(grant) : ''
  if (!verified?.has(key)) {
    if (!verifier.verify(grant)) return 'the grant is not signed by the pinned queen key'
    if (verified) {
      verified.add(key)
      if (verified.size > 1024) verified.delete(verified.values().next().value!)
    }
  }
  return null
}

/** A share the hive has checked and assembled, with the tree it proves its nodes with. */
export interface CheckedShare {
  share: HiveJob
  grant: Grant
  /** The proof that `node` is in the share. */
  proof(node: string): string[]
}

/**
 * Checks an offer and its chunks against the pinned queen key: signature, region, expiry,
 * operation digest, chunk count, node count and Merkle root. Returns the share or why not.
 */
export function assembleShare(offer: ShareOffer, chunks: readonly ShareChunk[], verifier: Verifier, region: string, now: number): CheckedShare | string {
  const { grant } = offer
  const why = grantRefusal(grant, verifier, region, now)
  if (why) return why
  if (digestOf(offer.operation) !== grant.op) return 'the operation is not the one the grant covers'
  if (chunks.length !== grant.chunks - 1) return `the share has ${chunks.length + 1} of its ${grant.chunks} chunks`
  const parts = [offer, ...[...chunks].sort((a, b) => a.index - b.index)]
  const nodes: string[] = []
  const agentless = new Set<string>()
  for (const [i, p] of parts.entries()) {
    if (i > 0 && ((p as ShareChunk).index !== i || (p as ShareChunk).jobId !== grant.jobId || (p as ShareChunk).phase !== grant.phase || (p as ShareChunk).attempt !== grant.attempt)) return 'the chunks do not belong together'
    const inChunk = new Set(p.nodes)
    for (const a of p.agentless) {
      if (!inChunk.has(a)) return `agentless node ${a} is not in its chunk`
      agentless.add(a)
    }
    nodes.push(...p.nodes)
  }
  if (nodes.length !== grant.nodes) return `the share holds ${nodes.length} nodes; the grant covers ${grant.nodes}`
  if (new Set(nodes).size !== nodes.length) return 'the share names a node twice'
  const tree: MerkleTree = merkleTree(leaves(nodes, agentless))
  if (tree.root !== grant.root) return 'the nodes are not the ones the grant covers'
  const index = new Map(nodes.map((n, i) => [n, i]))
  return {
    grant,
    share: {
      jobId: grant.jobId,
      phase: grant.phase,
      attempt: grant.attempt,
      region: grant.region,
      nodes,
      agentless: [...agentless],
      operation: offer.operation,
      concurrency: grant.concurrency,
      maxErrors: grant.maxErrors,
      errorsSoFar: grant.errorsSoFar,
      timeoutMs: grant.timeoutMs,
      deliveryTimeoutMs: grant.deliveryTimeoutMs,
      outputCapBytes: grant.outputCapBytes,
      targets: grant.targets,
      confirm: grant.confirm,
    },
    proof: (node) => tree.proof(index.get(node)!),
  }
}

export interface TaskCheck {
  verifier: Verifier
  /** The worker's region. */
  region: string
  /** Agent workers take agent nodes' tasks, SSH workers agentless ones'. */
  agentless: boolean
  now: number
  /** Grants already checked here, by digest (bounded): one verification per share, not per task. */
  verified?: Set<string>
  /**
   * The risk classifier, the same one the queen confirmed the job with: `classifyRisk` from
   * `@apiary/shared/risk` (passed in, so that this contract module loads no shell parser).
   */
  classify(op: Operation): Risk
}

/**
 * Why a worker must not run a task, or null: the queen's grant must be valid here and now and
 * cover this job, this operation, this node (its Merkle proof), the task's deadline and
 * output cap, and, for a destructive operation, a confirmation of exactly the job's targets.
 */
export function taskRefusal(task: Task, c: TaskCheck): string | null {
  const { grant } = task
  const why = grantRefusal(grant, c.verifier, c.region, c.now, c.verified)
  if (why) return why
  if (grant.jobId !== task.jobId) return `the grant is for job ${grant.jobId}`
  if (digestOf(task.operation) !== grant.op) return 'the operation is not the one the grant covers'
  if (task.timeoutMs !== grant.timeoutMs || task.outputCapBytes !== grant.outputCapBytes) return 'the deadline or output cap is not the one the grant covers'
  if (!verifyProof(leafHash(task.node, c.agentless), task.proof, grant.root)) return `node ${task.node} is not a target of this share`
  const risk = c.classify(task.operation)
  if (risk.class === 'destructive' && grant.confirm !== grant.targets) {
    return `destructive operation (${risk.reasons.join('; ')}) without a confirmation of its ${grant.targets} targets`
  }
  return null
}

/** A control message, signed, valid for `CONTROL_TTL_MS`. */
export function signControl(order: ControlOrder, signer: Signer, now: number): Control {
  return signer.sign({ ...order, issuedAt: now, expiresAt: now + CONTROL_TTL_MS })
}

/** Why a control message must not be acted on, or null. */
export function controlRefusal(control: Control, verifier: Verifier, subjectJobId: string, now: number): string | null {
  if (control.jobId !== subjectJobId) return `the control message is for job ${control.jobId}`
  if (now > control.expiresAt) return 'the control message expired'
  if (!verifier.verify(control)) return 'the control message is not signed by the pinned queen key'
  return null
}
