import { describe, expect, it } from 'vitest'
import { visibleRows } from '../nodes/virtual.ts'
import { cellAt, cellOrigin, gridLayout, moveCell } from './grid-layout.ts'

describe('gridLayout', () => {
  it('takes the largest cells that fit, down to 2 px', () => {
    expect(gridLayout(3, 960, 480)).toMatchObject({ pitch: 16, cols: 60, rows: 1 })
    const l = gridLayout(10_000, 960, 480)
    expect(l).toMatchObject({ pitch: 6, cols: 160, rows: 63 })
    expect(l.rows * l.pitch).toBeLessThanOrEqual(480)
    expect(l.cols * l.rows).toBeGreaterThanOrEqual(10_000)
    expect(gridLayout(100_000, 960, 480).pitch).toBe(2)
  })

  it('maps points to cells and back', () => {
    const l = gridLayout(25, 100, 480) // pitch 16, 6 columns
    expect(l.cols).toBe(6)
    expect(cellAt(l, 25, 0, 0)).toBe(0)
    expect(cellAt(l, 25, 17, 17)).toBe(7)
    expect(cellAt(l, 25, 95, 70)).toBe(-1) // row 4, column 5: past the 25th node
    expect(cellAt(l, 25, -1, 0)).toBe(-1)
    expect(cellOrigin(l, 7)).toEqual({ x: 16, y: 16 })
  })

  it('moves between cells with the keyboard, within the grid', () => {
    const l = gridLayout(25, 100, 480)
    expect(moveCell(l, 25, 0, 'ArrowRight')).toBe(1)
    expect(moveCell(l, 25, 0, 'ArrowLeft')).toBe(0)
    expect(moveCell(l, 25, 0, 'ArrowDown')).toBe(6)
    expect(moveCell(l, 25, 20, 'ArrowDown')).toBe(24)
    expect(moveCell(l, 25, 3, 'End')).toBe(24)
    expect(moveCell(l, 25, 3, 'x')).toBe(3)
  })
})

describe('visibleRows', () => {
  it('renders the rows in view and a few around them, whatever the list length', () => {
    expect(visibleRows(0, 600, 30, 10_000)).toEqual({ start: 0, end: 28 })
    const mid = visibleRows(150_000, 600, 30, 10_000)
    expect(mid).toEqual({ start: 4992, end: 5028 })
    expect(visibleRows(299_990, 600, 30, 10_000).end).toBe(10_000)
    expect(visibleRows(0, 600, 30, 3)).toEqual({ start: 0, end: 3 })
  })
})
