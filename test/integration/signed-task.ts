import { assembleShare, HiveJob, type HiveJobInput, signShare, type Task } from '@apiary/shared'
import { testQueenKey, testSigner } from '../harness/index.ts'

/**
 * A task of job `jobId` for `node`, as a hive hands it on from a share the queen signed (an
 * agent node unless `agentless`). A second call for the same job and node is a re-offer: a new
 * grant (attempt `attempt`) for the same task.
 */
export function signedTask(jobId: string, node: string, operation: HiveJobInput['operation'], o: { region?: string; agentless?: boolean; timeoutMs?: number; attempt?: number } = {}): Task {
  const region = o.region ?? 'eu'
  const share = HiveJob.parse({
    jobId,
    phase: 0,
    attempt: o.attempt ?? 0,
    region,
    nodes: [node],
    agentless: o.agentless ? [node] : [],
    operation,
    concurrency: 1,
    maxErrors: null,
    errorsSoFar: 0,
    timeoutMs: o.timeoutMs ?? 10_000,
    deliveryTimeoutMs: 1000,
    outputCapBytes: 1024,
    targets: 1,
  })
  const { offer, chunks } = signShare(share, testSigner, Date.now())
  const c = assembleShare(offer, chunks, testQueenKey, region, Date.now())
  if (typeof c === 'string') throw new Error(c)
  return { jobId, node, operation: c.share.operation, timeoutMs: c.share.timeoutMs, outputCapBytes: c.share.outputCapBytes, grant: c.grant, proof: c.proof(node) }
}
