import { MAX_COMMAND_BYTES } from '../schema/operation.ts'
import { runCall, unescapeC } from './commands.ts'
import { type Arg, basename, copyScope, Findings, type Input, lit, litArg, NONE, raw, type Scope, type Seg, SOMEWHERE, unknownPart } from './model.ts'
import { directory } from './paths.ts'
import { REASON, unparsable, variableProgram } from './reasons.ts'
import { checkWrite } from './rules.ts'
import { type Assign, type Command, type Part, parseShell, type Redir, type Stmt, type Word } from './shell-tree.ts'

/** Simple commands looked at, at most, for one operation (loops and nested shells included). */
const MAX_STEPS = 20_000
/** Shells within shells, wrappers within wrappers. */
const MAX_DEPTH = 16
/** A variable whose value is unknown but never empty: a loop's variable over words not known here. */
const UNKNOWN_VALUE = '\u0002'
/** The most words one brace expansion (`{a,b}{c,d}`) is taken to make. */
const MAX_BRACE = 64

const PROGRAM: Input = { k: 'program', name: 'a command' }

/** Reasons an operation needs a confirmation, from its command, argv, stdin, env and cwd. */
export function findReasons(op: { shell?: boolean; command?: string; argv?: string[]; env?: Record<string, string>; cwd?: string; stdin?: string }): string[] {
  const f = new Findings()
  const w = new Walker(f)
  const scope: Scope = {
    vars: new Map(Object.entries(op.env ?? {})),
    cwd: op.cwd ? directory(op.cwd, SOMEWHERE) : SOMEWHERE,
    positional: null,
    recursive: false,
    depth: 0,
    functions: new Set(),
  }
  const stdin: Input = op.stdin === undefined ? NONE : { k: 'text', text: op.stdin }
  try {
    if (op.shell) w.script(op.command ?? '', scope, stdin)
    else w.call((op.argv ?? []).map(litArg), scope, stdin)
  } catch (err) {
    // The parser gives up on deep nesting before this walk would; should it not, the answer
    // is the same.
    if (!(err instanceof RangeError)) throw err
    f.add(REASON.tooDeep)
  }
  return [...f.reasons]
}

class Walker {
  constructor(private readonly f: Findings) {}

  script(src: string, scope: Scope, stdin: Input): Input {
    if (scope.depth > MAX_DEPTH) return this.give(REASON.tooDeep)
    // Parsing is about 3 ms per KiB; a command may take 64 KiB, and so may a script on stdin.
    if (Buffer.byteLength(src) > MAX_COMMAND_BYTES) return this.give(REASON.tooLarge)
    const parsed = parseShell(src)
    if ('error' in parsed) return this.give(unparsable(parsed.error))
    return this.stmts(parsed.stmts, scope, stdin)
  }

  private give(reason: string): Input {
    this.f.add(reason)
    return PROGRAM
  }

