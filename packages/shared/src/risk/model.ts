/**
 * What the classifier knows about a word once the shell would have expanded it: literal text
 * where the value is known, and where it is not, what kind of unknown it is. The rules look at
 * the literal parts and try the unknown ones with the values that hurt (empty, or `/`).
 */
export type Seg =
  /** `split`: it came from an unquoted variable, so the shell splits it at blanks. */
  | { k: 'lit'; s: string; quoted: boolean; split?: boolean }
  /** A variable whose value is not known here. `empty`: what the word holds if it is empty or unset (its default), or null if it cannot be (`${X:?}`). */
  | { k: 'var'; name: string; quoted: boolean; empty: string | null; raw: string }
  /** `$(…)` or backticks: `out` is what its commands print. */
  | { k: 'sub'; quoted: boolean; out: Input; raw: string }
  /** `<(…)`: a file name whose content is what its commands print. */
  | { k: 'proc'; out: Input; raw: string }

export interface Arg {
  segs: Seg[]
}

/** What a command reads on its standard input, or what it prints, as far as it can be known. */
export type Input =
  | { k: 'none' }
  /** Known text: the operation's stdin, a here-document, what `echo` prints. */
  | { k: 'text'; text: string }
  /** A file's content: not checked, just as running a script file is not. */
  | { k: 'file' }
  | { k: 'download' }
  | { k: 'decoded' }
  /** Some other program's output. */
  | { k: 'program'; name: string }
  /** The paths `find` prints when nothing narrows them: everything under these roots. */
  | { k: 'paths'; roots: Arg[] }

export const NONE: Input = { k: 'none' }

/** A directory the classifier cannot name (the worker's own, or one reached by `cd "$X"`); it may be `/`. */
export const SOMEWHERE = '\u0000somewhere'

/** What holds while a script runs: variables, directory, positional parameters. */
export interface Scope {
  vars: Map<string, string>
  /** An absolute path, `~…`, or SOMEWHERE. */
  cwd: string
  /** `$1`, `$2`…, when known (`sh -c '…' _ a b`). */
  positional: string[] | null
  /** Set under `find -exec`: the command is applied to every path below the roots. */
  recursive: boolean
  depth: number
  functions: Set<string>
}

export const copyScope = (s: Scope, over: Partial<Scope> = {}): Scope => ({ ...s, vars: new Map(s.vars), functions: new Set(s.functions), ...over })

/** Reasons found so far, and the work spent finding them. */
export class Findings {
  readonly reasons = new Set<string>()
  steps = 0
  add(reason: string): void {
    this.reasons.add(reason)
  }
}

/** One simple command, its words expanded, with a way back into the classifier for what it runs. */
export interface Call {
  /** The program's base name (`rm` for `/bin/rm`). */
  name: string
  /** The program as written. */
  path: string
  args: Arg[]
  scope: Scope
  stdin: Input
  f: Findings
  /** Classifies words as a command of their own (what a wrapper runs). */
  run(words: Arg[], scope: Scope, stdin: Input): Input
  /** Classifies text as a shell script. */
  script(text: string, scope: Scope, stdin: Input): Input
}

export const litArg = (s: string): Arg => ({ segs: [{ k: 'lit', s, quoted: false }] })

/** The word's value, if every part of it is known. */
export function lit(a: Arg | undefined): string | undefined {
  if (!a) return undefined
  let s = ''
  for (const g of a.segs) {
    if (g.k !== 'lit') return undefined
    s += g.s
  }
  return s
}

/** The word as a nested shell would see it: known parts as text, unknown ones as written. */
export function raw(a: Arg): string {
  return a.segs.map((g) => (g.k === 'lit' ? g.s : g.raw)).join('')
}

/** How to name the first unknown part of a word to an operator. */
export function unknownPart(a: Arg): Seg | undefined {
  return a.segs.find((g) => g.k !== 'lit')
}

/** An unquoted unknown part may split into several words, flags among them. */
export const splittable = (a: Arg): boolean => a.segs.some((g) => (g.k === 'var' || g.k === 'sub') && !g.quoted)

/** Values to try the word with, and on what condition it takes each. */
export interface Probe {
  v: string
  /** null: whatever the unknown parts hold; a variable's name: if it is empty or unset; 'sub': if a command substitution prints nothing or `/`. */
  when: null | { empty: string } | 'sub'
}

/** Unknown parts hold a name no rule recognises (a path component, never `/`). */
const SOMETHING = '\u0001'

export function probes(a: Arg): Probe[] {
  const value = (pick: (g: Seg, i: number) => string | undefined) =>
    a.segs.map((g, i) => (g.k === 'lit' ? g.s : g.k === 'proc' ? '/dev/fd/63' : (pick(g, i) ?? SOMETHING))).join('')
  const out: Probe[] = [{ v: value(() => undefined), when: null }]
  a.segs.forEach((g, i) => {
    if (g.k === 'var' && g.empty !== null) out.push({ v: value((_, j) => (j === i ? (g.empty ?? '') : undefined)), when: { empty: g.name } })
    if (g.k === 'sub') {
      out.push({ v: value((_, j) => (j === i ? '' : undefined)), when: 'sub' })
      out.push({ v: value((_, j) => (j === i ? '/' : undefined)), when: 'sub' })
    }
  })
  return out
}

export const basename = (p: string): string => p.slice(p.lastIndexOf('/') + 1)
