import { type Arg, type Call, copyScope, type Input, lit, litArg, NONE, raw, type Scope, SOMEWHERE } from './model.ts'
import { components, directory, isBroad } from './paths.ts'
import { inlineCode, programOutput, REASON, runtimeCode } from './reasons.ts'
import { checkPaths, getopt, ruleFor } from './rules.ts'

/**
 * Programs that run another program: how to find where it starts. Each takes options first
 * (those in `value` and `long` take a value), then `skip` words of its own (`timeout 60`,
 * `chroot /mnt`), then the command.
 */
interface Wrapper {
  value?: string
  long?: readonly string[]
  skip?: number
  /** Options after which nothing runs (`command -v rm` only prints where rm is). */
  none?: string
  /** NAME=VALUE words before the command set its environment (env, sudo). */
  assigns?: boolean
  /** Options naming the directory the command runs in. */
  chdir?: readonly string[]
  /** Options whose value is shell text (`flock -c`, `env -S`). */
  shell?: readonly string[]
  /** The command's words are joined and run by a shell (`watch`, `ssh host …`, `sg`). */
  joined?: boolean
  /** With no command (or with these options), a shell reads commands from stdin. */
  shellIfNone?: boolean
  shellWith?: string
  /** The directory the command then runs in. */
  cwd?: string
}

const WRAPPERS: Record<string, Wrapper> = {
  sudo: { value: 'ugCDhpRrtTU', long: ['user', 'group', 'chdir', 'prompt', 'role', 'type', 'other-user', 'host', 'close-from', 'chroot', 'command-timeout'], none: 'lvKVe', assigns: true, chdir: ['D', 'chdir'], shellWith: 'si' },
  doas: { value: 'uC', shellWith: 's' },
  pkexec: { long: ['user'] },
  env: { value: 'uCS', long: ['unset', 'chdir', 'split-string'], assigns: true, chdir: ['C', 'chdir'], shell: ['S', 'split-string'] },
  timeout: { value: 'sk', long: ['signal', 'kill-after'], skip: 1 },
  nice: { value: 'n', long: ['adjustment'] },
  ionice: { value: 'cn', long: ['class', 'classdata'], none: 'pPu' },
  nohup: {},
  setsid: {},
  stdbuf: { value: 'ioe', long: ['input', 'output', 'error'] },
  chrt: { none: 'pm', skip: 1 },
  taskset: { none: 'p', skip: 1 },
  numactl: { value: 'CNmipP', long: ['physcpubind', 'cpunodebind', 'membind', 'interleave', 'preferred'] },
  cpulimit: { value: 'lpe', long: ['limit', 'pid', 'exe'], none: 'pe' },
  trickle: { value: 'udwtLn' },
  chroot: { long: ['userspec', 'groups'], skip: 1, shellIfNone: true, cwd: '/' },
  unshare: { value: 'SGRw', long: ['map-user', 'map-group', 'root', 'wd', 'setuid', 'setgid', 'propagation'], shellIfNone: true, chdir: ['w', 'wd'] },
  nsenter: { value: 'tSG', long: ['target', 'setuid', 'setgid'], shellIfNone: true },
  flock: { value: 'wE', long: ['timeout', 'conflict-exit-code'], shell: ['c', 'command'], skip: 1 },
  'systemd-run': { value: 'pEuMH', long: ['unit', 'property', 'setenv', 'machine', 'host', 'description', 'slice', 'uid', 'gid', 'nice', 'working-directory', 'service-type', 'on-calendar', 'on-active'], chdir: ['working-directory'] },
  strace: { value: 'abeEIoOpPsSuUX' },
  ltrace: { value: 'aAeEflnopsSuwxX' },
  valgrind: {},
  time: { value: 'fo', long: ['format', 'output'] },
  exec: { value: 'a' },
  command: { none: 'vV' },
  builtin: {},
  busybox: {},
  toybox: {},
  watch: { value: 'n', long: ['interval'], joined: true },
  ssh: { value: 'BbcDEeFIiJLlmOoPpQRSWw', skip: 1, joined: true, shellIfNone: true },
  sg: { skip: 1, joined: true, shell: ['c'] },
  gosu: { skip: 1 },
  'su-exec': { skip: 1 },
  setuidgid: { skip: 1 },
  's6-setuidgid': { skip: 1 },
  setpriv: {},
  tini: { value: 'ep' },
  'dumb-init': { value: 'r' },
  eatmydata: {},
  nocache: {},
  unbuffer: {},
  catchsegv: {},
  fakeroot: { value: 'is' },
  faketime: { value: 'f', skip: 1 },
  proxychains: { value: 'f' },
  proxychains4: { value: 'f' },
  torsocks: { value: 'uapP' },
  'xvfb-run': { value: 'nsfe' },
  script: { value: 'EIOTBm', long: ['echo', 'log-in', 'log-out', 'log-timing', 'logging-format'], shell: ['c', 'command'] },
}

