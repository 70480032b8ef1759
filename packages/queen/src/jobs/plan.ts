import { ApiaryError, type JobPlan, type JobRequest, type NodeInfo, type Risk } from '@apiary/shared'
import { classifyRisk, preloadRiskClassifier } from '@apiary/shared/risk'
import { resolveTargets } from '../targets/resolve.ts'

// Every submit is classified: load the parser with the queen, not inside its first request.
preloadRiskClassifier()

export interface Plan {
  targets: NodeInfo[]
  risk: Risk
}


const OFFLINE_LISTED = 100
const SAMPLE = 10

/**
 * Resolves a request's targets and classifies its risk without running anything. `nodes`
 * (a re-run's snapshot) restricts the targets to exactly those ids; one no longer known
 * stays a target and ends `error: offline`.
 */
export function planJob(request: JobRequest, known: NodeInfo[], nodes?: string[]): Plan {
  let targets: NodeInfo[]
  if (nodes) {
    const byId = new Map(known.map((n) => [n.id, n]))
    targets = [...new Set(nodes)]
      .sort()
      .map((id): NodeInfo => byId.get(id) ?? { id, region: 'unknown', labels: {}, executor: 'unknown', status: 'degraded', online: false, lastSeen: 0, running: 0, version: '' })
  } else {
    targets = resolveTargets(request.targets, known)
  }
  if (targets.length === 0) {
    throw new ApiaryError('invalid_input', `targets: "${request.targets}" matches no node (${known.length} known; see GET /v1/nodes)`, 'targets')
  }
  return { targets, risk: classifyRisk(request.operation) }
}

export function summarisePlan(plan: Plan, request: JobRequest): JobPlan {
  const regions: Record<string, number> = {}
  for (const t of plan.targets) regions[t.region] = (regions[t.region] ?? 0) + 1
  const offline = plan.targets.filter((t) => !t.online)
  const draining = plan.targets.filter((t) => t.online && t.draining)
  return {
    nodes: plan.targets.length,
    online: plan.targets.length - offline.length,
    regions,
    offline: offline.slice(0, OFFLINE_LISTED).map((t) => t.id),
    ...(draining.length > 0 ? { draining: { nodes: draining.length, ids: draining.slice(0, OFFLINE_LISTED).map((t) => t.id) } } : {}),
    sample: plan.targets.slice(0, SAMPLE).map((t) => t.id),
    canary: Math.min(request.rollout.canary, plan.targets.length),
    risk: plan.risk,
  }
}

/** A destructive operation runs only with a confirmation of exactly the resolved node count. */
export function checkConfirmation(plan: Plan, request: JobRequest): void {
  if (plan.risk.class !== 'destructive') return
  const n = plan.targets.length
  if (request.confirm?.nodes === n) return
  const why = plan.risk.reasons.join(', ')
  throw new ApiaryError(
    'confirmation_required',
    request.confirm
      ? `confirm.nodes is ${request.confirm.nodes} but the targets are ${n} nodes now: confirm again`
      : `destructive operation (${why}) on ${n} node${n === 1 ? '' : 's'}: send "confirm": {"nodes": ${n}} to run it`,
    'confirm',
    { details: { nodes: n, risk: plan.risk } },
  )
}
