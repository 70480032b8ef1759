import { execFileSync } from 'node:child_process'
import { assembleShare, createSigner, createVerifier, generateSigningKey, HiveJob, signShare, type Task, taskRefusal } from '@apiary/shared'
import { classifyRisk } from '@apiary/shared/risk'
import { fmt, median, table } from './stats.ts'

export interface SigningCost {
  nodes: number
  /** The queen: signing one region share of `nodes` (Merkle tree, digest, one signature), CPU ms. */
  queenSignMs: number
  /** The hive: checking the share and building every node's proof, CPU ms. */
  hiveCheckMs: number
  /** A worker: checking the first task of a share (signature included), CPU µs. */
  workerColdUs: number
  /** A worker: checking a further task of a share it has seen (the signature is remembered), CPU µs. */
  workerWarmUs: number
  /** Baseline, the same run: what running `true` costs a worker (fork and exec, wall µs). */
  spawnTrueUs: number
}

const cpuMs = (f: () => void): number => {
  const t0 = process.cpuUsage()
  f()
  const d = process.cpuUsage(t0)
  return (d.user + d.system) / 1000
}

/**
 * What signed work costs at `nodes` nodes in one region, each part the median of `rounds`,
 * beside the cost of the work itself (running `true`), measured in the same run.
 */
export function measureSigning(nodes: number, rounds = 5): SigningCost {
  const signer = createSigner(generateSigningKey().privatePem)
  const verifier = createVerifier(signer.publicKey)
  const share = HiveJob.parse({
    jobId: 'jbench0001',
    phase: 0,
    region: 'bench',
    nodes: Array.from({ length: nodes }, (_, i) => `agent-${String(i).padStart(6, '0')}`),
    operation: { type: 'exec', argv: ['true'] },
    concurrency: Math.max(1, Math.ceil(nodes / 10)),
    maxErrors: null,
    errorsSoFar: 0,
    timeoutMs: 30_000,
    deliveryTimeoutMs: 5000,
    outputCapBytes: 1 << 20,
    targets: nodes,
  })
  const sign: number[] = []
  const check: number[] = []
  let tasks: Task[] = []
  for (let r = 0; r < rounds; r++) {
    let signed!: ReturnType<typeof signShare>
    sign.push(cpuMs(() => (signed = signShare(share, signer, Date.now()))))
    check.push(
      cpuMs(() => {
        const c = assembleShare(signed.offer, signed.chunks, verifier, 'bench', Date.now())
        if (typeof c === 'string') throw new Error(c)
        tasks = share.nodes.map((node) => ({ jobId: share.jobId, node, operation: share.operation, timeoutMs: share.timeoutMs, outputCapBytes: share.outputCapBytes, grant: c.grant, proof: c.proof(node) }))
      }),
    )
  }
  const sample = tasks.slice(0, Math.min(tasks.length, 2000))
  const check1 = (verified?: Set<string>) => (t: Task) => {
    if (taskRefusal(t, { verifier, region: 'bench', agentless: false, now: Date.now(), classify: classifyRisk, ...(verified ? { verified } : {}) }) !== null) throw new Error('refused')
  }
  const cold = cpuMs(() => sample.forEach(check1())) / sample.length
  const verified = new Set<string>()
  check1(verified)(sample[0]!)
  const warm = cpuMs(() => sample.forEach(check1(verified))) / sample.length
  const spawns: number[] = []
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now()
    execFileSync('true')
    spawns.push(performance.now() - t0)
  }
  return { nodes, queenSignMs: median(sign), hiveCheckMs: median(check), workerColdUs: cold * 1000, workerWarmUs: warm * 1000, spawnTrueUs: median(spawns) * 1000 }
}

/** The figures as a table, with the job's own CPU beside them when known. */
export function signingReport(c: SigningCost, job?: { queenCpuMs?: number; hiveCpuMs?: number }): string {
  const share = (part: number, whole?: number) => (whole ? `${fmt((100 * part) / whole)}% of the job's ${fmt(whole, 0)} ms` : '')
  return [
    `signed work at ${c.nodes} nodes in one region (one signature per share; each node checks its Merkle proof)`,
    table([
      ['who', 'what', 'CPU', 'beside'],
      ['queen', 'sign the share', `${fmt(c.queenSignMs)} ms`, share(c.queenSignMs, job?.queenCpuMs)],
      ['hive', 'check it, build every proof', `${fmt(c.hiveCheckMs)} ms`, share(c.hiveCheckMs, job?.hiveCpuMs)],
      ['worker', 'check its task (signature too)', `${fmt(c.workerColdUs, 0)} µs`, `running \`true\`: ${fmt(c.spawnTrueUs, 0)} µs (${fmt(c.workerColdUs / c.spawnTrueUs, 3)}×)`],
      ['worker', 'check a further task of a share', `${fmt(c.workerWarmUs, 0)} µs`, `${fmt(c.workerWarmUs / c.spawnTrueUs, 3)}×`],
    ]),
  ].join('\n')
}
