import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { PreambleReader, remoteCommand, shQuote } from './command.ts'

const WORDS = ['plain', 'a b', "it's", "''", '"double"', '$HOME', '${x}', '; echo pwned', 'a\nb', 'tab\there', 'ünïcødé ✓ 日本', '', '*', '?', '`id`', '$(id)', '\\', '\\n', '-n', '--', '!', '#x', '~', 'a=b', '|&<>']

/** What /bin/sh makes of a command line: its words, split by NUL. */
const shWords = (line: string) => execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' }).split('\0').slice(0, -1)

describe('shQuote', () => {
  it('gives /bin/sh back every word unchanged', () => {
    expect(shWords(WORDS.map(shQuote).join(' '))).toEqual(WORDS)
  })

  it('leaves plain words bare and quotes the rest', () => {
    expect(shQuote('uname')).toBe('uname')
    expect(shQuote('/usr/bin/env')).toBe('/usr/bin/env')
    expect(shQuote("it's")).toBe(`'it'\\''s'`)
    expect(shQuote('')).toBe("''")
  })
})

describe('remoteCommand', () => {
  const run = (line: string) => execFileSync('/bin/sh', ['-c', line], { encoding: 'utf8' })

  it('runs argv after a pgid preamble, with env and cwd', () => {
    const { line, marker } = remoteCommand({ type: 'exec', shell: false, argv: ['sh', '-c', 'printf "%s|%s|%s" "$A" "$(pwd)" "$1"', 'zero', "one 'two'"], env: { A: 'x $y' }, cwd: '/tmp' }, 'n0nce')
    const out = run(line)
    expect(out).toMatch(new RegExp(`^${marker} pgid \\d+\\nx \\$y\\|/tmp\\|one 'two'$`))
  })

  it('says notfound for a missing program and nocwd for a missing directory', () => {
    const notfound = remoteCommand({ type: 'exec', shell: false, argv: ['/nonexistent/x'] }, 'n')
    expect(() => run(notfound.line)).toThrow()
    expect(execSafe(notfound.line)).toBe(`${notfound.marker} notfound\n`)
    const nocwd = remoteCommand({ type: 'exec', shell: false, argv: ['true'], cwd: '/nonexistent' }, 'n')
    expect(execSafe(nocwd.line)).toBe(`${nocwd.marker} nocwd\n`)
  })

  it('refuses an environment name it cannot put on a command line', () => {
    expect(() => remoteCommand({ type: 'exec', shell: false, argv: ['true'], env: { 'A;rm': 'x' } })).toThrow(/not valid/)
  })
})

describe('PreambleReader', () => {
  it('strips the preamble split across reads and keeps what came before and after', () => {
    const r = new PreambleReader('\x1eapiary-n')
    const parts = ['motd\n\x1eapi', 'ary-n pg', 'id 42\nhel', 'lo\n']
    const out: string[] = []
    const said = []
    for (const p of parts) {
      const x = r.push(Buffer.from(p))
      if (x.preamble) said.push(x.preamble)
      out.push(x.output.toString())
    }
    expect(said).toEqual([{ kind: 'pgid', pgid: 42 }])
    expect(out.join('')).toBe('motd\nhello\n')
  })

  it('passes everything through after its limit when no preamble comes', () => {
    const r = new PreambleReader('\x1eapiary-n', 8)
    expect(r.push(Buffer.from('12345')).output.length).toBe(0)
    expect(r.push(Buffer.from('6789')).output.toString()).toBe('123456789')
    expect(r.push(Buffer.from('x')).output.toString()).toBe('x')
  })
})

function execSafe(line: string): string {
  try {
    return execFileSync('/bin/sh', ['-c', line], { encoding: 'utf8' })
  } catch (err) {
    return (err as { stdout: string }).stdout
  }
}
