import { useEffect, useRef, useState } from 'preact/hooks'
import { duration, type State, STATES, SYMBOL } from '../format.ts'
import { cellAt, cellOrigin, type GridLayout, gridLayout, moveCell } from './grid-layout.ts'
import type { JobModel } from './model.ts'

/** How a state is drawn beside its colour, so that the grid reads without colour too. */
type Mark = 'none' | 'slash' | 'cross' | 'bar' | 'hollow' | 'dot' | 'backslash' | 'corner'
const MARK: Record<State, Mark> = {
  ok: 'none',
  failed: 'slash',
  error: 'bar',
  timeout: 'corner',
  lost: 'cross',
  cancelled: 'backslash',
  skipped: 'backslash',
  running: 'hollow',
  pending: 'dot',
}

/** The painter the page drives: `paint()` draws what changed since the last call. */
export interface GridHandle {
  paint(): void
}

interface Props {
  model: JobModel
  handle: { current: GridHandle | null }
  onOpen: (node: string) => void
  /** Tallest the grid may be before cells shrink to their smallest. */
  maxHeight?: number
}

function readColours(el: Element): { fill: string[]; ink: string; focus: string } {
  const css = getComputedStyle(el)
  return {
    fill: STATES.map((s) => css.getPropertyValue(`--state-${s}`).trim() || '#888'),
    ink: css.getPropertyValue('--cell-ink').trim() || '#000',
    focus: css.getPropertyValue('--focus').trim() || '#00f',
  }
}

/**
 * One cell per node on a canvas, not an element per node: 10,000 DOM nodes restyled per event
 * is what makes such grids crawl. Only cells whose state changed are redrawn, once per frame
 * (the page batches events with requestAnimationFrame and calls `paint`).
 */
export function NodeGrid({ model, handle, onOpen, maxHeight = 480 }: Props) {
  const wrap = useRef<HTMLDivElement>(null)
  const canvas = useRef<HTMLCanvasElement>(null)
  const [layout, setLayout] = useState<GridLayout>(() => gridLayout(model.size, 960, maxHeight))
  const [hover, setHover] = useState<{ i: number; x: number; y: number } | null>(null)
  const [focus, setFocus] = useState(-1)
  const [focused, setFocused] = useState(false)
  const colours = useRef<ReturnType<typeof readColours> | null>(null)
  const focusRef = useRef(-1)
  const cellPainter = useRef<((i: number) => void) | null>(null)

  useEffect(() => {
    const el = wrap.current
    if (!el) return
    const ro = new ResizeObserver(() => {
      const next = gridLayout(model.size, el.clientWidth, maxHeight)
      setLayout((l) => (l.pitch === next.pitch && l.cols === next.cols ? l : next))
    })
    ro.observe(el)
    return () => ro.disconnect()
  }, [model, maxHeight])

  // The whole grid on a layout or theme change; then only what changed.
  useEffect(() => {
    const cv = canvas.current
    if (!cv) return
    const ctx = cv.getContext('2d', { alpha: false })
    if (!ctx) return
    const dpr = window.devicePixelRatio || 1
    cv.width = Math.ceil(layout.width * dpr)
    cv.height = Math.ceil(layout.height * dpr)
    cv.style.width = `${layout.width}px`
    cv.style.height = `${layout.height}px`
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)

    // Cells are drawn a state at a time: one fill colour, one path of marks and one stroke per
    // state rather than per cell (10,000 cells were 60,000 canvas calls and as many style
    // changes on the first paint).
    const byState: number[][] = STATES.map(() => [])
    /** Draws the cells `byState` holds, and empties it. */
    const drawBuckets = (withFocus: boolean) => {
      const c = colours.current!
      const s = layout.pitch - layout.gap
      for (let code = 0; code < byState.length; code++) {
        const these = byState[code]!
        if (these.length === 0) continue
        ctx.fillStyle = c.fill[code]!
        for (const i of these) {
          const { x, y } = cellOrigin(layout, i)
          ctx.fillRect(x, y, s, s)
        }
        const mark = MARK[STATES[code]!]
        if (s >= 5 && mark !== 'none') drawMarks(ctx, layout, these, mark, s, c.ink)
        these.length = 0
      }
      if (withFocus) {
        const { x, y } = cellOrigin(layout, focusRef.current)
        ctx.strokeStyle = c.focus
        ctx.lineWidth = 2
        ctx.strokeRect(x + 1, y + 1, Math.max(1, s - 2), Math.max(1, s - 2))
      }
    }
    const drawCells = (cells: readonly number[]) => {
      let focus = false
      for (const i of cells) {
        byState[model.state[i]!]!.push(i)
        if (i === focusRef.current) focus = true
      }
      drawBuckets(focus)
    }
    const drawCell = (i: number) => drawCells([i])
    const paintAll = () => {
      colours.current = readColours(cv)
      ctx.fillStyle = getComputedStyle(cv).getPropertyValue('--grid-bg').trim() || '#fff'
      ctx.fillRect(0, 0, layout.width, layout.height)
      for (let i = 0; i < model.size; i++) byState[model.state[i]!]!.push(i)
      drawBuckets(focusRef.current >= 0 && focusRef.current < model.size)
    }
    model.takeDirty()
    paintAll()
    const h: GridHandle & { cell: (i: number) => void } = {
      paint() {
        const d = model.takeDirty()
        if (d.all) paintAll()
        else drawCells(d.slots)
      },
      cell: drawCell,
    }
    handle.current = h
    cellPainter.current = drawCell
    const scheme = matchMedia('(prefers-color-scheme: dark)')
    scheme.addEventListener('change', paintAll)
    return () => {
      scheme.removeEventListener('change', paintAll)
      if (handle.current === h) handle.current = null
    }
  }, [layout, model, handle])

  const moveFocus = (to: number) => {
    const was = focusRef.current
    focusRef.current = to
    setFocus(to)
    if (was >= 0) cellPainter.current?.(was)
    if (to >= 0) cellPainter.current?.(to)
  }

  const at = (e: MouseEvent) => {
    const r = canvas.current!.getBoundingClientRect()
    return { i: cellAt(layout, model.size, e.clientX - r.left, e.clientY - r.top), x: e.clientX - r.left, y: e.clientY - r.top }
  }
  const shown = hover ?? (focused && focus >= 0 ? { i: focus, ...cellOrigin(layout, focus) } : null)

  return (
    <div class="grid-wrap" ref={wrap}>
      <canvas
        ref={canvas}
        class="grid"
        tabIndex={0}
        role="img"
        aria-label={`grid of ${model.size} nodes coloured by state; arrow keys move between nodes, Enter opens a node's output`}
        data-testid="node-grid"
        onMouseMove={(e) => {
          const p = at(e)
          setHover(p.i >= 0 ? p : null)
        }}
        onMouseLeave={() => setHover(null)}
        onClick={(e) => {
          const p = at(e)
          if (p.i >= 0) {
            moveFocus(p.i)
            onOpen(model.ids[p.i]!)
          }
        }}
        onBlur={() => setFocused(false)}
        onFocus={() => {
          setFocused(true)
          if (focusRef.current < 0 && model.size > 0) moveFocus(0)
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            if (focusRef.current >= 0) onOpen(model.ids[focusRef.current]!)
            e.preventDefault()
            return
          }
          const to = moveCell(layout, model.size, Math.max(0, focusRef.current), e.key)
          if (to !== focusRef.current) {
            e.preventDefault()
            setHover(null)
            moveFocus(to)
          }
        }}
      />
      {shown && shown.i >= 0 && <CellTip model={model} i={shown.i} x={shown.x} y={shown.y} pitch={layout.pitch} />}
    </div>
  )
}

