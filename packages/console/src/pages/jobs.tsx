import type { JobState, JobSummary } from '@apiary/shared'
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError } from '../api.ts'
import { ErrorNote } from '../confirm.tsx'
import { ago, count, describeOperation, duration, okNotOk, SYMBOL } from '../format.ts'
import { usePoll } from '../poll.ts'

const FILTERS: Array<JobState | 'all'> = ['all', 'running', 'ok', 'failed', 'cancelled']
const JOB_SYMBOL: Record<JobState, string> = { running: SYMBOL.running, ok: SYMBOL.ok, failed: SYMBOL.failed, cancelled: SYMBOL.cancelled }

/** Recent jobs, refreshed every 2 s while the tab is visible. */
export function JobsPage() {
  const [filter, setFilter] = useState<JobState | 'all'>('all')
  const [jobs, setJobs] = useState<JobSummary[] | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const [now, setNow] = useState(Date.now())
  useEffect(() => setJobs(null), [filter])
  usePoll(
    async (signal) => {
      try {
        const r = await api.jobs(filter === 'all' ? undefined : filter, signal)
        setJobs(r.jobs)
        setNow(Date.now())
        setError(null)
      } catch (err) {
        if (!signal.aborted) setError(err as ApiError)
      }
    },
    2000,
    [filter],
  )
  return (
    <section aria-labelledby="jobs-title">
      <h1 id="jobs-title">Jobs</h1>
      <div class="toolbar">
        <label>
          State{' '}
          <select value={filter} onChange={(e) => setFilter(e.currentTarget.value as JobState | 'all')} data-testid="state-filter">
            {FILTERS.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </label>{' '}
        <a class="button" href="#/run">
          Run a command…
        </a>
      </div>
      {error && <ErrorNote error={error} />}
      {jobs === null ? (
        <p class="muted">Loading…</p>
      ) : jobs.length === 0 ? (
        <p class="muted">No jobs{filter === 'all' ? ' yet' : ` ${filter}`}.</p>
      ) : (
        <table class="jobs" data-testid="jobs-table">
          <thead>
            <tr>
              <th scope="col">job</th>
              <th scope="col">state</th>
              <th scope="col">operation</th>
              <th scope="col">targets</th>
              <th scope="col">by</th>
              <th scope="col">when</th>
              <th scope="col" class="num">nodes</th>
              <th scope="col" class="num">{SYMBOL.ok} ok</th>
              <th scope="col" class="num">{SYMBOL.failed} not ok</th>
              <th scope="col" class="num">took</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => {
              const c = okNotOk(j.counts)
              const by = (j as { submittedBy?: string | null }).submittedBy
              return (
                <tr key={j.id}>
                  <td>
                    <a href={`#/jobs/${j.id}`}>
                      <code>{j.id}</code>
                    </a>
                  </td>
                  <td>
                    <span class={`badge job-${j.state}`}>
                      {JOB_SYMBOL[j.state]} {j.state}
                    </span>
                  </td>
                  <td class="op">
                    <code>{describeOperation(j.operation)}</code>
                  </td>
                  <td>
                    <code>{j.targets}</code>
                  </td>
                  <td>{by ?? <span class="muted">–</span>}</td>
                  <td title={new Date(j.createdAt).toLocaleString()}>{ago(j.createdAt, now)}</td>
                  <td class="num">{count(j.nodeCount)}</td>
                  <td class="num">{count(c.ok)}</td>
                  <td class={`num${c.notOk > 0 ? ' bad' : ''}`}>{count(c.notOk)}</td>
                  <td class="num">{j.finishedAt === null ? '…' : duration(j.finishedAt - j.createdAt)}</td>
                </tr>
              )
            })}
          </tbody>
        </table>
      )}
    </section>
  )
}
