import type { EventKind, JobDetail, JobEvent } from '@apiary/shared'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { api, ApiError } from '../api.ts'
import { ConfirmCount, ErrorNote } from '../confirm.tsx'
import { ago, count, describeOperation, duration, NOT_OK, plural, STATES, SYMBOL } from '../format.ts'
import { lineDiff } from '../job/diff.ts'
import { type GridHandle, NodeGrid } from '../job/grid.tsx'
import { type Group, JobModel } from '../job/model.ts'
import { SlicedQueue, yieldTask } from '../job/sliced-queue.ts'
import { go } from '../route.ts'

const KINDS = ['job.submitted', 'job.region', 'job.cancelling', 'job.halted', 'job.canary', 'job.finished', 'node.started', 'node.finished'] as const satisfies readonly EventKind[]
/** Groups (kept by the model as nodes end), histogram and slowest nodes (a walk over every node): recomputed at most this often while events stream. */
const SLOW_MS = 1000
/** Events are applied in slices of at most this much main-thread time, each a task of its own. */
const SLICE_MS = 8

/** A job, live: progress, the grid, result groups, durations, a node's output; cancel and re-run. */
export function JobPage({ id }: { id: string }) {
  const [model, setModel] = useState<JobModel | null>(null)
  const [detail, setDetail] = useState<JobDetail | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const [, setTick] = useState(0)
  const [slow, setSlow] = useState(0)
  const [stream, setStream] = useState<'live' | 'reconnecting' | 'closed'>('closed')
  const [open, setOpen] = useState<string | null>(null)
  const grid = useRef<GridHandle | null>(null)

  useEffect(() => {
    const ac = new AbortController()
    let es: EventSource | undefined
    let frame = 0
    let slowTimer: ReturnType<typeof setTimeout> | undefined
    let lastSlow = 0
    let stopIntake: (() => void) | undefined
    setModel(null)
    setError(null)
    setOpen(null)
    api
      .job(id, ac.signal)
      .then((d) => {
        if (ac.signal.aborted) return
        const m = new JobModel(d)
        setDetail(d)
        setModel(m)
        // Events arrive in bursts of hundreds: each one only updates the model; the grid,
        // the counts and the rest are drawn once per animation frame.
        const draw = () => {
          frame = 0
          grid.current?.paint()
          setTick(m.version)
          const now = performance.now()
          if (now - lastSlow >= SLOW_MS || m.jobState !== 'running') {
            lastSlow = now
            setSlow(m.version)
          } else if (slowTimer === undefined) {
            slowTimer = setTimeout(() => {
              slowTimer = undefined
              lastSlow = performance.now()
              setSlow(m.version)
            }, SLOW_MS)
          }
        }
        if (d.state !== 'running') return
        es = new EventSource(api.streamUrl(id, d.lastSeq))
        setStream('live')
        // The browser dispatches a whole network read of events in one task: the listener only
        // queues them; they are parsed and applied in slices of SLICE_MS, each its own task, and
        // what they changed is drawn in the next animation frame.
        let changed = false
        const tasks = yieldTask()
        const intake = new SlicedQueue<{ data: string; lastEventId: string }>({
          run: (e) => {
            const ev = JSON.parse(e.data) as JobEvent
            if (typeof ev.seq !== 'number') ev.seq = Number(e.lastEventId)
            if (m.apply(ev)) changed = true
          },
          after: () => {
            if (changed && frame === 0) frame = requestAnimationFrame(draw)
            changed = false
          },
          budgetMs: SLICE_MS,
          now: () => performance.now(),
          schedule: tasks.schedule,
        })
        stopIntake = () => {
          intake.stop()
          tasks.close()
        }
        const onEvent = (e: MessageEvent<string>) => {
          intake.push({ data: e.data, lastEventId: e.lastEventId })
          // The queen ends the stream after job.finished; EventSource would reconnect for ever.
          if (e.type === 'job.finished') {
            es?.close()
            setStream('closed')
          }
        }
        for (const k of KINDS) es.addEventListener(k, onEvent)
        es.onopen = () => setStream('live')
        // EventSource reconnects by itself and resumes with Last-Event-ID; closed means refused.
        es.onerror = () => setStream(es?.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting')
      })
      .catch((err: unknown) => {
        if (!ac.signal.aborted) setError(err instanceof ApiError ? err : new ApiError(0, 'internal', String(err)))
      })
    return () => {
      ac.abort()
      es?.close()
      stopIntake?.()
      if (frame) cancelAnimationFrame(frame)
      if (slowTimer) clearTimeout(slowTimer)
    }
  }, [id])

  const derived = useMemo(() => (model ? { groups: model.groups(), histogram: model.histogram() } : null), [model, slow])
  // The same elements until they are recomputed: preact skips an unchanged element, so the
  // frames between recomputations diff only the figures and the legend.
  const derivedViews = useMemo(
    () =>
      derived && (
        <>
          <Groups jobId={id} groups={derived.groups} onOpen={setOpen} />
          <Durations histogram={derived.histogram} onOpen={setOpen} />
        </>
      ),
    [derived, id],
  )

  if (error) return <ErrorNote error={error} />
  if (!model || !detail || !derived) return <p class="muted">Loading job {id}…</p>
  const p = model.progress()
  const submittedBy = (detail as { submittedBy?: string | null }).submittedBy

  return (
    <article class="job" aria-labelledby="job-title">
      <header class="job-head">
        <h1 id="job-title">
          Job <code>{id}</code>{' '}
          <span class={`badge job-${model.jobState}`} data-testid="job-state">
            {model.jobState}
          </span>
        </h1>
        <p class="op">
          <code>{describeOperation(detail.operation)}</code> on <code>{detail.targets}</code>
        </p>
        <p class="muted">
          {submittedBy ? `by ${submittedBy}, ` : ''}
          {ago(detail.createdAt, Date.now())}
          {detail.rerunOf && (
            <>
              {' '}
              · re-runs <a href={`#/jobs/${detail.rerunOf}`}>{detail.rerunOf}</a>
            </>
          )}
          {stream !== 'closed' && <span class="live"> · {stream === 'live' ? '● live' : '○ reconnecting…'}</span>}
        </p>
        {model.stopReason && <p class="stop">Stopped early: {model.stopReason}</p>}
        <Actions model={model} />
      </header>

      <section class="progress" aria-label="progress">
        <ProgressBar total={p.total} ok={p.ok} notOk={p.notOk} done={p.done} />
        <dl class="figures" data-testid="progress">
          <div>
            <dt>done</dt>
            <dd data-testid="done">
              {count(p.done)} / {count(p.total)}
            </dd>
          </div>
          <div>
            <dt>{SYMBOL.ok} ok</dt>
            <dd data-testid="ok">{count(p.ok)}</dd>
          </div>
          <div>
            <dt>{SYMBOL.failed} not ok</dt>
            <dd data-testid="not-ok">{count(p.notOk)}</dd>
          </div>
          <div>
            <dt>{SYMBOL.running} running</dt>
            <dd data-testid="running">{count(p.running)}</dd>
          </div>
          <div>
            <dt>rate</dt>
            <dd>{p.rate === null ? '–' : `${p.rate >= 10 ? Math.round(p.rate) : p.rate.toFixed(1)} nodes/s`}</dd>
          </div>
          <div>
            <dt>ETA</dt>
            <dd>{p.etaMs === null ? '–' : duration(p.etaMs)}</dd>
          </div>
        </dl>
      </section>

      <section aria-labelledby="grid-title">
        <h2 id="grid-title">Nodes</h2>
        <Legend model={model} />
        <NodeGrid model={model} handle={grid} onOpen={setOpen} />
      </section>

      {open && <NodeOutput jobId={id} model={model} node={open} onClose={() => setOpen(null)} />}

      {derivedViews}
    </article>
  )
}

function ProgressBar({ total, ok, notOk, done }: { total: number; ok: number; notOk: number; done: number }) {
  const pct = (n: number) => `${total === 0 ? 0 : (n * 100) / total}%`
  return (
    <div class="bar" role="progressbar" aria-valuemin={0} aria-valuemax={total} aria-valuenow={done} aria-label={`${done} of ${total} nodes done`}>
      <span class="seg seg-ok" style={{ width: pct(ok) }} />
      <span class="seg seg-notok" style={{ width: pct(notOk) }} />
      <span class="seg seg-other" style={{ width: pct(done - ok - notOk) }} />
    </div>
  )
}

function Legend({ model }: { model: JobModel }) {
  return (
    <ul class="legend" aria-label="nodes by state">
      {STATES.map((s) => {
        const n = model.count(s)
        return n === 0 ? null : (
          <li key={s} data-testid={`legend-${s}`}>
            <span class={`swatch swatch-${s}`} aria-hidden="true" />
            {SYMBOL[s]} {s} <strong>{count(n)}</strong>
          </li>
        )
      })}
    </ul>
  )
}

function Actions({ model }: { model: JobModel }) {
  const [asking, setAsking] = useState<'cancel' | null>(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const [confirm, setConfirm] = useState<{ nodes: number; reasons: string[] } | null>(null)
  const [note, setNote] = useState<string | null>(null)
  const running = model.jobState === 'running'
  const notOk = NOT_OK.reduce((n, s) => n + model.count(s), 0)

  const cancel = async () => {
    setBusy(true)
    setError(null)
    try {
      await api.cancel(model.id)
      setNote('Cancelling: each node confirms as it stops.')
      setAsking(null)
    } catch (err) {
      setError(err as ApiError)
    } finally {
      setBusy(false)
    }
  }
  const rerun = async (nodes?: number) => {
    setBusy(true)
    setError(null)
    try {
      const created = await api.rerun(model.id, { only: [...NOT_OK], ...(nodes === undefined ? {} : { confirm: { nodes } }) })
      go(`/jobs/${created.jobId}`)
    } catch (err) {
      const e = err as ApiError
      // A destructive operation: the queen says on how many nodes; the operator types that count.
      if (e.code === 'confirmation_required' && typeof e.details?.nodes === 'number') {
        const risk = e.details.risk as { reasons?: string[] } | undefined
        setConfirm({ nodes: e.details.nodes, reasons: risk?.reasons ?? [] })
      } else setError(e)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div class="actions">
      {running && asking === null && (
        <button type="button" class="danger" onClick={() => setAsking('cancel')}>
          Cancel job…
        </button>
      )}
      {running && asking === 'cancel' && (
        <div class="ask" role="alertdialog" aria-label="confirm cancel">
          <p>Cancel this job? Running nodes are stopped; nodes not yet started end skipped.</p>
          <button type="button" class="danger" disabled={busy} onClick={() => void cancel()}>
            Yes, cancel the job
          </button>{' '}
          <button type="button" onClick={() => setAsking(null)}>
            Keep it running
          </button>
        </div>
      )}
      {!running && notOk > 0 && !confirm && (
        <button type="button" disabled={busy} onClick={() => void rerun()}>
          Rerun failed ({count(notOk)})
        </button>
      )}
      {confirm && (
        <ConfirmCount
          nodes={confirm.nodes}
          reasons={confirm.reasons}
          action="Rerun"
          busy={busy}
          onConfirm={() => void rerun(confirm.nodes)}
          onCancel={() => setConfirm(null)}
        />
      )}
      {note && <p class="note" role="status">{note}</p>}
      {error && <ErrorNote error={error} />}
    </div>
  )
}

function Groups({ jobId, groups, onOpen }: { jobId: string; groups: Group[]; onOpen: (node: string) => void }) {
  if (groups.length === 0) return null
  const [first, ...rest] = groups
  const differ = rest.reduce((n, g) => n + g.count, 0)
  const shown = groups.slice(0, 8)
  return (
    <section aria-labelledby="groups-title">
      <h2 id="groups-title">Results</h2>
      <p data-testid="groups-summary">
        {rest.length === 0 ? `all ${count(first!.count)} identical` : `${count(first!.count)} identical, ${count(differ)} differ (${plural(rest.length, 'other result')})`}
      </p>
      <ol class="groups">
        {shown.map((g, k) => (
          <li key={`${g.state}-${g.exitCode}-${g.sample[0]}`} class="group">
            <p>
              <span class={`state state-${g.state}`}>
                {SYMBOL[g.state]} {g.state}
              </span>{' '}
              <strong>{plural(g.count, 'node')}</strong>
              {g.exitCode !== null && ` · exit ${g.exitCode}`}
              {g.cause && <span class="cause"> · {g.cause}</span>}
              {k === 0 && rest.length > 0 && <span class="muted"> (most common)</span>}
            </p>
            <p class="sample-nodes">
              {g.sample.map((n) => (
                <button type="button" class="link" key={n} onClick={() => onOpen(n)}>
                  {n}
                </button>
              ))}
              {g.count > g.sample.length && <span class="muted"> and {count(g.count - g.sample.length)} more</span>}
            </p>
            <SampleOutput jobId={jobId} node={g.sample[0]!} majority={k === 0 ? undefined : first!.sample[0]} />
          </li>
        ))}
      </ol>
      {groups.length > shown.length && <p class="muted">and {plural(groups.length - shown.length, 'more result')}</p>}
    </section>
  )
}

const sample = (jobId: string, node: string, signal: AbortSignal) =>
  api.logs(jobId, { node, limit: 50, maxBytes: 2048 }, signal).then((p) => p.chunks.map((c) => c.data).join(''))

/**
 * The first bytes a group's first node wrote: its output stands for the group's. An outlier
 * group's (given the majority's node) is shown as a line diff against the majority's.
 */
function SampleOutput({ jobId, node, majority }: { jobId: string; node: string; majority?: string | undefined }) {
  const [text, setText] = useState<{ mine: string; theirs: string | undefined } | null>(null)
  useEffect(() => {
    const ac = new AbortController()
    Promise.all([sample(jobId, node, ac.signal), majority === undefined ? undefined : sample(jobId, majority, ac.signal)])
      .then(([mine, theirs]) => setText({ mine, theirs }))
      .catch(() => setText(null))
    return () => ac.abort()
  }, [jobId, node, majority])
  if (text === null) return null
  if (text.theirs === undefined || text.theirs === text.mine) return text.mine === '' ? <p class="muted">(no output)</p> : <pre class="output sample">{text.mine}</pre>
  const diff = lineDiff(text.theirs, text.mine)
  return (
    <pre class="output sample diff" data-testid="group-diff" aria-label="output compared with the most common result: - only there, + only here">
      {diff.map((l, i) => (
        <span key={i} class={l.op === '-' ? 'del' : l.op === '+' ? 'add' : undefined}>
          {l.op} {l.text}
          {'\n'}
        </span>
      ))}
    </pre>
  )
}

function Durations({ histogram: h, onOpen }: { histogram: ReturnType<JobModel['histogram']>; onOpen: (node: string) => void }) {
  if (h.counts.length === 0) return null
  return (
    <section aria-labelledby="durations-title">
      <h2 id="durations-title">Durations</h2>
      <div class="histogram" role="img" aria-label={`node durations from ${duration(h.edges[0])} to ${duration(h.edges[h.edges.length - 1]! + h.width)}`}>
        {h.counts.map((n, b) => (
          <span
            key={b}
            class="hbar"
            title={`${duration(h.edges[b])} – ${duration(h.edges[b]! + h.width)}: ${plural(n, 'node')}`}
            style={{ height: `${h.max === 0 ? 0 : Math.max(n > 0 ? 2 : 0, (n * 100) / h.max)}%` }}
          />
        ))}
      </div>
      <p class="axis">
        <span>{duration(h.edges[0])}</span>
        <span>{duration(h.edges[h.edges.length - 1]! + h.width)}</span>
      </p>
      <h3>Slowest</h3>
      <ol class="slowest">
        {h.slowest.map((s) => (
          <li key={s.node}>
            <button type="button" class="link" onClick={() => onOpen(s.node)}>
              {s.node}
            </button>{' '}
            {duration(s.durationMs)}
          </li>
        ))}
      </ol>
    </section>
  )
}

const PAGE = 200

/** A node's output, a page at a time, as text (never markup). */
function NodeOutput({ jobId, model, node, onClose }: { jobId: string; model: JobModel; node: string; onClose: () => void }) {
  const [chunks, setChunks] = useState<Array<{ seq: number; stream: string; data: string }>>([])
  const [next, setNext] = useState<number | null>(0)
  const [error, setError] = useState<ApiError | null>(null)
  const [loading, setLoading] = useState(false)
  const panel = useRef<HTMLElement>(null)
  const i = model.indexOf(node)
  const state = i >= 0 ? model.stateAt(i) : null

  const load = async (after: number, replace: boolean, signal?: AbortSignal) => {
    setLoading(true)
    try {
      const page = await api.logs(jobId, { node, after, limit: PAGE }, signal)
      setChunks((c) => (replace ? page.chunks : [...c, ...page.chunks]))
      setNext(page.next)
      setError(null)
    } catch (err) {
      if (!signal?.aborted) setError(err as ApiError)
    } finally {
      setLoading(false)
    }
  }
  useEffect(() => {
    const ac = new AbortController()
    setChunks([])
    void load(0, true, ac.signal)
    panel.current?.focus()
    return () => ac.abort()
  }, [jobId, node])

  return (
    <section
      class="node-output"
      aria-labelledby="node-title"
      tabIndex={-1}
      ref={panel}
      data-testid="node-output"
      onKeyDown={(e) => {
        if (e.key === 'Escape') onClose()
      }}
    >
      <header>
        <h2 id="node-title">
          Output of <code>{node}</code>
        </h2>
        {state && i >= 0 && (
          <p>
            <span class={`state state-${state}`}>
              {SYMBOL[state]} {state}
            </span>
            {model.exitCode[i] !== null && ` · exit ${model.exitCode[i]}`}
            {!Number.isNaN(model.durationMs[i]!) && ` · ${duration(model.durationMs[i])}`}
            {model.signal[i] && ` · ${model.signal[i]}`}
            {model.cause[i] && <span class="cause"> · {model.cause[i]}</span>}
          </p>
        )}
        <button type="button" onClick={onClose} aria-label="close the output">
          Close
        </button>
      </header>
      {error && <ErrorNote error={error} />}
      {chunks.length === 0 && !loading && !error && <p class="muted">(no output)</p>}
      <pre class="output" data-testid="node-output-text">
        {chunks.map((c) => (
          <span key={c.seq} class={c.stream === 'stderr' ? 'stderr' : undefined}>
            {c.data}
          </span>
        ))}
      </pre>
      {next !== null && chunks.length > 0 && (
        <button type="button" disabled={loading} onClick={() => void load(next, false)}>
          More output
        </button>
      )}
    </section>
  )
}