/** The marks of `cells`, all of one state, in one path: drawn in ink over their fill. */
function drawMarks(ctx: CanvasRenderingContext2D, layout: GridLayout, cells: number[], mark: Mark, s: number, ink: string): void {
  ctx.strokeStyle = ink
  ctx.fillStyle = ink
  ctx.lineWidth = s >= 10 ? 1.5 : 1
  const a = 1.5
  const b = s - 1.5
  if (mark === 'dot') {
    for (const i of cells) {
      const { x, y } = cellOrigin(layout, i)
      ctx.fillRect(x + s / 2 - 1, y + s / 2 - 1, 2, 2)
    }
    return
  }
  ctx.beginPath()
  for (const i of cells) {
    const { x, y } = cellOrigin(layout, i)
    if (mark === 'slash' || mark === 'cross') (ctx.moveTo(x + a, y + b), ctx.lineTo(x + b, y + a))
    if (mark === 'backslash' || mark === 'cross') (ctx.moveTo(x + a, y + a), ctx.lineTo(x + b, y + b))
    if (mark === 'bar') (ctx.moveTo(x + a, y + s / 2), ctx.lineTo(x + b, y + s / 2))
    if (mark === 'hollow') ctx.rect(x + 1.5, y + 1.5, s - 3, s - 3)
    if (mark === 'corner') (ctx.moveTo(x, y), ctx.lineTo(x + s, y), ctx.lineTo(x, y + s), ctx.closePath())
  }
  if (mark === 'corner') ctx.fill()
  else ctx.stroke()
}

function CellTip({ model, i, x, y, pitch }: { model: JobModel; i: number; x: number; y: number; pitch: number }) {
  const state = model.stateAt(i)
  const exit = model.exitCode[i]
  const d = model.durationMs[i]!
  const cause = model.cause[i]
  return (
    <div class="tip" role="status" style={{ left: `${Math.round(x + pitch + 8)}px`, top: `${Math.round(y + pitch + 8)}px` }} data-testid="cell-tip">
      <strong>{model.ids[i]}</strong>
      <span class={`state state-${state}`}>
        {SYMBOL[state]} {state}
      </span>
      {exit !== null && exit !== undefined && <span>exit {exit}</span>}
      {!Number.isNaN(d) && <span>{duration(d)}</span>}
      {cause && <span class="cause">{cause}</span>}
    </div>
  )
}
