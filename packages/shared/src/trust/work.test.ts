import { describe, expect, it } from 'vitest'
import { classifyRisk } from '../risk/index.ts'
import { BODY_LIMITS, HiveJob, MAX_CHUNK_NODES, type Task } from '../schema/messages.ts'
import { leafHash, merkleTree, verifyProof } from './merkle.ts'
import { canonicalJson, createSigner, createVerifier, digestOf, generateSigningKey, parsePublicKey } from './signing.ts'
import { assembleShare, type CheckedShare, controlRefusal, signControl, signShare, taskRefusal } from './work.ts'

const queen = createSigner(generateSigningKey().privatePem)
const pinned = createVerifier(queen.publicKey)
const impostor = createSigner(generateSigningKey().privatePem)
const T0 = 1_800_000_000_000

const share = (over: Partial<HiveJob> = {}): HiveJob =>
  HiveJob.parse({
    jobId: 'jabc1234',
    phase: 0,
    region: 'eu',
    nodes: ['web-1', 'web-2', 'web-3', 'db-1'],
    agentless: ['db-1'],
    operation: { type: 'exec', argv: ['uptime'] },
    concurrency: 2,
    maxErrors: null,
    errorsSoFar: 0,
    timeoutMs: 30_000,
    deliveryTimeoutMs: 5_000,
    outputCapBytes: 1024,
    targets: 4,
    confirm: null,
    ...over,
  })

function checked(s = share(), signer = queen): CheckedShare {
  const { offer, chunks } = signShare(s, signer, T0)
  const c = assembleShare(offer, chunks, pinned, s.region, T0)
  if (typeof c === 'string') throw new Error(c)
  return c
}

function taskFor(c: CheckedShare, node: string): Task {
  return { jobId: c.share.jobId, node, operation: c.share.operation, timeoutMs: c.share.timeoutMs, outputCapBytes: c.share.outputCapBytes, grant: c.grant, proof: c.proof(node) }
}

const agent = { verifier: pinned, region: 'eu', agentless: false, now: T0 + 1000, classify: classifyRisk }

describe('canonical JSON', () => {
  it('gives the same bytes whatever the key order, and leaves undefined out', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":2,"z":1}]},"b":1}')
  })
})

describe('the Merkle tree of a share', () => {
  it('proves every leaf of trees of any size, and no other leaf', () => {
    for (const n of [1, 2, 3, 5, 8, 13, 100]) {
      const ids = Array.from({ length: n }, (_, i) => `n-${i}`)
      const tree = merkleTree(ids.map((id) => leafHash(id, false)))
      for (let i = 0; i < n; i++) expect(verifyProof(leafHash(ids[i]!, false), tree.proof(i), tree.root)).toBe(true)
      expect(verifyProof(leafHash('n-x', false), tree.proof(0), tree.root)).toBe(false)
      // An agent node's proof does not hold for the same id reached over SSH.
      expect(verifyProof(leafHash(ids[0]!, true), tree.proof(0), tree.root)).toBe(false)
    }
  })
  it('needs about log2(n) steps: 17 for 100,000 nodes', () => {
    const tree = merkleTree(Array.from({ length: 100_000 }, (_, i) => leafHash(`n-${i}`, false)))
    expect(tree.proof(77_777).length).toBeLessThanOrEqual(17)
  })
})

