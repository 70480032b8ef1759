import { createRequire } from 'node:module'
import type MvdanSh from 'mvdan-sh'

let lib: typeof MvdanSh | undefined
/** One parser, reused: making one costs more than most parses (0.3 ms against 0.05 ms). */
let parser: ReturnType<typeof MvdanSh.syntax.NewParser> | undefined

/**
 * mvdan-sh, loaded on first use, synchronously. Loading it costs about 85 ms and 17 MB of
 * resident memory (GopherJS initialises the whole Go runtime): every node's idle worker
 * would carry that for nothing, since only a task's check needs it. Loaded with `require`,
 * which esbuild leaves alone, so each program that classifies must declare mvdan-sh itself
 * (bundles.test.ts checks that they do).
 */
function mvdan(): typeof MvdanSh {
  if (!lib) {
    // GopherJS puts its module's `require` on globalThis. In an ES module daemon that global
    // is a trap: esbuild's `__require` shim and libraries that sniff `typeof require` would
    // then resolve modules from mvdan-sh's folder. The parser does no I/O: take it back.
    const had = Object.hasOwn(globalThis, 'require')
    lib = createRequire(import.meta.url)('mvdan-sh') as typeof MvdanSh
    if (!had) delete (globalThis as { require?: unknown }).require
  }
  return lib
}

/**
 * The shell syntax tree the classifier reads: the parts of mvdan/sh's tree it needs, as plain
 * objects. Words keep their parts (quoted, expansions, substitutions) so that the classifier
 * knows what is literal and what is only known at run time.
 */
export interface Word {
  parts: Part[]
}

export type Part =
  | { t: 'lit'; value: string }
  | { t: 'sgl'; value: string; dollar: boolean }
  | { t: 'dbl'; parts: Part[] }
  /** `$X`, `${X:-default}`; `plain` when nothing but the value is asked for (no `#`, `/`, `:1`…). */
  | { t: 'param'; name: string; plain: boolean; op: ParamOp | null; word: Word | null; src: string }
  | { t: 'subst'; stmts: Stmt[]; src: string }
  | { t: 'proc'; stmts: Stmt[]; src: string }
  | { t: 'arith'; words: Word[]; src: string }
  | { t: 'glob'; src: string }

/** `${X-w}` and `${X:-w}` (default), `=` (assign), `?` (error), `+` (alternate). */
export type ParamOp = { kind: 'default' | 'assign' | 'error' | 'alternate'; colon: boolean }

export type RedirOp = 'in' | 'out' | 'append' | 'inout' | 'dupin' | 'dupout' | 'clobber' | 'heredoc' | 'herestring' | 'all' | 'appendall'

export interface Redir {
  op: RedirOp
  /** The file descriptor written before the operator (`2>`), if any. */
  fd: string | null
  word: Word | null
  /** A here-document's body; `quoted` when its delimiter was quoted (no expansion inside). */
  hdoc: Word | null
  quoted: boolean
}

export interface Stmt {
  cmd: Command | null
  redirs: Redir[]
  background: boolean
}

export interface Assign {
  name: string | null
  value: Word | null
  array: Word[] | null
}

export type Command =
  | { t: 'call'; assigns: Assign[]; args: Word[] }
  | { t: 'and' | 'or' | 'pipe'; x: Stmt; y: Stmt }
  | { t: 'subshell' | 'block'; stmts: Stmt[] }
  | { t: 'if'; cond: Stmt[]; then: Stmt[]; else: Command | null }
  | { t: 'while'; cond: Stmt[]; body: Stmt[] }
  | { t: 'for'; name: string | null; items: Word[] | null; words: Word[]; body: Stmt[] }
  | { t: 'case'; word: Word; items: Array<{ patterns: Word[]; stmts: Stmt[] }> }
  | { t: 'func'; name: string; body: Stmt }
  | { t: 'decl'; variant: string; args: Assign[] }
  | { t: 'wrapped'; stmt: Stmt }
  /** Tests, arithmetic, `let`: nothing runs but what their words substitute. */
  | { t: 'words'; words: Word[] }

