/** Cell sizes the grid tries, largest first (CSS pixels, gap included). */
const SIZES = [16, 12, 10, 8, 6, 5, 4, 3, 2]

export interface GridLayout {
  /** Cell pitch, CSS pixels; the drawn square is `pitch - gap`. */
  pitch: number
  gap: number
  cols: number
  rows: number
  width: number
  height: number
}

/**
 * The largest cells that fit `n` nodes in `width` × `maxHeight` CSS pixels (the smallest
 * size, taller than `maxHeight`, past that). 10,000 nodes in 960 × 480 px are 6 px cells, 160 columns.
 */
export function gridLayout(n: number, width: number, maxHeight: number): GridLayout {
  const w = Math.max(SIZES[SIZES.length - 1]!, Math.floor(width))
  let pitch = SIZES[SIZES.length - 1]!
  for (const s of SIZES) {
    const cols = Math.max(1, Math.floor(w / s))
    if (Math.ceil(n / cols) * s <= maxHeight) {
      pitch = s
      break
    }
  }
  const cols = Math.max(1, Math.floor(w / pitch))
  const rows = Math.max(1, Math.ceil(n / cols))
  return { pitch, gap: pitch >= 6 ? 1 : 0, cols, rows, width: cols * pitch, height: rows * pitch }
}

/** The node under a point of the grid (CSS pixels from its top left), or -1. */
export function cellAt(l: GridLayout, n: number, x: number, y: number): number {
  if (x < 0 || y < 0 || x >= l.width || y >= l.height) return -1
  const i = Math.floor(y / l.pitch) * l.cols + Math.floor(x / l.pitch)
  return i < n ? i : -1
}

/** Where cell `i` sits. */
export function cellOrigin(l: GridLayout, i: number): { x: number; y: number } {
  return { x: (i % l.cols) * l.pitch, y: Math.floor(i / l.cols) * l.pitch }
}

/** The cell a key moves to from `i` (arrows by one, PageUp/PageDown by ten rows, Home/End), or `i`. */
export function moveCell(l: GridLayout, n: number, i: number, key: string): number {
  const to =
    key === 'ArrowRight' ? i + 1
    : key === 'ArrowLeft' ? i - 1
    : key === 'ArrowDown' ? i + l.cols
    : key === 'ArrowUp' ? i - l.cols
    : key === 'PageDown' ? i + 10 * l.cols
    : key === 'PageUp' ? i - 10 * l.cols
    : key === 'Home' ? 0
    : key === 'End' ? n - 1
    : i
  return Math.min(n - 1, Math.max(0, to))
}