describe('signed shares', () => {
  it('signs a share once and assembles it back from its chunks', () => {
    const nodes = Array.from({ length: 12 }, (_, i) => `n-${i}`)
    const s = share({ nodes, agentless: ['n-3', 'n-11'], targets: 12 })
    const { offer, chunks } = signShare(s, queen, T0, 5)
    expect(offer.grant.chunks).toBe(3)
    expect(chunks.map((c) => c.nodes.length)).toEqual([5, 2])
    expect(chunks[1]!.agentless).toEqual(['n-11'])
    const c = assembleShare(offer, chunks, pinned, 'eu', T0)
    expect(typeof c === 'string' ? c : c.share).toEqual(s)
  })

  it.each([
    ['another key signed it', (o: ReturnType<typeof signShare>) => ({ ...o, offer: { ...o.offer, grant: { ...impostor.sign({ ...o.offer.grant }) } } }), /not signed by the pinned queen key/],
    ['the operation was swapped', (o: ReturnType<typeof signShare>) => ({ ...o, offer: { ...o.offer, operation: { type: 'exec' as const, shell: false, argv: ['rm', '-rf', '/'] } } }), /operation is not the one/],
    ['a node was added', (o: ReturnType<typeof signShare>) => ({ ...o, offer: { ...o.offer, nodes: [...o.offer.nodes, 'evil-1'] } }), /holds 5 nodes; the grant covers 4/],
    ['a node was replaced', (o: ReturnType<typeof signShare>) => ({ ...o, offer: { ...o.offer, nodes: ['evil-1', ...o.offer.nodes.slice(1)] } }), /not the ones the grant covers/],
    ['an agent node was made agentless', (o: ReturnType<typeof signShare>) => ({ ...o, offer: { ...o.offer, agentless: ['web-1', 'db-1'] } }), /not the ones the grant covers/],
    ['the concurrency was raised', (o: ReturnType<typeof signShare>) => ({ ...o, offer: { ...o.offer, grant: { ...o.offer.grant, concurrency: 1000 } } }), /not signed/],
  ])('refuses a share when %s', (_what, alter, reason) => {
    const { offer, chunks } = alter(signShare(share(), queen, T0))
    expect(assembleShare(offer, chunks, pinned, 'eu', T0)).toMatch(reason)
  })

  it('sends at most 5,000 nodes a message by default, and 100,000 nodes under the largest body a hive reads', () => {
    const nodes = Array.from({ length: 100_000 }, (_, i) => `node-${String(i).padStart(6, '0')}.eu.example.com`)
    const { offer, chunks } = signShare(share({ nodes, agentless: [], targets: nodes.length }), queen, T0)
    expect([offer.nodes.length, ...chunks.map((c) => c.nodes.length)]).toEqual(Array(20).fill(MAX_CHUNK_NODES))
    for (const c of chunks) expect(Buffer.byteLength(JSON.stringify(c))).toBeLessThan(BODY_LIMITS.chunk)
  })

  it('refuses an expired share, one for another region, and one with a chunk missing', () => {
    const { offer, chunks } = signShare(share(), queen, T0)
    expect(assembleShare(offer, chunks, pinned, 'eu', offer.grant.expiresAt + 1)).toMatch(/expired/)
    expect(assembleShare(offer, chunks, pinned, 'us', T0)).toMatch(/for region eu, not us/)
    const big = signShare(share({ nodes: ['a', 'b', 'c'], agentless: [] }), queen, T0, 1)
    expect(assembleShare(big.offer, big.chunks.slice(1), pinned, 'eu', T0)).toMatch(/2 of its 3 chunks/)
  })

  it('expires when the share could not still be running: its rounds of timeout, delivery and result grace, plus slack', () => {
    const { offer } = signShare(share(), queen, T0)
    expect(offer.grant.expiresAt - T0).toBe(2 * (30_000 + 5_000 + 60_000) + 10 * 60_000)
    // Never more than the 7 days a job may last.
    const slow = signShare(share({ concurrency: 1, timeoutMs: 7 * 86_400_000 }), queen, T0).offer
    expect(slow.grant.expiresAt - T0).toBe(7 * 86_400_000)
  })
})

