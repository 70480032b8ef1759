/**
 * The rows of a virtualised list worth rendering: those in view plus `overscan` on each side.
 * 10,000 rows are then some 40 elements, whatever the scroll position.
 */
export function visibleRows(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan = 8): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight)
  const start = Math.max(0, first - overscan)
  const end = Math.min(count, first + Math.ceil(viewport / rowHeight) + overscan)
  return { start, end: Math.max(start, end) }
}