function wrapper(c: Call, w: Wrapper): Input {
  const args = c.args
  const scope = copyScope(c.scope, { depth: c.scope.depth + 1 })
  const flags = new Set<string>()
  const values = new Map<string, Arg>()
  let i = 0
  while (i < args.length) {
    const v = lit(args[i])
    if (v === undefined) break
    if (v === '--') {
      i++
      break
    }
    if (w.assigns && /^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) {
      const eq = v.indexOf('=')
      scope.vars.set(v.slice(0, eq), v.slice(eq + 1))
      i++
      continue
    }
    if (c.name === 'env' && v === '-') {
      i++
      continue
    }
    if (!v.startsWith('-') || v === '-') break
    if (v.startsWith('--')) {
      const eq = v.indexOf('=')
      const name = v.slice(2, eq < 0 ? undefined : eq)
      flags.add(name)
      if (eq >= 0) values.set(name, litArg(v.slice(eq + 1)))
      else if (w.long?.includes(name) && args[i + 1]) values.set(name, args[++i]!)
      i++
      continue
    }
    for (let j = 1; j < v.length; j++) {
      const ch = v[j]!
      flags.add(ch)
      if (w.value?.includes(ch)) {
        const rest = v.slice(j + 1)
        const given = rest !== '' ? litArg(rest) : args[++i]
        if (given) values.set(ch, given)
        break
      }
    }
    i++
  }
  if ([...(w.none ?? '')].some((ch) => flags.has(ch))) return { k: 'program', name: c.name }
  for (const d of w.chdir ?? []) {
    const dir = values.get(d)
    if (dir) scope.cwd = directory(lit(dir), scope.cwd)
  }
  if (w.cwd) scope.cwd = w.cwd
  const runShell = (text: Arg, rest: Arg[]) => c.script([raw(text), ...rest.map(raw)].join(' '), scope, c.stdin)
  for (const s of w.shell ?? []) {
    const text = values.get(s)
    if (text) return runShell(text, args.slice(i))
  }
  i += Math.min(w.skip ?? 0, args.length - i)
  // `flock FILE -c 'cmd'`: the shell option may follow the file.
  if (w.shell && ['-c', '--command'].includes(lit(args[i]) ?? '') && args[i + 1]) return runShell(args[i + 1]!, args.slice(i + 2))
  const rest = args.slice(i)
  if (rest.length === 0) return w.shellIfNone || [...(w.shellWith ?? '')].some((ch) => flags.has(ch)) ? runInput(c, c.stdin, 'shell', scope) : { k: 'program', name: c.name }
  if (w.joined && !flags.has('x') && !flags.has('exec')) return c.script(rest.map(raw).join(' '), scope, c.stdin)
  return c.run(rest, scope, c.stdin)
}

/** `su [-] [USER] -c TEXT`, `runuser -u USER -- CMD…`; with no command, the user's shell reads stdin. */
function su(c: Call): Input {
  const o = getopt(c.args, 'csgGwu', ['command', 'session-command', 'shell', 'group', 'supp-group', 'whitelist-environment', 'user'], c.name === 'runuser' && c.args.some((a) => lit(a) === '-u' || lit(a) === '--user'))
  const scope = copyScope(c.scope, { depth: c.scope.depth + 1 })
  const text = o.values.get('c') ?? o.values.get('command') ?? o.values.get('session-command')
  if (text) return c.script(raw(text), scope, c.stdin)
  if (o.values.has('u') || o.values.has('user')) return o.operands.length > 0 ? c.run(o.operands, scope, c.stdin) : NONE
  return runInput(c, c.stdin, 'shell', scope)
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'lksh', 'ash', 'yash', 'posh', 'rbash', 'fish'])

