import type { JobPlan, JobRequestInput } from '@apiary/shared'
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError } from '../api.ts'
import { ConfirmCount, ErrorNote } from '../confirm.tsx'
import { count, plural } from '../format.ts'
import { go } from '../route.ts'

/** How long typing must pause before the plan is asked for. */
const DEBOUNCE_MS = 300

function request(command: string, targets: string, confirm?: number): JobRequestInput {
  return {
    // One string, run by the node's /bin/sh -c: what an operator types in a box.
    operation: { type: 'exec', shell: true, command },
    targets,
    ...(confirm === undefined ? {} : { confirm: { nodes: confirm } }),
  }
}

/** A command and a selector, with the plan (targets, regions, offline nodes, risk) shown as you type. */
export function RunPage() {
  const [command, setCommand] = useState('')
  const [targets, setTargets] = useState('all')
  const [plan, setPlan] = useState<JobPlan | null>(null)
  const [planError, setPlanError] = useState<ApiError | null>(null)
  const [planning, setPlanning] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    setError(null)
    if (command.trim() === '' || targets.trim() === '') {
      setPlan(null)
      setPlanError(null)
      return
    }
    const ac = new AbortController()
    setPlanning(true)
    const timer = setTimeout(() => {
      api
        .plan(request(command, targets.trim()), ac.signal)
        .then((p) => {
          setPlan(p)
          setPlanError(null)
        })
        .catch((err: unknown) => {
          if (ac.signal.aborted) return
          setPlan(null)
          setPlanError(err as ApiError)
        })
        .finally(() => {
          if (!ac.signal.aborted) setPlanning(false)
        })
    }, DEBOUNCE_MS)
    return () => {
      clearTimeout(timer)
      ac.abort()
    }
  }, [command, targets])

  const submit = async (confirm?: number) => {
    setBusy(true)
    setError(null)
    try {
      const created = await api.submit(request(command, targets.trim(), confirm))
      go(`/jobs/${created.jobId}`)
    } catch (err) {
      const e = err as ApiError
      // The targets changed between plan and submit: show the new count to confirm.
      if (e.code === 'confirmation_required' && typeof e.details?.nodes === 'number' && plan) setPlan({ ...plan, nodes: e.details.nodes })
      setError(e)
    } finally {
      setBusy(false)
    }
  }

  const destructive = plan?.risk.class === 'destructive'
  const access = (plan as { access?: { allowed?: boolean; reason?: string } } | null)?.access
  return (
    <section aria-labelledby="run-title">
      <h1 id="run-title">Run a command</h1>
      <form
        class="run"
        onSubmit={(e) => {
          e.preventDefault()
          if (plan && !destructive) void submit()
        }}
      >
        <label for="command">Command (run by /bin/sh -c on each node)</label>
        <input id="command" name="command" autoComplete="off" spellcheck={false} value={command} onInput={(e) => setCommand(e.currentTarget.value)} placeholder="uptime" />
        <label for="targets">Targets (a selector: all, web-*, role=web,region=eu)</label>
        <input id="targets" name="targets" autoComplete="off" spellcheck={false} value={targets} onInput={(e) => setTargets(e.currentTarget.value)} />
        {!destructive && (
          <button type="submit" disabled={!plan || busy || planning}>
            Run{plan ? ` on ${plural(plan.nodes, 'node')}` : ''}
          </button>
        )}
      </form>
      {planError && <ErrorNote error={planError} />}
      {planning && !plan && <p class="muted">Planning…</p>}
      {plan && (
        <div class="plan" data-testid="plan" aria-live="polite">
          <h2>Plan</h2>
          <dl class="figures">
            <div>
              <dt>nodes</dt>
              <dd data-testid="plan-nodes">{count(plan.nodes)}</dd>
            </div>
            <div>
              <dt>online</dt>
              <dd>{count(plan.online)}</dd>
            </div>
            <div>
              <dt>risk</dt>
              <dd data-testid="plan-risk" class={destructive ? 'bad' : undefined}>
                {destructive ? '⚠ destructive' : 'safe'}
              </dd>
            </div>
            {plan.canary > 0 && (
              <div>
                <dt>canary</dt>
                <dd>{count(plan.canary)}</dd>
              </div>
            )}
          </dl>
          {plan.risk.reasons.length > 0 && <p>Why: {plan.risk.reasons.join(', ')}</p>}
          <p>
            Regions:{' '}
            {Object.entries(plan.regions)
              .map(([r, n]) => `${r} ${count(n)}`)
              .join(' · ')}
          </p>
          {plan.offline.length > 0 && (
            <p class="bad">
              Offline ({count(plan.nodes - plan.online)}), would end error: {plan.offline.slice(0, 20).join(', ')}
              {plan.offline.length > 20 && ' …'}
            </p>
          )}
          {plan.draining && (
            <p class="bad">
              Draining ({count(plan.draining.nodes)}: their workers were told to stop), would end error: {plan.draining.ids.slice(0, 20).join(', ')}
              {plan.draining.nodes > 20 && ' …'}
            </p>
          )}
          <p class="muted">Sample: {plan.sample.join(', ')}</p>
          {access && access.allowed === false && <p class="error">Your role does not allow this{access.reason ? `: ${access.reason}` : ''}.</p>}
          {destructive && <ConfirmCount key={plan.nodes} nodes={plan.nodes} reasons={plan.risk.reasons} action="Run" busy={busy} onConfirm={() => void submit(plan.nodes)} />}
        </div>
      )}
      {error && <ErrorNote error={error} />}
    </section>
  )
}
