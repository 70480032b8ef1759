import type { NodeInfo } from '@apiary/shared'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { api, ApiError } from '../api.ts'
import { ErrorNote } from '../confirm.tsx'
import { ago, count } from '../format.ts'
import { visibleRows } from '../nodes/virtual.ts'
import { usePoll } from '../poll.ts'

const ROW = 30
const VIEW = 600

/** Every node the queen knows, filtered by a selector; rows are virtual (10,000 cost some 40 elements). */
export function NodesPage() {
  const [nodes, setNodes] = useState<NodeInfo[] | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const [filter, setFilter] = useState('')
  const [scroll, setScroll] = useState(0)
  const [now, setNow] = useState(Date.now())
  const list = useRef<HTMLDivElement>(null)
  // The selector language of job targets, parsed and matched by the contract's own code; it
  // brings zod (most of the console's bytes), so it loads with this page only.
  const [selectors, setSelectors] = useState<typeof import('@apiary/shared/targets') | null>(null)
  useEffect(() => {
    import('@apiary/shared/targets').then(setSelectors, () => setSelectors(null))
  }, [])
  usePoll(
    async (signal) => {
      try {
        const r = await api.nodes(signal)
        setNodes(r.nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)))
        setNow(Date.now())
        setError(null)
      } catch (err) {
        if (!signal.aborted) setError(err as ApiError)
      }
    },
    5000,
    [],
  )
  const parsed = useMemo(() => (filter.trim() === '' || !selectors ? null : selectors.parseSelector(filter.trim())), [filter, selectors])
  const shown = useMemo(() => {
    if (!nodes) return []
    if (!parsed || !parsed.ok || !selectors) return nodes
    return nodes.filter((n) => selectors.matchesSelector(parsed.selector, n))
  }, [nodes, parsed, selectors])
  const { start, end } = visibleRows(scroll, VIEW, ROW, shown.length)
  const online = shown.reduce((n, x) => n + (x.online ? 1 : 0), 0)

  return (
    <section aria-labelledby="nodes-title">
      <h1 id="nodes-title">Nodes</h1>
      <div class="toolbar">
        <label>
          Selector{' '}
          <input
            value={filter}
            placeholder="all, web-*, role=web,region=eu"
            spellcheck={false}
            onInput={(e) => {
              setFilter(e.currentTarget.value)
              setScroll(0)
              if (list.current) list.current.scrollTop = 0
            }}
            data-testid="nodes-filter"
          />
        </label>
        {parsed && !parsed.ok && (
          <span class="error" role="alert">
            selector {parsed.error}
          </span>
        )}
        {nodes && (
          <span class="muted" data-testid="nodes-count">
            {count(shown.length)} nodes, {count(online)} online
          </span>
        )}
      </div>
      {error && <ErrorNote error={error} />}
      {nodes === null ? (
        <p class="muted">Loading…</p>
      ) : (
        <div class="vtable" role="table" aria-label="nodes" aria-rowcount={shown.length + 1}>
          <div class="vrow vhead" role="row">
            {['node', 'region', 'labels', 'executor', 'presence', 'last contact', 'breaker', 'running'].map((h) => (
              <span role="columnheader" key={h}>
                {h}
              </span>
            ))}
          </div>
          <div class="vbody" ref={list} tabIndex={0} style={{ height: `${Math.min(VIEW, Math.max(ROW, shown.length * ROW))}px` }} onScroll={(e) => setScroll(e.currentTarget.scrollTop)}>
            <div style={{ height: `${shown.length * ROW}px`, position: 'relative' }}>
              {shown.slice(start, end).map((n, k) => (
                <NodeRow key={n.id} n={n} top={(start + k) * ROW} index={start + k} now={now} />
              ))}
            </div>
          </div>
        </div>
      )}
    </section>
  )
}

function NodeRow({ n, top, index, now }: { n: NodeInfo; top: number; index: number; now: number }) {
  const labels = Object.entries(n.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')
  const contact = n.lastContact ?? n.lastSeen
  return (
    <div class="vrow" role="row" aria-rowindex={index + 2} style={{ transform: `translateY(${top}px)` }} data-testid="node-row">
      <span role="cell">
        <code>{n.id}</code>
      </span>
      <span role="cell">{n.region}</span>
      <span role="cell" class="labels" title={labels}>
        {labels}
      </span>
      <span role="cell">{n.executor}</span>
      <span role="cell" class={n.online && !n.draining ? 'good' : 'bad'}>
        {n.online ? (n.draining ? '◐ draining' : '● online') : '○ offline'}
        {n.status === 'degraded' && ' (degraded)'}
      </span>
      <span role="cell">{ago(contact, now)}</span>
      <span role="cell" class={n.breaker === 'open' ? 'bad' : undefined}>
        {n.breaker ?? '–'}
      </span>
      <span role="cell">{n.running}</span>
    </div>
  )
}