/** `sh -c TEXT [NAME [ARGS…]]`, `bash -lc TEXT`, `sh -s`, `sh` (reads stdin), `bash FILE`. */
function shell(c: Call): Input {
  const args = c.args
  let i = 0
  let text = false
  let fromStdin = false
  while (i < args.length) {
    const v = lit(args[i])
    if (v === undefined) break
    if (v === '--' || v === '-') {
      i++
      break
    }
    if (!/^[-+]./.test(v)) break
    if (v.startsWith('--')) {
      if (v === '--rcfile' || v === '--init-file') i++
      i++
      continue
    }
    for (const ch of v.slice(1)) {
      if (ch === 'c') text = true
      else if (ch === 's') fromStdin = true
      else if (ch === 'o' || ch === 'O') i++
    }
    i++
  }
  const operands = args.slice(i)
  const known = operands.slice(text ? 2 : 1).map(lit)
  const positional = known.every((a) => a !== undefined) ? (known as string[]) : null
  const scope = copyScope(c.scope, { positional, depth: c.scope.depth + 1 })
  if (text) return operands[0] ? c.script(raw(operands[0]), scope, c.stdin) : NONE
  if (fromStdin || operands.length === 0) return runInput(c, c.stdin, 'shell', copyScope(scope, { positional: known.length === 0 ? null : positional }))
  return scriptFile(c, operands[0]!, 'shell', scope)
}

/** A script named by a word: `<(curl …)` or /dev/stdin are checked as what they hold; a file is not (like any program). */
function scriptFile(c: Call, file: Arg, lang: string, scope: Scope): Input {
  const only = file.segs.length === 1 ? file.segs[0] : undefined
  if (only?.k === 'proc') return runInput(c, only.out, lang, scope)
  if (['/dev/stdin', '-', '/proc/self/fd/0', '/dev/fd/0'].includes(lit(file) ?? '')) return runInput(c, c.stdin, lang, scope)
  return { k: 'program', name: c.name }
}

/** Text a shell or an interpreter reads as its program. */
function runInput(c: Call, input: Input, lang: string, scope: Scope): Input {
  switch (input.k) {
    case 'text':
      if (lang === 'shell') return c.script(input.text, scope, NONE)
      scanCode(c, lang, input.text)
      break
    case 'download':
      c.f.add(lang === 'shell' ? REASON.downloadShell : REASON.downloadInterpreter)
      break
    case 'decoded':
      c.f.add(REASON.decoded)
      break
    case 'program':
      c.f.add(programOutput(input.name))
      break
    case 'paths':
      c.f.add(programOutput('find'))
      break
  }
  return { k: 'program', name: c.name }
}

/**
 * Inline code of another language is not parsed: it is ordinary unless it names a way to
 * run commands, delete files, signal processes, write devices, or to hide what it does
 * (decoding, character codes). Crude on purpose: a match asks for a confirmation, no more.
 */
const RISKY_CODE = [
  'system', 'exec', 'spawn', 'popen', 'subprocess', 'fork', 'eval', 'compile', 'import(', '__import__', 'importlib', 'getattr', 'ctypes', 'child_process', 'process.binding', 'syscall', 'pty',
  'rmtree', 'unlink', 'remove', 'rmdir', 'rm_r', 'rmsync', 'rm(', 'truncate', 'kill', 'reboot', 'shutdown', 'sysrq', '/dev/',
  'base64', 'b64decode', 'decode(', 'fromcharcode', 'chr(', 'pack(', '\\x', 'qx', '`', '|"', '"|', "|'", "'|", '| "', "| '",
]

function scanCode(c: Call, lang: string, code: string) {
  const lower = code.toLowerCase()
  const token = RISKY_CODE.find((t) => lower.includes(t))
  if (token) c.f.add(inlineCode(lang, token))
}

interface Interpreter {
  lang: string
  /** Options whose value is code. */
  code: string
  longCode?: readonly string[]
  value?: string
  long?: readonly string[]
  /** The first operand is the program (awk), unless a file option gives it. */
  programOperand?: boolean
  /** Options after which the program is not read from stdin or an operand (`python -m mod`). */
  module?: string
}

const INTERPRETERS: Array<[RegExp, Interpreter]> = [
  [/^(?:python|pypy)[0-9.]*$/, { lang: 'python', code: 'c', value: 'mWXQ', module: 'm' }],
  [/^perl[0-9.]*$/, { lang: 'perl', code: 'eE', value: 'IMmxCd' }],
  [/^ruby[0-9.]*$/, { lang: 'ruby', code: 'e', value: 'IrCEFKTx' }],
  [/^(?:node|nodejs|bun)$/, { lang: 'node', code: 'ep', longCode: ['eval', 'print'], value: 'r', long: ['require', 'import', 'input-type', 'loader', 'experimental-loader', 'conditions', 'title'] }],
  [/^php[0-9.]*$/, { lang: 'php', code: 'rB', value: 'cdfz', module: 'f' }],
  [/^(?:lua[0-9.]*|luajit)$/, { lang: 'lua', code: 'e', value: 'l' }],
  [/^(?:awk|gawk|mawk|nawk)$/, { lang: 'awk', code: '', longCode: ['source'], value: 'vFfe', long: ['assign', 'field-separator', 'file'], programOperand: true, module: 'f' }],
  [/^Rscript$/, { lang: 'R', code: 'e' }],
]