// The GopherJS objects behind mvdan-sh's API. Its public wrappers cost about 25 µs per field
// read (each read converts a whole subtree): walking a 64 KiB script through them took 1.1 s,
// reading the objects underneath 44 ms. This file is the only one that knows their shape
// (fields as in mvdan.cc/sh/v3/syntax; slices as $array/$offset/$length; nil pointers as
// their type's `nil`); the pinned version and shell-tree.test.ts hold it to that.
type Go = Record<string, unknown> & { constructor: { string?: string; nil?: unknown } }

const typeOf = (x: unknown): string | undefined => (x as Go | null | undefined)?.constructor?.string
const isNil = (x: unknown): boolean => x === null || x === undefined || typeOf(x) === undefined || x === (x as Go).constructor.nil
const field = (x: Go, k: string): Go => x[k] as Go

function list(s: unknown): Go[] {
  const sl = s as { $array?: Go[]; $offset: number; $length: number } | null
  if (!sl?.$array) return []
  const out: Go[] = []
  for (let i = 0; i < sl.$length; i++) out.push(sl.$array[sl.$offset + i]!)
  return out
}

/** Go strings are held as one character per UTF-8 byte. */
function text(s: unknown): string {
  const v = String(s ?? '')
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 0x7f) return Buffer.from(v, 'latin1').toString('utf8')
  return v
}

const offset = (pos: unknown): number => Number((pos as { offs?: number } | null)?.offs ?? 0)

interface Ops {
  redir: Map<number, RedirOp>
  bin: Map<number, 'and' | 'or' | 'pipe'>
  exp: Map<number, ParamOp>
}
let ops: Ops | undefined

/** Operator codes, read off a parse of every operator so they never drift from the library. */
function calibrate(): Ops {
  const file = (src: string) => internal(mvdan().syntax.NewParser().Parse(src, ''))
  const stmts = list(file('x >a >>b <c <>d <&e >&f >|g <<h <<-i <<<j &>k &>>l\nh\ni\n').Stmts)
  const redirNames: RedirOp[] = ['out', 'append', 'in', 'inout', 'dupin', 'dupout', 'clobber', 'heredoc', 'heredoc', 'herestring', 'all', 'appendall']
  const redir = new Map(list(stmts[0]!.Redirs).map((r, i) => [Number(r.Op), redirNames[i]!]))
  const bin = new Map<number, 'and' | 'or' | 'pipe'>()
  for (const [src, name] of [['a && b', 'and'], ['a || b', 'or'], ['a | b', 'pipe'], ['a |& b', 'pipe']] as const) bin.set(Number(field(list(file(src).Stmts)[0]!, 'Cmd').Op), name)
  const exp = new Map<number, ParamOp>()
  const kinds = ['default', 'assign', 'error', 'alternate'] as const
  const words = list(field(list(file('x ${a-x} ${a:-x} ${a=x} ${a:=x} ${a?x} ${a:?x} ${a+x} ${a:+x}').Stmts)[0]!, 'Cmd').Args).slice(1)
  words.forEach((w, i) => exp.set(Number(field(list(w.Parts)[0]!, 'Exp').Op), { kind: kinds[i >> 1]!, colon: i % 2 === 1 }))
  return { redir, bin, exp }
}

function internal(file: unknown): Go {
  return (file as { __internal_object__: Go }).__internal_object__
}

/** Loads mvdan-sh and makes the parser, if not done yet. */
export function loadParser(): { ops: Ops; parser: NonNullable<typeof parser> } {
  ops ??= calibrate()
  parser ??= mvdan().syntax.NewParser(mvdan().syntax.Variant(mvdan().syntax.LangBash))
  return { ops, parser }
}

