import { describe, expect, it } from 'vitest'
import { type Command, parseShell, type Stmt } from './shell-tree.ts'

const parse = (src: string): Stmt[] => {
  const r = parseShell(src)
  if ('error' in r) throw new Error(r.error)
  return r.stmts
}
const cmd = (src: string): Command => parse(src)[0]!.cmd!

describe('parseShell reads mvdan/sh’s tree', () => {
  it('leaves no global behind (GopherJS puts its `require` on globalThis)', () => {
    expect(parseShell('true')).toMatchObject({ stmts: [{ cmd: { t: 'call' } }] })
    expect(Object.hasOwn(globalThis, 'require')).toBe(false)
  })

  it('tells every redirection, list and expansion operator apart', () => {
    const [s] = parse('x >a >>b <c <>d <&0 >&2 >|g <<h <<<j &>k &>>l 2>/dev/null\nh\n')
    expect(s!.redirs.map((r) => r.op)).toEqual(['out', 'append', 'in', 'inout', 'dupin', 'dupout', 'clobber', 'heredoc', 'herestring', 'all', 'appendall', 'out'])
    expect(s!.redirs.at(-1)?.fd).toBe('2')
    expect(['a && b', 'a || b', 'a | b', 'a |& b'].map((src) => cmd(src).t)).toEqual(['and', 'or', 'pipe', 'pipe'])
    const args = (cmd('x ${a:-d} ${a=d} ${a:?} ${a+d} ${#a} ${a%x}') as Extract<Command, { t: 'call' }>).args.slice(1)
    expect(args.map((w) => w.parts[0])).toMatchObject([
      { t: 'param', name: 'a', plain: true, op: { kind: 'default', colon: true }, src: '${a:-d}' },
      { t: 'param', op: { kind: 'assign', colon: false } },
      { t: 'param', op: { kind: 'error', colon: true } },
      { t: 'param', op: { kind: 'alternate', colon: false } },
      { t: 'param', plain: false },
      { t: 'param', plain: false },
    ])
  })

  it('keeps quoting, substitutions and their source text, in UTF-8', () => {
    const call = cmd(`echo "héllo $X" 'a b' $'\\x41' $(date) \`id\` <(ls) $((1+2))`) as Extract<Command, { t: 'call' }>
    expect(call.args.slice(1).map((w) => w.parts[0])).toMatchObject([
      { t: 'dbl', parts: [{ t: 'lit', value: 'héllo ' }, { t: 'param', name: 'X', src: '$X' }] },
      { t: 'sgl', value: 'a b', dollar: false },
      { t: 'sgl', value: '\\x41', dollar: true },
      { t: 'subst', src: '$(date)' },
      { t: 'subst', src: '`id`' },
      { t: 'proc', src: '<(ls)' },
      { t: 'arith', src: '$((1+2))' },
    ])
  })

  it('reads every compound command', () => {
    const kinds = parse(
      [
        'if a; then b; elif c; then d; else e; fi',
        'while a; do b; done',
        'until a; do b; done',
        'for i in 1 2; do a; done',
        'for ((i=0; i<3; i++)); do a; done',
        'case $x in a|b) c;; esac',
        'f() { a; }',
        '(a)',
        '{ a; }',
        'export A=1 B',
        'time a',
        '[[ -f $(a) ]]',
        '(( $(a) + 1 ))',
        'let x=$(a)',
        'a &',
      ].join('\n'),
    ).map((s) => s.cmd?.t)
    expect(kinds).toEqual(['if', 'while', 'while', 'for', 'for', 'case', 'func', 'subshell', 'block', 'decl', 'wrapped', 'words', 'words', 'words', 'call'])
    // Tests and arithmetic run nothing but their substitutions: those are kept.
    for (const s of parse('[[ -f $(a) ]]; (( $(b) + 1 )); let x=$(c)')) {
      const words = s.cmd?.t === 'words' ? s.cmd.words : []
      expect(words.flatMap((w) => w.parts).filter((p) => p.t === 'subst')).toHaveLength(1)
    }
  })

  it('marks a here-document literal when its delimiter is quoted', () => {
    const [quoted, open] = parse("a <<'EOF'\n$x\nEOF\nb <<EOF\n$x\nEOF\n")
    expect(quoted!.redirs[0]).toMatchObject({ op: 'heredoc', quoted: true, hdoc: { parts: [{ t: 'lit', value: '$x\n' }] } })
    expect(open!.redirs[0]).toMatchObject({ op: 'heredoc', quoted: false, hdoc: { parts: [{ t: 'param', name: 'x' }, { t: 'lit', value: '\n' }] } })
  })

  it('says where and why text does not parse', () => {
    expect(parseShell("echo 'open")).toEqual({ error: "1:6: reached EOF without closing quote '" })
    expect(parseShell('if then fi')).toMatchObject({ error: expect.stringMatching(/^1:1: /) })
  })
})