function interpreter(c: Call, it: Interpreter): Input {
  const o = getopt(c.args, it.code + (it.value ?? ''), [...(it.longCode ?? []), ...(it.long ?? [])], true)
  const code = o.all.filter(([name]) => it.code.includes(name) || (it.longCode ?? []).includes(name)).map(([, a]) => a)
  if (it.programOperand && code.length === 0 && !(it.module && o.short.has(it.module)) && o.operands[0]) code.push(o.operands[0])
  for (const a of code) {
    if (lit(a) === undefined) c.f.add(runtimeCode(it.lang))
    scanCode(c, it.lang, raw(a))
  }
  if (code.length > 0 || (it.module && (o.short.has(it.module) || o.long.has(it.module)))) return { k: 'program', name: c.name }
  if (o.operands.length === 0) return runInput(c, c.stdin, it.lang, c.scope)
  return scriptFile(c, o.operands[0]!, it.lang, c.scope)
}

const STRONG_TESTS = new Set(['-name', '-iname', '-path', '-ipath', '-wholename', '-iwholename', '-regex', '-iregex', '-lname', '-ilname'])
const WEAK_TESTS = new Set(['-mtime', '-mmin', '-atime', '-amin', '-ctime', '-cmin', '-newer', '-anewer', '-cnewer', '-newermt', '-size', '-empty', '-user', '-group', '-uid', '-gid', '-nouser', '-nogroup', '-perm', '-links', '-used'])
const EXEC = new Set(['-exec', '-execdir', '-ok', '-okdir'])
const below = (root: Arg): Arg => ({ segs: [...root.segs, { k: 'lit', s: '/*', quoted: true }] })

/**
 * `find ROOTS… -delete` or `-exec CMD {} ;`: what it applies to is every path under its
 * roots, unless a name or path test narrows them; a time, size or owner test narrows them
 * too, except under `/`, a top-level directory or a home.
 */
function find(c: Call): Input {
  const args = c.args
  let i = 0
  while (i < args.length && /^-(?:[HLP]|O\d*|D)$/.test(lit(args[i]) ?? '')) i += lit(args[i]) === '-D' ? 2 : 1
  const roots: Arg[] = []
  for (; i < args.length; i++) {
    const v = lit(args[i])
    if (v !== undefined && (v.startsWith('-') || v === '(' || v === '!' || v === ',')) break
    roots.push(args[i]!)
  }
  if (roots.length === 0) roots.push(litArg('.'))
  let strong = false
  let weak = false
  let or = false
  let del = false
  const execs: Arg[][] = []
  for (; i < args.length; i++) {
    const v = lit(args[i])
    if (v === undefined) continue
    if (STRONG_TESTS.has(v)) {
      const pattern = lit(args[i + 1])
      if (pattern === undefined || pattern.replace(/[*?]/g, '') !== '') strong = true
      i++
    } else if (WEAK_TESTS.has(v) || v === '-inum' || v === '-samefile') {
      if (v === '-inum' || v === '-samefile') strong = true
      else weak = true
    } else if (v === '-o' || v === '-or') or = true
    else if (v === '-delete') del = true
    else if (EXEC.has(v)) {
      const words: Arg[] = []
      for (i++; i < args.length && lit(args[i]) !== ';' && lit(args[i]) !== '+'; i++) words.push(args[i]!)
      execs.push(words)
    }
  }
  // `-o` lets paths through that the tests before it did not narrow.
  if (or) strong = weak = false
  const deep = (root: Arg) => {
    const v = lit(root)
    const p = v === undefined ? [] : components(v, c.scope.cwd)
    return p.length >= 2 && p[0] !== 'home' && p[0] !== 'root' && p[0] !== SOMEWHERE
  }
  const every = roots.filter((r) => !(strong || (weak && deep(r))))
  if (del) checkPaths(c.f, c.scope, every.map(below), isBroad, REASON.recursiveDelete, 'recursive delete')
  for (const words of execs) {
    if (words.length === 0) continue
    for (const r of every) c.run(words.map((w) => (lit(w) === '{}' ? below(r) : w)), copyScope(c.scope, { recursive: true }), NONE)
    if (every.length < roots.length) c.run(words, c.scope, NONE)
  }
  return every.length === roots.length ? { k: 'paths', roots: every.map(below) } : { k: 'program', name: 'find' }
}