/** Parses shell text (bash, which accepts POSIX sh), or says why not. */
export function parseShell(src: string): { stmts: Stmt[] } | { error: string } {
  const { ops, parser } = loadParser()
  let file: unknown
  try {
    file = parser.Parse(src, '')
  } catch (err) {
    // Its recursive descent runs out of stack first on deep nesting: `$($($(…)))`.
    if (err instanceof RangeError) return { error: 'nested too deeply' }
    const e = err as { Error?: () => string; message?: string }
    return { error: typeof e?.Error === 'function' ? e.Error() : String(e?.message ?? err) }
  }
  const bytes = Buffer.from(src)
  return { stmts: new Reader(bytes, ops).stmts(field(internal(file), 'Stmts')) }
}

class Reader {
  constructor(
    private readonly src: Buffer,
    private readonly ops: Ops,
  ) {}

  private slice(from: number, to: number): string {
    return this.src.subarray(from, to).toString('utf8')
  }

  stmts(s: unknown): Stmt[] {
    return list(s).map((x) => this.stmt(x))
  }

  stmt(s: Go): Stmt {
    const cmd = field(s, 'Cmd')
    return {
      cmd: isNil(cmd) ? null : this.command(cmd),
      redirs: list(s.Redirs).map((r) => this.redir(r)),
      background: Boolean(s.Background),
    }
  }

  redir(r: Go): Redir {
    const word = field(r, 'Word')
    const hdoc = field(r, 'Hdoc')
    const n = field(r, 'N')
    const w = isNil(word) ? null : this.word(word)
    // A delimiter written with any quote or backslash (<<'EOF', <<"EOF", <<\EOF) keeps the body literal.
    const quoted = (w?.parts ?? []).some((p) => p.t !== 'lit' || p.value.includes('\\'))
    return { op: this.ops.redir.get(Number(r.Op)) ?? 'out', fd: isNil(n) ? null : text(n.Value), word: w, hdoc: isNil(hdoc) ? null : this.word(hdoc), quoted }
  }

  command(c: Go): Command {
    const t = typeOf(c)
    switch (t) {
      case '*syntax.CallExpr':
        return { t: 'call', assigns: list(c.Assigns).map((a) => this.assign(a)), args: list(c.Args).map((w) => this.word(w)) }
      case '*syntax.BinaryCmd':
        return { t: this.ops.bin.get(Number(c.Op)) ?? 'and', x: this.stmt(field(c, 'X')), y: this.stmt(field(c, 'Y')) }
      case '*syntax.Subshell':
        return { t: 'subshell', stmts: this.stmts(c.Stmts) }
      case '*syntax.Block':
        return { t: 'block', stmts: this.stmts(c.Stmts) }
      case '*syntax.IfClause': {
        const e = field(c, 'Else')
        return { t: 'if', cond: this.stmts(c.Cond), then: this.stmts(c.Then), else: isNil(e) ? null : this.command(e) }
      }
      case '*syntax.WhileClause':
        return { t: 'while', cond: this.stmts(c.Cond), body: this.stmts(c.Do) }
      case '*syntax.ForClause': {
        const loop = field(c, 'Loop')
        if (typeOf(loop) === '*syntax.WordIter') {
          const name = field(loop, 'Name')
          // `for x; do` (no `in`) loops over "$@".
          const inPos = offset(loop.InPos)
          const items = list(loop.Items).map((w) => this.word(w))
          return { t: 'for', name: isNil(name) ? null : text(name.Value), items: items.length === 0 && inPos === 0 ? null : items, words: [], body: this.stmts(c.Do) }
        }
        return { t: 'for', name: null, items: [], words: this.wordsIn(loop), body: this.stmts(c.Do) }
      }
      case '*syntax.CaseClause':
        return {
          t: 'case',
          word: this.word(field(c, 'Word')),
          items: list(c.Items).map((i) => ({ patterns: list(i.Patterns).map((w) => this.word(w)), stmts: this.stmts(i.Stmts) })),
        }
      case '*syntax.FuncDecl':
        return { t: 'func', name: text(field(c, 'Name').Value), body: this.stmt(field(c, 'Body')) }
      case '*syntax.DeclClause':
        return { t: 'decl', variant: text(field(c, 'Variant').Value), args: list(c.Args).map((a) => this.assign(a)) }
      case '*syntax.TimeClause':
      case '*syntax.CoprocClause': {
        const s = field(c, 'Stmt')
        return isNil(s) ? { t: 'words', words: [] } : { t: 'wrapped', stmt: this.stmt(s) }
      }
      default:
        // [[ ]], (( )), let, and anything newer: only their substitutions run.
        return { t: 'words', words: this.wordsIn(c) }
    }
  }

