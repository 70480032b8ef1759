/**
 * The classifier apiary had before it parsed the shell: split the text into words, unwrap a
 * few prefixes, match rules. Kept verbatim as bench:risk's baseline.
 */
import type { Operation, Risk } from '@apiary/shared'

/** Paths whose recursive removal or re-permissioning takes a system or its data with it. */
const BROAD = new Set(['/', '/*', '~', '~/', '~/*', '*', '.', './', './*', '..', '$HOME', '$HOME/', '$HOME/*', '${HOME}'])
const SYSTEM_DIRS = ['bin', 'boot', 'dev', 'etc', 'home', 'lib', 'lib64', 'opt', 'root', 'sbin', 'srv', 'usr', 'var']
const isBroad = (p: string) => BROAD.has(p) || SYSTEM_DIRS.some((d) => p === `/${d}` || p === `/${d}/` || p === `/${d}/*`)
const DEVICE = /^\/dev\/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d|md\d|dm-\d|mapper\/)/

/** Words that run the next word as the command: `sudo rm`, `env X=1 rm`, `nice -n 5 rm`. */
const PREFIXES = new Set(['sudo', 'doas', 'env', 'nice', 'nohup', 'ionice', 'time', 'exec', 'command', 'builtin'])

/**
 * Splits command text into simple commands (at `;`, `&`, `|`, newlines, parentheses and
 * backticks) and each into words, quotes removed. Linear in the text: no regular expression
 * here may backtrack, since the text comes from the request (up to 64 KiB).
 */
function simpleCommands(text: string): Array<{ words: string[]; pipe: boolean }> {
  const out: Array<{ words: string[]; pipe: boolean }> = []
  let words: string[] = []
  let word = ''
  let quote: string | null = null
  const endWord = () => {
    if (word !== '') words.push(word)
    word = ''
  }
  const endCommand = (sep: string) => {
    endWord()
    // `pipe`: its output goes to the next command (a single `|`).
    if (words.length > 0) out.push({ words, pipe: sep === '|' })
    else if (sep === '|' && out.length > 0) out[out.length - 1]!.pipe = false // `||`
    words = []
  }
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null
      else word += ch
    } else if (ch === '"' || ch === "'") quote = ch
    else if (ch === ' ' || ch === '\t') endWord()
    else if (';&|\n()`{}'.includes(ch)) endCommand(ch)
    else word += ch
  }
  endCommand('')
  return out
}

/** The command word and its arguments, after `sudo`, `env A=B` and the like. */
function unwrap(words: string[]): { cmd: string; args: string[] } | undefined {
  let i = 0
  while (i < words.length) {
    const w = words[i]!
    if (PREFIXES.has(w) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) {
      i++
      // Flags of the prefix itself (`sudo -u root`, `nice -n 5`) up to the command.
      while (i < words.length && words[i]!.startsWith('-')) i += words[i] === '-u' || words[i] === '-n' ? 2 : 1
      continue
    }
    break
  }
  const cmd = words[i]
  if (cmd === undefined) return undefined
  return { cmd: cmd.slice(cmd.lastIndexOf('/') + 1), args: words.slice(i + 1) }
}

const flags = (args: string[]) => args.filter((a) => a.startsWith('-'))
const operands = (args: string[]) => args.filter((a) => !a.startsWith('-') || a === '-')
const recursive = (args: string[]) => flags(args).some((f) => f === '--recursive' || (/^-[A-Za-z]+$/.test(f) && /[rR]/.test(f)))

type Rule = (cmd: string, args: string[]) => string | undefined

const RULES: Rule[] = [
  (cmd, args) => (cmd === 'rm' && recursive(args) && operands(args).some(isBroad) ? 'recursive delete of a broad path' : undefined),
  (cmd, args) =>
    ['chmod', 'chown', 'chgrp'].includes(cmd) && recursive(args) && operands(args).slice(1).some(isBroad)
      ? 'recursive permission change of a broad path'
      : undefined,
  (cmd, args) =>
    /^(?:mkfs(?:\.\w+)?|mke2fs|mkswap|wipefs|fdisk|sfdisk|parted|blkdiscard)$/.test(cmd) || (cmd === 'sgdisk' && args.some((a) => a === '-Z' || a === '--zap-all'))
      ? 'disk formatting or partitioning'
      : undefined,
  (cmd, args) => (cmd === 'dd' && args.some((a) => a.startsWith('of=') && DEVICE.test(a.slice(3)))) || (cmd === 'shred' && args.some((a) => DEVICE.test(a))) ? 'raw write to a block device' : undefined,
  (cmd, args) =>
    ['shutdown', 'reboot', 'halt', 'poweroff'].includes(cmd) ||
    (['systemctl', 'loginctl'].includes(cmd) && operands(args).some((a) => ['reboot', 'poweroff', 'halt', 'kexec', 'emergency', 'rescue'].includes(a))) ||
    (['init', 'telinit'].includes(cmd) && (args[0] === '0' || args[0] === '6'))
      ? 'shutdown or reboot'
      : undefined,
  // `kill -9 -1`, `kill -- -1`: pid -1 is every process the caller may signal.
  (cmd, args) => (cmd === 'kill' && args.length >= 2 && args[args.length - 1] === '-1' ? 'kills every process' : undefined),
  (cmd, args) =>
    (['iptables', 'ip6tables'].includes(cmd) && args.some((a) => a === '-F' || a === '--flush')) || (cmd === 'nft' && args[0] === 'flush' && args[1] === 'ruleset')
      ? 'flushes the firewall'
      : undefined,
]

/**
 * Classifies an operation's risk from its command text. Destructive operations need an
 * explicit confirmation of the node count (`--yes`, or typing the count on a terminal), and
 * the queen refuses them without it. A classifier cannot read intent: it catches the common
 * foot-guns, it is not a sandbox.
 *
 * @example classifyByWords({ type: 'exec', shell: true, command: 'rm -rf /' }) // { class: 'destructive', reasons: ['recursive delete of a broad path'] }
 */
export function classifyByWords(op: Operation): Risk {
  if (op.type !== 'exec') return { class: 'safe', reasons: [] }
  const text = op.shell ? (op.command ?? '') : (op.argv ?? []).map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')
  const reasons = new Set<string>()
  const commands = simpleCommands(text)
  for (const [i, { words, pipe }] of commands.entries()) {
    const c = unwrap(words)
    if (!c) continue
    if (pipe && ['curl', 'wget', 'fetch'].includes(c.cmd)) {
      const next = unwrap(commands[i + 1]?.words ?? [])
      if (next && /^(?:ba|da|z|k)?sh$/.test(next.cmd)) reasons.add('piping a download into a shell')
    }
    for (const rule of RULES) {
      const why = rule(c.cmd, c.args)
      if (why) reasons.add(why)
    }
    // `sh -c '…'` hides the real command one level down.
    if (/^(?:ba|da|z|k)?sh$/.test(c.cmd) && c.args[0] === '-c' && c.args[1]) {
      for (const r of classifyByWords({ type: 'exec', shell: true, command: c.args[1] }).reasons) reasons.add(r)
    }
  }
  // Shapes the word split does not see: writes redirected onto a device, fork bombs.
  if (/>\s*\/dev\/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d)/.test(text)) reasons.add('raw write to a block device')
  if (/:\s*\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:/.test(text) || /\b(\w+)\s*\(\)\s*\{\s*\1\s*\|\s*\1\s*&\s*\}\s*;\s*\1\b/.test(text)) reasons.add('fork bomb')
  return { class: reasons.size > 0 ? 'destructive' : 'safe', reasons: [...reasons] }
}
