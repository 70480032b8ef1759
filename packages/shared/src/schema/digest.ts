import { createHash } from 'node:crypto'

/**
 * The output digest of a node's result (`digest` in `node.finished`): the SHA-256 of each
 * stream's kept bytes, hashed apart so that `a` on stdout differs from `a` on stderr, then
 * together, 16 hex digits. Equal digests, equal output: result groups are built on it.
 *
 * @example outputDigest(sha256(stdout), sha256(stderr))
 */
export function outputDigest(stdoutSha256: Uint8Array, stderrSha256: Uint8Array): string {
  return createHash('sha256').update(stdoutSha256).update(stderrSha256).digest('hex').slice(0, 16)
}