  /** A simple command, its words expanded. */
  call(words: Arg[], scope: Scope, stdin: Input): Input {
    if (++this.f.steps > MAX_STEPS) return this.give(REASON.tooLarge)
    if (scope.depth > MAX_DEPTH) return this.give(REASON.tooDeep)
    const prog = words[0]
    if (!prog) return NONE
    const name = lit(prog)
    if (name === undefined) {
      const u = unknownPart(prog)
      if (u?.k === 'var') return this.give(variableProgram(u.raw))
      const out = u?.k === 'sub' ? u.out.k : undefined
      return this.give(out === 'download' ? REASON.downloadShell : out === 'decoded' ? REASON.decoded : REASON.substCommand)
    }
    // argv is not expanded, but a program named like a variable is not one to guess about.
    if (/[$`]/.test(name)) return this.give(variableProgram(name))
    if (scope.functions.has(name)) return PROGRAM
    return runCall({
      name: basename(name),
      path: name,
      args: words.slice(1),
      scope,
      stdin,
      f: this.f,
      run: (w, s, i) => this.call(w, s, i),
      script: (t, s, i) => this.script(t, s, i),
    })
  }

  private stmts(list: Stmt[], scope: Scope, stdin: Input): Input {
    let out: Input = NONE
    for (const s of list) out = this.stmt(s, scope, stdin)
    return out
  }

  private stmt(s: Stmt, scope: Scope, stdin: Input): Input {
    const input = this.redirects(s.redirs, scope, stdin)
    if (!s.cmd) return NONE
    const out = this.command(s.cmd, scope, input)
    return s.redirs.some((r) => ['out', 'append', 'clobber', 'all', 'appendall'].includes(r.op) && (r.fd === null || r.fd === '1')) ? NONE : out
  }

  private command(c: Command, scope: Scope, stdin: Input): Input {
    switch (c.t) {
      case 'call': {
        if (c.args.length === 0) {
          for (const a of c.assigns) this.assign(a, scope, stdin, false)
          return NONE
        }
        const words = c.args.flatMap((w) => this.expand(w, scope, stdin))
        if (c.assigns.length === 0) return this.call(words, scope, stdin)
        // `X=/ sh -c 'rm -rf $X'`: the assignments are the command's environment, not the script's.
        const env = copyScope(scope)
        for (const a of c.assigns) this.assign(a, env, stdin, false)
        return this.call(words, env, stdin)
      }
      case 'and':
      case 'or':
        this.stmt(c.x, scope, stdin)
        return this.stmt(c.y, scope, stdin)
      case 'pipe':
        return this.stmt(c.y, copyScope(scope), this.stmt(c.x, copyScope(scope), stdin))
      case 'subshell':
        return this.stmts(c.stmts, copyScope(scope), stdin)
      case 'block':
        return this.stmts(c.stmts, scope, stdin)
      case 'if': {
        this.stmts(c.cond, scope, stdin)
        const out = this.stmts(c.then, scope, stdin)
        if (c.else) this.command(c.else, scope, stdin)
        return out
      }
      case 'while':
        this.stmts(c.cond, scope, stdin)
        return this.stmts(c.body, scope, stdin)
      case 'for':
        return this.loop(c, scope, stdin)
      case 'case': {
        this.expandOne(c.word, scope, stdin)
        let out: Input = NONE
        for (const item of c.items) {
          for (const p of item.patterns) this.expandOne(p, scope, stdin)
          out = this.stmts(item.stmts, scope, stdin)
        }
        return out
      }
      case 'func':
        // The body is checked where it is defined, as if it were called.
        if (callsItselfInParallel(c.name, c.body)) this.f.add(REASON.forkBomb)
        scope.functions.add(c.name)
        this.stmt(c.body, copyScope(scope, { positional: null }), NONE)
        return NONE
      case 'decl':
        for (const a of c.args) {
          if (a.name === null) {
            if (a.value) this.expandOne(a.value, scope, stdin)
          } else this.assign(a, scope, stdin, true)
        }
        return NONE
      case 'wrapped':
        return this.stmt(c.stmt, scope, stdin)
      case 'words':
        for (const w of c.words) this.expandOne(w, scope, stdin)
        return NONE
    }
  }

  private loop(c: Extract<Command, { t: 'for' }>, scope: Scope, stdin: Input): Input {
    for (const w of c.words) this.expandOne(w, scope, stdin)
    if (c.name === null) return this.stmts(c.body, scope, stdin)
    const items = c.items === null ? (scope.positional?.map(litArg) ?? null) : c.items.flatMap((w) => this.expand(w, scope, stdin))
    const values = items?.map(lit) ?? []
    if (items && values.length > 0 && values.length <= MAX_BRACE && values.every((v) => v !== undefined)) {
      let out: Input = NONE
      for (const v of values as string[]) {
        scope.vars.set(c.name, v)
        out = this.stmts(c.body, scope, stdin)
      }
      return out
    }
    scope.vars.set(c.name, UNKNOWN_VALUE)
    return this.stmts(c.body, scope, stdin)
  }

  private assign(a: Assign, scope: Scope, stdin: Input, declared: boolean) {
    if (a.name === null) return
    if (a.array) {
      for (const w of a.array) this.expand(w, scope, stdin)
      scope.vars.delete(a.name)
      return
    }
    // `export X` keeps X; `X=` empties it.
    if (!a.value) {
      if (!declared) scope.vars.set(a.name, '')
      return
    }
    const v = lit(this.expandOne(a.value, scope, stdin))
    if (v === undefined) scope.vars.delete(a.name)
    else scope.vars.set(a.name, v)
  }

  private redirects(redirs: Redir[], scope: Scope, stdin: Input): Input {
    let input = stdin
    for (const r of redirs) {
      const target = r.word ? this.expandOne(r.word, scope, stdin) : undefined
      const reads = r.fd === null || r.fd === '0'
      switch (r.op) {
        case 'heredoc':
          if (!reads) break
          if (!r.hdoc) input = { k: 'text', text: '' }
          else if (r.quoted) input = { k: 'text', text: r.hdoc.parts.map((p) => (p.t === 'lit' ? p.value : '')).join('') }
          else input = { k: 'text', text: raw(this.expandOne(r.hdoc, scope, stdin, true)) }
          break
        case 'herestring':
          if (reads) input = { k: 'text', text: target ? `${raw(target)}\n` : '\n' }
          break
        case 'in': {
          if (!reads || !target) break
          const only = target.segs.length === 1 ? target.segs[0] : undefined
          const path = lit(target) ?? ''
          if (only?.k === 'proc') input = only.out
          else if (/^\/dev\/(?:tcp|udp)\//.test(path)) input = { k: 'download' }
          else if (!['/dev/stdin', '/proc/self/fd/0', '/dev/fd/0'].includes(path)) input = { k: 'file' }
          break
        }
        case 'out':
        case 'clobber':
        case 'all':
        case 'inout':
          if (target) checkWrite(this.f, scope, target, true)
          break
        case 'append':
        case 'appendall':
          if (target) checkWrite(this.f, scope, target, false)
          break
        case 'dupout':
          // `>& FILE` (bash) writes FILE; `>&2` only duplicates a descriptor.
          if (target && !/^(?:\d+-?|-)$/.test(lit(target) ?? '0')) checkWrite(this.f, scope, target, true)
          break
        case 'dupin':
          break
      }
    }
    return input
  }

  /** A word as the shell expands it: brace expansion, then field splitting of unquoted values. */
  private expand(w: Word, scope: Scope, stdin: Input): Arg[] {
    return braceAlternatives(w.parts).flatMap((parts) => fields(this.segs(parts, false, scope, stdin, false)))
  }

  private expandOne(w: Word, scope: Scope, stdin: Input, heredoc = false): Arg {
    return { segs: this.segs(w.parts, heredoc, scope, stdin, heredoc) }
  }

  private segs(parts: Part[], quoted: boolean, scope: Scope, stdin: Input, heredoc: boolean): Seg[] {
    const out: Seg[] = []
    for (const p of parts) {
      switch (p.t) {
        case 'lit':
          out.push({ k: 'lit', s: unescapeShell(p.value, quoted), quoted })
          break
        case 'sgl':
          out.push({ k: 'lit', s: p.dollar ? unescapeC(p.value) : p.value, quoted: true })
          break
        case 'dbl':
          out.push(...this.segs(p.parts, true, scope, stdin, heredoc))
          break
        case 'param':
          out.push(...this.param(p, quoted, scope, stdin))
          break
        case 'subst':
          out.push({ k: 'sub', quoted, out: this.stmts(p.stmts, copyScope(scope), stdin), raw: p.src })
          break
        case 'proc':
          out.push({ k: 'proc', out: this.stmts(p.stmts, copyScope(scope), NONE), raw: p.src })
          break
        case 'arith':
          for (const w of p.words) this.expandOne(w, scope, stdin)
          out.push({ k: 'var', name: p.src, quoted: true, empty: null, raw: p.src })
          break
        case 'glob':
          out.push({ k: 'lit', s: p.src, quoted: false })
          break
      }
    }
    return out
  }

  private param(p: Extract<Part, { t: 'param' }>, quoted: boolean, scope: Scope, stdin: Input): Seg[] {
    const name = p.name
    const alt = p.word ? lit(this.expandOne(p.word, scope, stdin)) : ''
    const known = (s: string): Seg[] => [{ k: 'lit', s, quoted, split: !quoted || name === '@' }]
    const unknown = (empty: string | null): Seg[] => [{ k: 'var', name: name || '?', quoted, empty, raw: p.src }]
    if (!p.plain) return unknown('')
    let value: string | undefined
    let nonEmpty = false
    if (/^\d+$/.test(name)) {
      if (name === '0') return unknown(null)
      value = scope.positional ? (scope.positional[Number(name) - 1] ?? '') : undefined
    } else if (name === '@' || name === '*') value = scope.positional?.join(' ')
    else if (['#', '?', '$', '!', '-', '_'].includes(name)) return unknown(null)
    else {
      const v = scope.vars.get(name)
      if (v === UNKNOWN_VALUE) nonEmpty = true
      else value = v
      // Unset here, these still have a value the shell knows.
      if (value === undefined && name === 'HOME') value = '~'
      if (value === undefined && name === 'PWD') value = scope.cwd === SOMEWHERE ? '.' : scope.cwd
    }
    const op = p.op
    if (value !== undefined) {
      const empty = value === ''
      if ((op?.kind === 'default' || op?.kind === 'assign') && empty && op.colon) return alt === undefined ? unknown(null) : known(alt)
      if (op?.kind === 'alternate') return !empty || !op.colon ? (alt === undefined ? unknown('') : known(alt)) : known('')
      if (op?.kind === 'error' && empty && op.colon) return unknown(null)
      return known(value)
    }
    if (op?.kind === 'default' || op?.kind === 'assign') return unknown(alt ?? '')
    if (op?.kind === 'error') return unknown(null)
    return unknown(nonEmpty ? null : '')
  }
}

/** Backslashes as the shell reads them: outside quotes any character is escaped, inside double quotes only $ ` " \ and newline. */
function unescapeShell(s: string, quoted: boolean): string {
  if (!s.includes('\\')) return s
  return s.replace(quoted ? /\\([$`"\\\n])/g : /\\([\s\S])/g, (_m, ch: string) => (ch === '\n' ? '' : ch))
}

/** Splits a word's unquoted variable values at blanks; an unquoted empty value leaves no word. */
function fields(segs: Seg[]): Arg[] {
  const out: Arg[] = []
  let cur: Seg[] = []
  let keep = false
  const flush = () => {
    if (cur.length > 0 || keep) out.push({ segs: cur.length > 0 ? cur : [{ k: 'lit', s: '', quoted: true }] })
    cur = []
    keep = false
  }
  for (const g of segs) {
    if (g.k === 'lit' && g.split) {
      const pieces = g.s.split(/[ \t\n]+/)
      pieces.forEach((piece, i) => {
        if (i > 0) flush()
        if (piece !== '') cur.push({ k: 'lit', s: piece, quoted: false })
      })
      continue
    }
    if ('quoted' in g && g.quoted) keep = true
    if (g.k === 'lit' && g.s === '' && !g.quoted) continue
    cur.push(g)
  }
  flush()
  return out
}

/** `{a,b}` and `{1..3}` in the literal parts of a word: the words it stands for (bounded). */
function braceAlternatives(parts: Part[]): Part[][] {
  let alts: Part[][] = [[]]
  for (const p of parts) {
    const options: Part[] = p.t === 'lit' && p.value.includes('{') ? braces(p.value).map((value) => ({ t: 'lit', value })) : [p]
    alts = alts.flatMap((a) => options.map((o) => [...a, o])).slice(0, MAX_BRACE)
  }
  return alts
}

function braces(s: string, depth = 0): string[] {
  for (let i = s.indexOf('{'); i >= 0 && depth < 8; i = s.indexOf('{', i + 1)) {
    if (s[i - 1] === '\\' || s[i - 1] === '$') continue
    let level = 0
    const commas: number[] = []
    let j = i
    for (; j < s.length; j++) {
      const ch = s[j]
      if (ch === '\\') j++
      else if (ch === '{') level++
      else if (ch === '}' && --level === 0) break
      else if (ch === ',' && level === 1) commas.push(j)
    }
    if (j >= s.length) return [s]
    const inner = s.slice(i + 1, j)
    let items: string[]
    if (commas.length > 0) items = [i, ...commas].map((start, k) => s.slice(start + 1, k < commas.length ? commas[k] : j))
    else {
      const seq = /^(-?\d{1,6})\.\.(-?\d{1,6})$/.exec(inner)
      if (!seq) continue
      const [from, to] = [Number(seq[1]), Number(seq[2])]
      const step = from <= to ? 1 : -1
      items = []
      for (let n = from; items.length < MAX_BRACE && n !== to + step; n += step) items.push(String(n))
    }
    const prefix = s.slice(0, i)
    const suffix = s.slice(j + 1)
    return items.flatMap((it) => braces(prefix + it + suffix, depth + 1)).slice(0, MAX_BRACE)
  }
  return [s]
}

/** `:(){ :|:& };:`: a function that starts itself in a pipeline or in the background. */
function callsItselfInParallel(name: string, body: Stmt): boolean {
  const self = (s: Stmt) => s.cmd?.t === 'call' && s.cmd.args[0]?.parts.every((p) => p.t === 'lit') === true && s.cmd.args[0].parts.map((p) => (p.t === 'lit' ? p.value : '')).join('') === name
  const visit = (s: Stmt): boolean => {
    if (s.background && self(s)) return true
    const c = s.cmd
    if (!c) return false
    if (c.t === 'pipe' && (self(c.x) || self(c.y))) return true
    return children(c).some(visit)
  }
  return visit(body)
}

function children(c: Command): Stmt[] {
  switch (c.t) {
    case 'and':
    case 'or':
    case 'pipe':
      return [c.x, c.y]
    case 'subshell':
    case 'block':
      return c.stmts
    case 'if':
      return [...c.cond, ...c.then, ...(c.else ? [{ cmd: c.else, redirs: [], background: false }] : [])]
    case 'while':
      return [...c.cond, ...c.body]
    case 'for':
      return c.body
    case 'case':
      return c.items.flatMap((i) => i.stmts)
    case 'func':
      return [c.body]
    case 'wrapped':
      return [c.stmt]
    default:
      return []
  }
}