/** `… | xargs CMD`: CMD runs with the words it reads appended (or put where `-I {}` says). */
function xargs(c: Call): Input {
  const o = getopt(c.args, 'IdnPLEsae', ['delimiter', 'max-args', 'max-procs', 'max-lines', 'eof', 'max-chars', 'arg-file', 'replace'], true)
  const command = o.operands.length > 0 ? o.operands : [litArg('echo')]
  const input = o.values.has('a') || o.values.has('arg-file') ? ({ k: 'file' } as const) : c.stdin
  let extra: Arg[]
  let recursive = false
  if (input.k === 'text') extra = input.text.split(/\s+/).filter((w) => w !== '').slice(0, 64).map(litArg)
  else if (input.k === 'paths') {
    extra = input.roots
    recursive = true
  } else extra = [{ segs: [{ k: 'var', name: 'input', quoted: true, empty: null, raw: 'input' }] }]
  const marker = lit(o.values.get('I') ?? o.values.get('replace')) ?? (o.short.has('i') ? '{}' : undefined)
  const words = marker ? command.map((w) => (lit(w) === marker ? (extra[0] ?? w) : w)) : [...command, ...extra]
  return c.run(words, copyScope(c.scope, { recursive: c.scope.recursive || recursive, depth: c.scope.depth + 1 }), NONE)
}

/** Backslash escapes as `echo -e`, `printf` and `$'…'` read them. */
export function unescapeC(s: string): string {
  return s.replace(/\\(?:x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})|U([0-9A-Fa-f]{1,8})|0?([0-7]{1,3})|c(.)|(.))/gs, (_m, x?: string, u?: string, U?: string, o?: string, ctl?: string, ch?: string) => {
    const hex = x ?? u ?? U
    if (hex !== undefined) return String.fromCodePoint(Math.min(parseInt(hex, 16), 0x10ffff))
    if (o !== undefined) return String.fromCharCode(parseInt(o, 8) & 0xff)
    if (ctl !== undefined) return String.fromCharCode(ctl.charCodeAt(0) & 0x1f)
    return ({ a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' } as Record<string, string>)[ch!] ?? ch!
  })
}

const DOWNLOADERS = new Set(['curl', 'wget', 'fetch', 'aria2c', 'http', 'https', 'httpie', 'xh', 'nc', 'ncat', 'netcat', 'socat', 'lwp-request', 'GET', 'lynx', 'links'])
const DECOMPRESS = new Set(['gunzip', 'zcat', 'bzcat', 'xzcat', 'unxz', 'unlzma', 'lzcat', 'zstdcat', 'lz4cat', 'uudecode', 'unzstd'])

/** What a command prints, as far as a shell reading it needs to know. */
function output(c: Call): Input {
  const ws = c.args.map(lit)
  const flagged = (...f: string[]) => ws.some((w) => w !== undefined && (f.includes(w) || (/^-[A-Za-z]+$/.test(w) && f.some((x) => x.length === 2 && w.includes(x[1]!)))))
  switch (c.name) {
    case 'echo': {
      let i = 0
      let escapes = false
      while (/^-[neE]+$/.test(ws[i] ?? '')) escapes = ws[i++]!.includes('e') || escapes
      const text = c.args.slice(i).map(raw).join(' ') + '\n'
      return { k: 'text', text: escapes ? unescapeC(text) : text }
    }
    case 'printf': {
      if (!c.args[0]) return NONE
      const values = c.args.slice(1).map(raw)
      let n = 0
      const text = unescapeC(raw(c.args[0])).replace(/%([%bsdiqc])/g, (_m, spec: string) => (spec === '%' ? '%' : spec === 'b' ? unescapeC(values[n++] ?? '') : (values[n++] ?? '')))
      return { k: 'text', text }
    }
    case 'cat':
    case 'tee':
      if (c.name === 'tee' || ws.every((w) => w === '-' || (w !== undefined && w.startsWith('-')))) return c.stdin
      return c.args.length === 1 && c.args[0]!.segs[0]?.k === 'proc' ? c.args[0]!.segs[0].out : { k: 'file' }
  }
  if (DOWNLOADERS.has(c.name)) return { k: 'download' }
  if (DECOMPRESS.has(c.name)) return { k: 'decoded' }
  if (['base64', 'base32', 'basenc'].includes(c.name) && flagged('-d', '-D', '--decode')) return { k: 'decoded' }
  if (c.name === 'xxd' && flagged('-r', '--revert')) return { k: 'decoded' }
  if (c.name === 'openssl' && ['base64', 'enc', 'aes-256-cbc', 'des3'].includes(ws[0] ?? '') && ws.includes('-d')) return { k: 'decoded' }
  if (['gzip', 'bzip2', 'xz', 'zstd', 'lz4', 'brotli', 'lzma'].includes(c.name) && flagged('-d', '--decompress', '--uncompress')) return { k: 'decoded' }
  return { k: 'program', name: c.name }
}

