import { describe, expect, it } from 'vitest'
import { firstWord, splitAtDoubleDash, splitSubcommand } from './argv.ts'
import { GLOBAL_OPTIONS } from './options.ts'

const DEV = {
  ...GLOBAL_OPTIONS,
  workers: { type: 'int', min: 0, max: 9, help: '' },
  heartbeat: { type: 'duration', help: '' },
  verbose: { type: 'boolean', short: 'v', help: '' },
} as const

describe('keeper argv', () => {
  it('splits at the first --, whatever follows', () => {
    expect(splitAtDoubleDash(['run', '-t', 'x', '--', 'ls', '--', '-l'])).toEqual({ before: ['run', '-t', 'x'], after: ['ls', '--', '-l'] })
    expect(splitAtDoubleDash(['nodes'])).toEqual({ before: ['nodes'], after: undefined })
  })

  it('finds the command past global flags and their values', () => {
    expect(firstWord(['--queen', 'http://q', '-o', 'json', 'jobs'], GLOBAL_OPTIONS)).toBe(4)
    expect(firstWord(['--queen=http://q', 'jobs'], GLOBAL_OPTIONS)).toBe(1)
    expect(firstWord(['--json'], GLOBAL_OPTIONS)).toBe(-1)
  })

  it('gives keeper dev its own flags, ints and durations with their values, and the rest to the subcommand', () => {
    expect(splitSubcommand(['--workers', '2', '--heartbeat', '1', '-v', 'run', '--shell'], ['echo', 'hi'], DEV)).toEqual({
      own: ['--workers', '2', '--heartbeat', '1', '-v'],
      sub: ['run', '--shell', '--', 'echo', 'hi'],
    })
    expect(splitSubcommand(['--workers', '2'], undefined, DEV)).toEqual({ own: ['--workers', '2'], sub: [] })
    // A -- without a command is not silently dropped: the subcommand is then "--", which dev refuses.
    expect(splitSubcommand([], ['ls'], DEV)).toEqual({ own: [], sub: ['--', 'ls'] })
  })
})
