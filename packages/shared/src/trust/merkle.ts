import { hash } from 'node:crypto'

/**
 * A Merkle tree over a share's nodes, so that one signature covers a region of any size and
 * each node checks, with about log2(n) hashes, that it is one of the targets. A leaf is
 * `sha256(0x00 ‖ kind ‖ ':' ‖ node id)` (kind `a` for an agent, `s` for an agentless node
 * reached over SSH), an inner node `sha256(0x01 ‖ left ‖ right)`; an odd last node rises
 * to the next level as it is. Leaves and inner nodes hash apart, so a leaf cannot pose as one.
 */
const LEAF = Buffer.from([0])
const INNER = Buffer.from([1])

const sha256 = (data: Buffer): Buffer => hash('sha256', data, 'buffer')

export function leafHash(node: string, agentless: boolean): Buffer {
  return sha256(Buffer.concat([LEAF, Buffer.from(`${agentless ? 's' : 'a'}:${node}`)]))
}

function inner(l: Buffer, r: Buffer): Buffer {
  return sha256(Buffer.concat([INNER, l, r], 65))
}

export interface MerkleTree {
  root: string
  /** The proof of the leaf at `index`: each step `l<hex>` (sibling on the left) or `r<hex>`. */
  proof(index: number): string[]
}

export function merkleTree(leaves: readonly Buffer[]): MerkleTree {
  if (leaves.length === 0) throw new Error('a Merkle tree needs at least one leaf')
  const levels: Buffer[][] = [leaves.slice()]
  while (levels[levels.length - 1]!.length > 1) {
    const below = levels[levels.length - 1]!
    const up: Buffer[] = []
    for (let i = 0; i < below.length; i += 2) up.push(i + 1 < below.length ? inner(below[i]!, below[i + 1]!) : below[i]!)
    levels.push(up)
  }
  return {
    root: levels[levels.length - 1]![0]!.toString('hex'),
    proof(index) {
      const out: string[] = []
      let i = index
      for (let l = 0; l < levels.length - 1; l++) {
        const level = levels[l]!
        const sibling = i % 2 === 0 ? i + 1 : i - 1
        if (sibling < level.length) out.push(`${i % 2 === 0 ? 'r' : 'l'}${level[sibling]!.toString('hex')}`)
        i = Math.floor(i / 2)
      }
      return out
    },
  }
}

/** Whether `proof` leads from `leaf` to `root`. */
export function verifyProof(leaf: Buffer, proof: readonly string[], root: string): boolean {
  let h = leaf
  for (const step of proof) {
    if (!/^[lr][0-9a-f]{64}$/.test(step)) return false
    const sib = Buffer.from(step.slice(1), 'hex')
    h = step[0] === 'l' ? inner(sib, h) : inner(h, sib)
  }
  return h.toString('hex') === root
}