  assign(a: Go): Assign {
    const name = field(a, 'Name')
    const value = field(a, 'Value')
    const array = field(a, 'Array')
    return {
      name: isNil(name) ? null : text(name.Value),
      value: isNil(value) ? null : this.word(value),
      array: isNil(array) ? null : list(array.Elems).flatMap((e) => (isNil(field(e, 'Value')) ? [] : [this.word(field(e, 'Value'))])),
    }
  }

  word(w: Go): Word {
    return { parts: list(w.Parts).map((p) => this.part(p)) }
  }

  part(p: Go): Part {
    switch (typeOf(p)) {
      case '*syntax.Lit':
        return { t: 'lit', value: text(p.Value) }
      case '*syntax.SglQuoted':
        return { t: 'sgl', value: text(p.Value), dollar: Boolean(p.Dollar) }
      case '*syntax.DblQuoted':
        return { t: 'dbl', parts: list(p.Parts).map((x) => this.part(x)) }
      case '*syntax.ParamExp': {
        const param = field(p, 'Param')
        const exp = field(p, 'Exp')
        const end = p.Short ? offset(field(param, 'ValueEnd')) : offset(p.Rbrace) + 1
        const plain = !p.Excl && !p.Length && !p.Width && isNil(p.Index) && isNil(p.Slice) && isNil(p.Repl) && !p.Names
        const op = isNil(exp) ? null : (this.ops.exp.get(Number(exp.Op)) ?? null)
        const word = isNil(exp) || isNil(field(exp, 'Word')) ? null : this.word(field(exp, 'Word'))
        return { t: 'param', name: isNil(param) ? '' : text(param.Value), plain: plain && (isNil(exp) || op !== null), op, word, src: this.slice(offset(p.Dollar), end) }
      }
      case '*syntax.CmdSubst':
        return { t: 'subst', stmts: this.stmts(p.Stmts), src: this.slice(offset(p.Left), offset(p.Right) + 1) }
      case '*syntax.ProcSubst':
        return { t: 'proc', stmts: this.stmts(p.Stmts), src: this.slice(offset(p.OpPos), offset(p.Rparen) + 1) }
      case '*syntax.ArithmExp':
        return { t: 'arith', words: this.wordsIn(field(p, 'X')), src: this.slice(offset(p.Left), offset(p.Right) + 2) }
      default: {
        // An extended glob, @(a|b): a pattern, never a command.
        const pattern = field(p, 'Pattern')
        return { t: 'glob', src: isNil(pattern) ? '*' : `*${text(pattern.Value)}*` }
      }
    }
  }

  /** Every word under a node (tests, arithmetic), not descending into the words themselves. */
  wordsIn(n: unknown): Word[] {
    const out: Word[] = []
    const visit = (x: unknown, depth: number) => {
      if (depth > 200 || typeof x !== 'object' || x === null) return
      if ((x as { $array?: unknown }).$array) {
        for (const e of list(x)) visit(e, depth + 1)
        return
      }
      if (isNil(x)) return
      if (typeOf(x) === '*syntax.Word') {
        out.push(this.word(x as Go))
        return
      }
      for (const k of Object.keys(x)) if (k !== '$val') visit((x as Go)[k], depth + 1)
    }
    visit(n, 0)
    return out
  }
}