describe('a worker checks its task', () => {
  const c = checked()
  it('runs a task the grant covers, on the node and executor it names', () => {
    expect(taskRefusal(taskFor(c, 'web-2'), agent)).toBeNull()
    expect(taskRefusal(taskFor(c, 'db-1'), { ...agent, agentless: true })).toBeNull()
  })
  it.each([
    ['for a node outside the share', (t: Task) => ({ ...t, node: 'web-9' }), /web-9 is not a target/],
    ['with another node’s proof', (t: Task) => ({ ...t, proof: c.proof('web-3') }), /not a target/],
    ['with another operation', (t: Task) => ({ ...t, operation: { type: 'exec' as const, shell: true, command: 'id > /tmp/pwned' } }), /operation is not the one/],
    ['with a longer deadline', (t: Task) => ({ ...t, timeoutMs: 3_600_000 }), /deadline or output cap/],
    ['of another job', (t: Task) => ({ ...t, jobId: 'jother123' }), /grant is for job jabc1234/],
    ['signed by another key', (t: Task) => ({ ...t, grant: impostor.sign({ ...t.grant }) }), /not signed by the pinned queen key/],
    ['with no signature at all', (t: Task) => ({ ...t, grant: { ...t.grant, sig: 'A'.repeat(86) } }), /not signed/],
  ])('refuses a task %s', (_what, alter, reason) => {
    expect(taskRefusal(alter(taskFor(c, 'web-1')), agent)).toMatch(reason)
  })
  it('refuses an agentless node’s task at an agent, and an expired or other region’s grant', () => {
    expect(taskRefusal(taskFor(c, 'db-1'), agent)).toMatch(/db-1 is not a target/)
    expect(taskRefusal(taskFor(c, 'web-1'), { ...agent, now: c.grant.expiresAt + 1 })).toMatch(/expired/)
    expect(taskRefusal(taskFor(c, 'web-1'), { ...agent, region: 'us' })).toMatch(/for region eu, not us/)
  })
  it('refuses a destructive operation the queen did not see confirmed for all its targets', () => {
    const rm = { type: 'exec' as const, shell: false, argv: ['kill', '-0', '-1'] }
    const unconfirmed = checked(share({ operation: rm }))
    expect(taskRefusal(taskFor(unconfirmed, 'web-1'), agent)).toMatch(/destructive operation .* without a confirmation of its 4 targets/)
    const wrongCount = checked(share({ operation: rm, confirm: 3 }))
    expect(taskRefusal(taskFor(wrongCount, 'web-1'), agent)).toMatch(/without a confirmation/)
    const confirmed = checked(share({ operation: rm, confirm: 4 }))
    expect(taskRefusal(taskFor(confirmed, 'web-1'), agent)).toBeNull()
  })
  it('verifies a share’s signature once however many of its tasks come', () => {
    const verified = new Set<string>()
    let calls = 0
    const counting = { publicKey: pinned.publicKey, verify: (b: { sig: string }) => (calls++, pinned.verify(b)) }
    for (const n of ['web-1', 'web-2', 'web-3']) expect(taskRefusal(taskFor(c, n), { ...agent, verifier: counting, verified })).toBeNull()
    expect(calls).toBe(1)
    // A grant verified once cannot lend its signature to another: any field changed, the same
    // signature kept, is verified again and refused (the job, the operation, the root, the
    // confirmation, the deadline, the expiry).
    const evil = { type: 'exec' as const, shell: true, command: 'id > /tmp/pwned' }
    const tree = merkleTree([leafHash('db-9', false)])
    const altered = {
      ...taskFor(c, 'web-1'),
      jobId: 'jevil00001',
      node: 'db-9',
      operation: evil,
      timeoutMs: 600_000,
      grant: { ...c.grant, jobId: 'jevil00001', op: digestOf(HiveJob.shape.operation.parse(evil)), root: tree.root, nodes: 1, timeoutMs: 600_000, expiresAt: c.grant.expiresAt + 365 * 86_400_000 },
      proof: tree.proof(0),
    }
    for (const field of ['jobId', 'op', 'root', 'nodes', 'timeoutMs', 'expiresAt'] as const) {
      const one = { ...taskFor(c, 'web-1'), grant: { ...c.grant, [field]: altered.grant[field] } }
      expect(taskRefusal(one, { ...agent, verifier: counting, verified }), field).not.toBeNull()
    }
    expect(taskRefusal(altered, { ...agent, verifier: counting, verified })).toMatch(/not signed by the pinned queen key/)
    // A forged grant is never remembered as verified.
    const forged = { ...taskFor(c, 'web-1'), grant: impostor.sign({ ...c.grant }) }
    expect(taskRefusal(forged, { ...agent, verifier: counting, verified })).toMatch(/not signed/)
    expect(taskRefusal(forged, { ...agent, verifier: counting, verified })).toMatch(/not signed/)
  })
})

describe('control messages', () => {
  const order = { jobId: 'jabc1234', action: 'cancel' as const, reason: 'operator asked', outcome: 'cancelled' as const }
  it('acts on the queen’s, for the job of its subject, until it expires', () => {
    const c = signControl(order, queen, T0)
    expect(controlRefusal(c, pinned, 'jabc1234', T0 + 1)).toBeNull()
    expect(controlRefusal(c, pinned, 'jother123', T0 + 1)).toMatch(/for job jabc1234/)
    expect(controlRefusal(c, pinned, 'jabc1234', c.expiresAt + 1)).toMatch(/expired/)
  })
  it('ignores a forged or altered one', () => {
    expect(controlRefusal(signControl(order, impostor, T0), pinned, 'jabc1234', T0)).toMatch(/not signed/)
    const c = signControl(order, queen, T0)
    expect(controlRefusal({ ...c, reason: 'attacker’s cause' }, pinned, 'jabc1234', T0)).toMatch(/not signed/)
  })
})

describe('keys', () => {
  it('refuses a public key that is not one, naming the field', () => {
    expect(() => parsePublicKey('ssh-ed25519 AAAA', '--queen-key')).toThrow(/--queen-key must be an ed25519 public key/)
    expect(() => createSigner('not a key')).toThrow(/not a PEM private key/)
  })
})
