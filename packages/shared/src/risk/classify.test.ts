import { describe, expect, it } from 'vitest'
import { MAX_COMMAND_BYTES } from '../schema/operation.ts'
import { DESTRUCTIVE, ORDINARY } from './cases.ts'
import { classifyRisk } from './index.ts'
import { REASON } from './reasons.ts'

const sh = (command: string, more: { cwd?: string; stdin?: string; env?: Record<string, string> } = {}) => classifyRisk({ type: 'exec', shell: true, command, ...more })
const argv = (...a: string[]) => classifyRisk({ type: 'exec', shell: false, argv: a })

describe('classifyRisk over its table', () => {
  it('holds at least 100 destructive spellings and 100 ordinary commands', () => {
    expect(DESTRUCTIVE.length).toBeGreaterThanOrEqual(100)
    expect(ORDINARY.length).toBeGreaterThanOrEqual(100)
  })
  it.each(DESTRUCTIVE.map((c) => [c.name, c] as const))('marks %s destructive', (_name, c) => {
    const risk = classifyRisk(c.op)
    expect(risk.class).toBe('destructive')
    expect(risk.reasons).toContain(c.reason)
  })
  it.each(ORDINARY.map((c) => [c.name, c] as const))('leaves %s safe', (_name, c) => {
    expect(classifyRisk(c.op)).toEqual({ class: 'safe', reasons: [] })
  })
})

describe('classifyRisk', () => {
  it('gives one reason per finding, in words an operator reads', () => {
    expect(sh('d=$(mktemp -d) && test -d "$d" && cd "$d" && rm -rf ./* && cd / && rmdir "$d" && echo done')).toEqual({ class: 'destructive', reasons: [REASON.recursiveDelete] })
    expect(sh('sudo reboot; rm -rf /')).toEqual({ class: 'destructive', reasons: [REASON.power, REASON.recursiveDelete] })
  })

  it('reads argv word by word: nothing in it is a shell', () => {
    expect(argv('rm', '-rf', '/').class).toBe('destructive')
    expect(argv('echo', 'rm -rf /').class).toBe('safe')
    expect(argv('ls', '$(reboot)').class).toBe('safe')
    expect(classifyRisk({ type: 'ping' }).class).toBe('safe')
    expect(classifyRisk({ type: 'facts' }).class).toBe('safe')
  })

  it('resolves relative paths against cwd, and takes a missing cwd for one that may be /', () => {
    for (const command of ['rm -rf *', 'rm -rf .', 'rm -rf ./*', 'find . -delete']) {
      expect(sh(command, { cwd: '/' }).class, command).toBe('destructive')
      expect(sh(command).class, command).toBe('destructive')
      expect(sh(command, { cwd: '/tmp/build' }).class, command).toBe('safe')
    }
    expect(sh('rm -rf ../..', { cwd: '/srv/app' }).class).toBe('destructive')
    expect(sh('rm -rf ..', { cwd: '/srv/app/tmp' }).class).toBe('safe')
  })

  it('reads stdin when a shell (or an interpreter) takes its program from it', () => {
    expect(classifyRisk({ type: 'exec', shell: false, argv: ['sh'], stdin: 'rm -rf /' }).class).toBe('destructive')
    expect(classifyRisk({ type: 'exec', shell: false, argv: ['cat'], stdin: 'rm -rf /' }).class).toBe('safe')
    expect(sh('cat | sh', { stdin: 'reboot' }).reasons).toEqual([REASON.power])
    expect(sh('sh -s', { stdin: 'echo ok' }).class).toBe('safe')
  })

  it('takes variables from env, and a program given as a variable for one it cannot check', () => {
    expect(sh('rm -rf "$TARGET"', { env: { TARGET: '/' } }).class).toBe('destructive')
    expect(sh('rm -rf "$TARGET"', { env: { TARGET: '/srv/app/cache' } }).class).toBe('safe')
    expect(sh('$TOOL --version', { env: { TOOL: 'reboot' } }).reasons).toEqual([REASON.power])
    expect(sh('$TOOL --version').reasons).toEqual(['cannot be checked: the program is a variable ($TOOL)'])
  })

  it('checks the commands inside substitutions wherever they stand', () => {
    expect(sh('echo "$(rm -rf /)"').reasons).toEqual([REASON.recursiveDelete])
    expect(sh('diff <(ls /etc) <(reboot)').reasons).toEqual([REASON.power])
    expect(sh('x=$(shutdown -h now)').reasons).toEqual([REASON.power])
    expect(sh('[[ -n $(kill -9 -1) ]]').reasons).toEqual([REASON.killAll])
  })

  it('counts what nests too deeply or is too large to check as needing a confirmation', () => {
    expect(sh(`${'sudo nice '.repeat(10)}echo hi`).reasons).toEqual([REASON.tooDeep])
    expect(classifyRisk({ type: 'exec', shell: false, argv: ['sh'], stdin: `${'echo hi\n'.repeat(MAX_COMMAND_BYTES / 8)}x` }).reasons).toEqual([REASON.tooLarge])
    expect(sh('for a in {1..64}; do for b in {1..64}; do for c in {1..64}; do echo $a$b$c; done; done; done').reasons).toEqual([REASON.tooLarge])
  })

  it('answers the same for the same operation, and a caller cannot change what it remembers', () => {
    const op = { type: 'exec' as const, shell: true, command: 'reboot' }
    const first = classifyRisk(op)
    first.reasons.push('tampered')
    expect(classifyRisk({ ...op })).toEqual({ class: 'destructive', reasons: [REASON.power] })
  })

  it('stays bounded on hostile input of the largest size a command may have', () => {
    // Inputs that made the earlier regex-based rules backtrack exponentially; the test's own
    // timeout is the bound: these finish at once or not at all.
    const n = Math.floor(MAX_COMMAND_BYTES / 4)
    expect(argv('rm', ...Array.from({ length: n }, () => '-r')).class).toBe('safe')
    expect(sh(`rm ${'-rf '.repeat(n / 2)}/`).class).toBe('destructive')
    expect(sh('curl '.repeat(Math.floor(MAX_COMMAND_BYTES / 5))).class).toBe('safe')
    expect(sh(`chmod ${'-R '.repeat(n / 2)}x /`).class).toBe('destructive')
    expect(sh(`echo ${'{a,b}'.repeat(1000)}`).class).toBe('safe')
    expect(sh(`echo ${'$('.repeat(2000)}${')'.repeat(2000)}`).class).toBe('destructive')
  })
})