/** Shell builtins that change what the rest of the script sees, or run text as a script. */
function builtin(c: Call): Input | undefined {
  const { scope } = c
  const ws = c.args.map(lit)
  switch (c.name) {
    case 'cd':
    case 'pushd': {
      const target = c.args.filter((_, i) => !/^-[LPe@]+$/.test(ws[i] ?? ''))
      scope.cwd = target.length === 0 ? '~' : ws[c.args.indexOf(target[0]!)] === '-' ? SOMEWHERE : directory(lit(target[0]), scope.cwd)
      return NONE
    }
    case 'popd':
      scope.cwd = SOMEWHERE
      return NONE
    case 'eval':
      // Text built at run time cannot be read ahead of it; literal text can.
      if (ws.some((w) => w === undefined)) c.f.add(REASON.eval)
      else c.script(ws.join(' '), copyScope(scope, { depth: scope.depth + 1 }), c.stdin)
      return { k: 'program', name: 'eval' }
    case 'source':
    case '.':
      return c.args[0] ? scriptFile(c, c.args[0], 'shell', copyScope(scope, { depth: scope.depth + 1 })) : NONE
    case 'alias':
      for (const w of ws) {
        const eq = w?.indexOf('=') ?? -1
        if (w !== undefined && eq > 0) c.script(w.slice(eq + 1), copyScope(scope, { depth: scope.depth + 1 }), NONE)
      }
      return NONE
    case 'trap': {
      const action = c.args.find((_, i) => !(ws[i] ?? 'x').startsWith('-'))
      if (action) c.script(raw(action), copyScope(scope, { depth: scope.depth + 1 }), NONE)
      return NONE
    }
    case 'read':
    case 'unset':
    case 'mapfile':
    case 'readarray':
      for (const w of ws) if (w !== undefined && /^[A-Za-z_]\w*$/.test(w)) scope.vars.delete(w)
      return c.name === 'read' ? NONE : undefined
    case 'set': {
      const dd = ws.indexOf('--')
      if (dd >= 0) {
        const rest = ws.slice(dd + 1)
        scope.positional = rest.every((w) => w !== undefined) ? (rest as string[]) : null
      }
      return NONE
    }
    case 'shift':
      scope.positional = scope.positional?.slice(Number(ws[0] ?? 1) || 1) ?? null
      return NONE
  }
  return undefined
}

const INIT_SCRIPT_REMOTE = /^\/etc\/init\.d\/(?:ssh|sshd|networking|network)$/

/** Classifies one simple command whose program is known, and says what it prints. */
export function runCall(c: Call): Input {
  const b = builtin(c)
  if (b) return b
  const w = WRAPPERS[c.name]
  if (w) return wrapper(c, w)
  if (SHELLS.has(c.name)) return shell(c)
  if (c.name === 'su' || c.name === 'runuser') return su(c)
  const it = INTERPRETERS.find(([name]) => name.test(c.name))
  if (it) return interpreter(c, it[1])
  if (c.name === 'find') return find(c)
  if (c.name === 'xargs') return xargs(c)
  if (c.name === 'ip' && ['netns', 'n', 'net', 'netn'].includes(lit(c.args[0]) ?? '') && lit(c.args[1]) === 'exec' && c.args.length > 3) return c.run(c.args.slice(3), c.scope, c.stdin)
  if (INIT_SCRIPT_REMOTE.test(c.path) && lit(c.args[0]) === 'stop') c.f.add(REASON.remoteAccess)
  ruleFor(c.name)?.(c)
  return output(c)
}

