import { describe, expect, it } from 'vitest'
import { invalidInput } from '../errors.ts'
import { describeOperation, MAX_COMMAND_BYTES, Operation } from './operation.ts'

/** The issues of a failed parse as `path: message`, for readable assertions. */
function issues(value: unknown): string[] {
  const r = Operation.safeParse(value)
  expect(r.success, `expected ${JSON.stringify(value)?.slice(0, 100)} to be rejected`).toBe(false)
  return r.error!.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`)
}

describe('Operation: exec', () => {
  it('accepts argv and defaults shell to false', () => {
    expect(Operation.parse({ type: 'exec', argv: ['uname', '-n'] })).toEqual({ type: 'exec', argv: ['uname', '-n'], shell: false })
  })

  it('keeps env, cwd and stdin', () => {
    const op = { type: 'exec', argv: ['env'], env: { FOO: 'bar', _X1: '' }, cwd: '/tmp', stdin: 'input' }
    expect(Operation.parse(op)).toEqual({ ...op, shell: false })
  })

  it('accepts a shell string with shell: true', () => {
    expect(Operation.parse({ type: 'exec', shell: true, command: 'df -h | tail -n +2' })).toEqual({
      type: 'exec',
      shell: true,
      command: 'df -h | tail -n +2',
    })
  })

  it('rejects a shell string without shell: true, on the command field', () => {
    // One issue, on the field the user got wrong: not "argv is required", which would send
    // them the wrong way.
    expect(issues({ type: 'exec', command: 'ls | wc -l' })).toEqual(['command: needs shell: true (or use argv)'])
  })

  it('rejects argv together with shell: true, naming argv', () => {
    expect(issues({ type: 'exec', shell: true, command: 'ls', argv: ['ls'] })).toEqual([
      'argv: must not be set when shell is true (use command)',
    ])
  })

  it('rejects shell: true without a command, naming command', () => {
    expect(issues({ type: 'exec', shell: true })).toEqual(['command: is required when shell is true'])
  })

  it('names argv when nothing to run is given', () => {
    expect(issues({ type: 'exec' })).toEqual(['argv: is required (or set shell: true and command)'])
  })

  it('rejects an empty argv and an empty program name', () => {
    expect(issues({ type: 'exec', argv: [] })).toEqual(['argv: must name a program'])
    expect(issues({ type: 'exec', argv: [''] })).toEqual(['argv.0: must name a program'])
    expect(issues({ type: 'exec', shell: true, command: '' })[0]).toBe('command: must not be empty')
  })

  it('refuses a NUL byte anywhere, naming the field: exec would cut the word there', () => {
    const nul = 'must not contain a NUL byte'
    expect(issues({ type: 'exec', argv: ['rm', '-rf', '/\0tmp/x'] })).toEqual([`argv.2: ${nul}`])
    expect(issues({ type: 'exec', shell: true, command: 'rm -rf /\0tmp' })).toEqual([`command: ${nul}`])
    expect(issues({ type: 'exec', argv: ['env'], env: { TARGET: '/\0tmp' } })).toEqual([`env.TARGET: ${nul}`])
    expect(issues({ type: 'exec', argv: ['ls'], cwd: '/\0tmp' })).toEqual([`cwd: ${nul}`])
    expect(issues({ type: 'exec', argv: ['sh'], stdin: 'echo hi\0' })).toEqual([`stdin: ${nul}`])
    expect(Operation.parse({ type: 'exec', argv: ['printf', '\\0'] })).toMatchObject({ argv: ['printf', '\\0'] })
  })

  it('rejects an unknown field, naming it (strict)', () => {
    const got = issues({ type: 'exec', argv: ['ls'], sudo: true })
    expect(got).toHaveLength(1)
    expect(got[0]).toContain('sudo')
  })

  it('rejects fields of the wrong type, naming them', () => {
    expect(issues({ type: 'exec', argv: 'ls -l' })[0]).toMatch(/^argv: /)
    expect(issues({ type: 'exec', argv: ['ls'], shell: 'yes' })[0]).toMatch(/^shell: /)
    expect(issues({ type: 'exec', argv: ['ls'], env: { 'BAD-NAME': 'x' } })[0]).toMatch(/^env\.BAD-NAME: /)
  })

  it('accepts a command of exactly MAX_COMMAND_BYTES and rejects one byte more, naming argv', () => {
    // argv counts each argument plus one separator byte.
    const fits = ['x'.repeat(MAX_COMMAND_BYTES - 1)]
    expect(Operation.safeParse({ type: 'exec', argv: fits }).success).toBe(true)
    const got = issues({ type: 'exec', argv: ['x'.repeat(MAX_COMMAND_BYTES)] })
    expect(got).toHaveLength(1)
    expect(got[0]).toMatch(/^argv: is \d+ bytes; the most a command may take is 65536$/)
  })

  it('counts argv over all arguments', () => {
    const half = 'y'.repeat(MAX_COMMAND_BYTES / 2)
    expect(issues({ type: 'exec', argv: ['echo', half, half] })[0]).toMatch(/^argv: is \d+ bytes/)
  })

  it('counts bytes, not characters, and names command for a shell string', () => {
    expect(Operation.safeParse({ type: 'exec', shell: true, command: 'x'.repeat(MAX_COMMAND_BYTES) }).success).toBe(true)
    // 'é' is two bytes in UTF-8: fewer characters than the limit, more bytes.
    const got = issues({ type: 'exec', shell: true, command: 'é'.repeat(MAX_COMMAND_BYTES / 2 + 1) })
    expect(got).toEqual([`command: is ${MAX_COMMAND_BYTES + 2} bytes; the most a command may take is ${MAX_COMMAND_BYTES}`])
  })

  it('turns a failure into one invalid_input naming the field', () => {
    const r = Operation.safeParse({ type: 'exec', shell: true, command: 'ls', argv: ['ls'] })
    const err = invalidInput(r.error!, 'operation')
    expect(err.code).toBe('invalid_input')
    expect(err.field).toBe('operation.argv')
    expect(err.message).toBe('operation.argv: must not be set when shell is true (use command)')
  })
})

describe('Operation: type', () => {
  it('rejects an unknown type, naming the type field', () => {
    const got = issues({ type: 'nuke', argv: ['rm', '-rf', '/'] })
    expect(got).toHaveLength(1)
    expect(got[0]).toMatch(/^type: /)
    expect(got[0]).toContain("'exec' | 'ping' | 'facts'")
  })

  it('rejects a missing type and a non-object', () => {
    expect(issues({ argv: ['ls'] })[0]).toMatch(/^type: /)
    expect(issues('ls')).toHaveLength(1)
    expect(issues(null)).toHaveLength(1)
  })
})

describe('Operation: ping and facts', () => {
  it('accepts them bare', () => {
    expect(Operation.parse({ type: 'ping' })).toEqual({ type: 'ping' })
    expect(Operation.parse({ type: 'facts' })).toEqual({ type: 'facts' })
  })

  it('are strict: any other field is rejected and named', () => {
    const ping = issues({ type: 'ping', argv: ['ls'] })
    expect(ping).toHaveLength(1)
    expect(ping[0]).toContain('argv')
    const facts = issues({ type: 'facts', command: 'uname' })
    expect(facts).toHaveLength(1)
    expect(facts[0]).toContain('command')
  })
})

describe('describeOperation', () => {
  it('quotes only what needs it', () => {
    expect(describeOperation(Operation.parse({ type: 'exec', argv: ['echo', 'a b', "it's", 'plain-1.0'] }))).toBe(
      `echo 'a b' 'it'\\''s' plain-1.0`,
    )
    expect(describeOperation(Operation.parse({ type: 'exec', shell: true, command: 'ls | wc' }))).toBe('sh -c "ls | wc"')
    expect(describeOperation({ type: 'ping' })).toBe('ping')
    expect(describeOperation({ type: 'facts' })).toBe('facts')
  })
})
