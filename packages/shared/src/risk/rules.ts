import { type Arg, type Call, type Findings, lit, litArg, probes, type Scope, splittable } from './model.ts'
import { components, deviceKind, isBroad, isCritical, isSysrq, isSystemGlob } from './paths.ts'
import { ifEmpty, REASON, substPath } from './reasons.ts'

/** A command's words sorted the way getopt would: flags, their values, operands. */
export interface Opts {
  short: Set<string>
  long: Map<string, string | undefined>
  /** Values of the options that take one, by letter or long name. */
  values: Map<string, Arg>
  /** Every option value in order, repeated options included (`perl -e a -e b`). */
  all: Array<[string, Arg]>
  operands: Arg[]
  /** An unquoted unknown word: it may split into flags as well as operands. */
  maybeFlags: boolean
}

/**
 * Sorts words into flags and operands. `takesValue`: short options that take the next word
 * (or the rest of their cluster); `longValue`: long ones that take the next word unless
 * written `--name=value`. With `stopAtOperand`, the first operand ends the options.
 */
export function getopt(args: Arg[], takesValue = '', longValue: readonly string[] = [], stopAtOperand = false): Opts {
  const o: Opts = { short: new Set(), long: new Map(), values: new Map(), all: [], operands: [], maybeFlags: false }
  const value = (name: string, a: Arg) => {
    o.values.set(name, a)
    o.all.push([name, a])
  }
  let end = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const v = lit(a)
    if (end || v === undefined || v === '-' || !v.startsWith('-')) {
      if (v === undefined && splittable(a)) o.maybeFlags = true
      o.operands.push(a)
      if (stopAtOperand) end = true
      continue
    }
    if (v === '--') {
      end = true
      continue
    }
    if (v.startsWith('--')) {
      const eq = v.indexOf('=')
      const name = v.slice(2, eq < 0 ? undefined : eq)
      if (eq >= 0) {
        o.long.set(name, v.slice(eq + 1))
        value(name, litArg(v.slice(eq + 1)))
      } else if (longValue.includes(name) && i + 1 < args.length) {
        o.long.set(name, lit(args[i + 1]))
        value(name, args[++i]!)
      } else o.long.set(name, undefined)
      continue
    }
    for (let j = 1; j < v.length; j++) {
      const ch = v[j]!
      o.short.add(ch)
      if (takesValue.includes(ch)) {
        const rest = v.slice(j + 1)
        const given = rest !== '' ? litArg(rest) : args[++i]
        if (given) value(ch, given)
        break
      }
    }
  }
  return o
}

const has = (o: Opts, short: string, ...long: string[]) => [...short].some((ch) => o.short.has(ch)) || long.some((l) => o.long.has(l))
const words = (args: Arg[]) => args.map(lit)

/**
 * Adds `reason` for each word that, resolved against the command's directory, passes `test`:
 * definitely, if the variable in it is empty or unset, or if a command substitution in it
 * prints nothing or `/`.
 */
export function checkPaths(f: Findings, scope: Scope, operands: Arg[], test: (p: string[]) => boolean, reason: string, noun: string): boolean {
  let any = false
  for (const a of operands) {
    let best: { rank: number; why: string } | undefined
    for (const p of probes(a)) {
      if (p.v === '' || !test(components(p.v, scope.cwd))) continue
      const found = p.when === null ? { rank: 3, why: reason } : p.when === 'sub' ? { rank: 1, why: substPath(noun) } : { rank: 2, why: ifEmpty(reason, p.when.empty) }
      if (!best || found.rank > best.rank) best = found
    }
    if (best) {
      f.add(best.why)
      any = true
    }
  }
  return any
}

/** Writing to this word's path: a device, memory, the sysrq trigger, or (truncating) a file the system needs. */
export function checkWrite(f: Findings, scope: Scope, target: Arg, truncating: boolean): void {
  checkPaths(f, scope, [target], isSysrq, REASON.sysrq, 'sysrq write')
  checkPaths(f, scope, [target], (p) => deviceKind(p) === 'disk', REASON.blockWrite, 'device write')
  checkPaths(f, scope, [target], (p) => deviceKind(p) === 'memory', REASON.memoryWrite, 'memory write')
  if (truncating) checkPaths(f, scope, [target], isCritical, REASON.critical, 'file overwrite')
}

const anyDevice = (f: Findings, scope: Scope, args: Arg[], reason: string) => checkPaths(f, scope, args, (p) => deviceKind(p) !== null, reason, 'disk write')

type Rule = (c: Call) => void
const RULES = new Map<string, Rule>()
const rule = (names: string, r: Rule) => {
  for (const n of names.split(' ')) RULES.set(n, r)
}

/** The rule for a program, by its base name. */
export function ruleFor(name: string): Rule | undefined {
  return RULES.get(name) ?? (name.startsWith('mkfs.') ? RULES.get('mkfs') : /^ip6?tables(?:-nft|-legacy)?$/.test(name) ? RULES.get('iptables') : undefined)
}

// Deleting.
rule('rm', (c) => {
  const o = getopt(c.args)
  const recursive = has(o, 'rR', 'recursive') || c.scope.recursive || o.maybeFlags
  if (recursive) checkPaths(c.f, c.scope, o.operands, isBroad, REASON.recursiveDelete, 'recursive delete')
  else checkPaths(c.f, c.scope, o.operands, isSystemGlob, REASON.systemGlobDelete, 'delete')
  checkPaths(c.f, c.scope, o.operands, isCritical, REASON.critical, 'delete')
})
rule('unlink shred srm', (c) => {
  const o = getopt(c.args, 'nsx', ['iterations', 'size', 'random-source'])
  checkPaths(c.f, c.scope, o.operands, isCritical, REASON.critical, 'delete')
  if (c.name !== 'unlink') anyDevice(c.f, c.scope, o.operands, REASON.blockWrite)
})
rule('rsync', (c) => {
  const o = getopt(c.args, 'eBfT', ['rsh', 'filter', 'exclude', 'include', 'exclude-from', 'include-from', 'files-from', 'temp-dir', 'compare-dest', 'link-dest', 'backup-dir', 'rsync-path', 'password-file'])
  const dest = o.operands[o.operands.length - 1]
  if (dest && o.operands.length > 1 && [...o.long.keys()].some((k) => k.startsWith('delete') || k === 'remove-source-files')) checkPaths(c.f, c.scope, [dest], isBroad, REASON.recursiveDelete, 'recursive delete')
})
rule('mv', (c) => {
  const o = getopt(c.args, 'tS', ['target-directory', 'suffix'])
  const target = o.values.get('t') ?? o.values.get('target-directory')
  const sources = target ? o.operands : o.operands.slice(0, -1)
  checkPaths(c.f, c.scope, sources, isBroad, REASON.move, 'move')
  checkPaths(c.f, c.scope, o.operands, isCritical, REASON.critical, 'move')
})

// Permissions.
/** Modes that only give the owner more (`u+w`, `u+rwX`): harmless however wide they reach. */
const harmlessMode = (m: string | undefined) => m !== undefined && m.split(',').every((clause) => /^u\+[rwxX]+$/.test(clause))
function permissions(c: Call, nonPaths: number, takesValue = '') {
  // `chmod -x FILE`: a mode that looks like a flag.
  const dash = c.name === 'chmod' ? c.args.findIndex((a) => /^-[rwxXst]+$/.test(lit(a) ?? '')) : -1
  const o = getopt(dash < 0 ? c.args : c.args.filter((_, i) => i !== dash), takesValue)
  if (dash >= 0) o.operands.unshift(c.args[dash]!)
  const reference = o.long.has('reference')
  if (c.name === 'chmod' && !reference && harmlessMode(lit(o.operands[0]))) return
  const paths = o.operands.slice(reference ? 0 : nonPaths)
  if (has(o, 'R', 'recursive') || c.scope.recursive || o.maybeFlags) checkPaths(c.f, c.scope, paths, isBroad, REASON.recursivePermissions, 'recursive permission change')
  else checkPaths(c.f, c.scope, paths, isSystemGlob, REASON.systemGlobPermissions, 'permission change')
}
rule('chmod chown chgrp', (c) => permissions(c, 1))
rule('setfacl', (c) => permissions(c, 0, 'mMxX'))
rule('chcon', (c) => permissions(c, 1, 'urtl'))
rule('chattr', (c) => {
  // chattr's modes look like flags (`-i`): its paths are the words that do not.
  const recursive = c.args.some((a) => /^-[A-Za-z]*R/.test(lit(a) ?? '')) || c.scope.recursive
  const paths = c.args.filter((a) => !/^[-+=]/.test(lit(a) ?? 'x'))
  if (recursive) checkPaths(c.f, c.scope, paths, isBroad, REASON.recursivePermissions, 'recursive permission change')
})

// Writing over devices and the files a system needs.
rule('dd', (c) => {
  for (const a of c.args) {
    const first = a.segs[0]
    if (first?.k === 'lit' && first.s.startsWith('of=')) checkWrite(c.f, c.scope, { segs: [{ ...first, s: first.s.slice(3) }, ...a.segs.slice(1)] }, true)
  }
})
rule('tee', (c) => {
  const o = getopt(c.args)
  for (const a of o.operands) checkWrite(c.f, c.scope, a, !has(o, 'a', 'append'))
})
rule('cp install ddrescue ln sponge', (c) => {
  const o = getopt(c.args, c.name === 'install' ? 'tSmgoTb' : 'tS', ['target-directory', 'suffix', 'mode', 'owner', 'group'])
  if (c.name === 'ln' && !has(o, 'f', 'force')) return
  const dest = c.name === 'sponge' ? o.operands[0] : (o.values.get('t') ?? o.values.get('target-directory') ?? o.operands[o.operands.length - 1])
  if (dest && (o.operands.length > 1 || c.name === 'sponge')) checkWrite(c.f, c.scope, dest, true)
})
rule('truncate', (c) => {
  const o = getopt(c.args, 'sr', ['size', 'reference'])
  for (const a of o.operands) checkWrite(c.f, c.scope, a, true)
})

// Disks and volumes.
rule('mkfs mke2fs mkswap mkdosfs mkntfs mkexfatfs', (c) => {
  // Formatting an image file is ordinary; a device, or a path only known at run time, is not.
  const o = getopt(c.args, 'tLbNOEmUTnFCcdgGIiJlMrSsv')
  if (!anyDevice(c.f, c.scope, o.operands, REASON.format) && o.operands.some((a) => lit(a) === undefined)) c.f.add(REASON.format)
})
rule('wipefs', (c) => {
  const o = getopt(c.args, 'otpO', ['offset', 'types'])
  if (has(o, 'ao', 'all', 'offset')) anyDevice(c.f, c.scope, o.operands, REASON.format)
})
rule('fdisk gdisk cfdisk cgdisk', (c) => {
  const o = getopt(c.args, 'bcCHSuLtox')
  if (!has(o, 'lsv', 'list', 'getsz', 'version', 'help')) anyDevice(c.f, c.scope, o.operands, REASON.format)
})
rule('sfdisk', (c) => {
  const o = getopt(c.args, 'NXYOo', ['label', 'backup-file', 'move-use-fsync', 'color', 'wipe', 'wipe-partitions', 'sector-size'])
  if (!has(o, 'lsdJVgFr', 'list', 'dump', 'json', 'show-size', 'verify', 'show-geometry', 'list-free', 'list-types', 'help', 'version')) anyDevice(c.f, c.scope, o.operands, REASON.format)
})
rule('sgdisk', (c) => {
  const o = getopt(c.args)
  const readOnly = new Set(['p', 'i', 'v', 'O', 'L', 'P', 'print', 'info', 'verify', 'print-mbr', 'list-types', 'pretend'])
  if ([...o.short, ...o.long.keys()].some((x) => !readOnly.has(x))) anyDevice(c.f, c.scope, o.operands, REASON.format)
})
rule('parted', (c) => {
  const o = getopt(c.args, 'a', ['align'], true)
  if (has(o, 'lv', 'list', 'version', 'help')) return
  const commands = o.operands.slice(1).map((a) => (lit(a) ?? '').toLowerCase())
  // No commands: parted reads them from its input.
  const writes = commands.length === 0 || commands.some((w) => ['mklabel', 'mktable', 'mkpart', 'mkpartfs', 'rm', 'resizepart', 'resize', 'rescue', 'move', 'cp', 'mkfs'].includes(w))
  if (writes) anyDevice(c.f, c.scope, o.operands.slice(0, 1), REASON.format)
})
rule('blkdiscard sg_format', (c) => {
  if (!has(getopt(c.args), 'h', 'help')) c.f.add(REASON.erase)
})
rule('hdparm', (c) => {
  const o = getopt(c.args)
  if ([...o.long.keys()].some((k) => ['security-erase', 'security-erase-enhanced', 'trim-sector-ranges', 'write-sector', 'dco-restore', 'make-bad-sector'].includes(k))) c.f.add(REASON.erase)
})
rule('nvme', (c) => {
  if (['format', 'sanitize', 'delete-ns'].includes(lit(c.args[0]) ?? '')) c.f.add(REASON.erase)
})
rule('cryptsetup', (c) => {
  const verb = lit(getopt(c.args, 'cdhkSsTtl').operands[0])?.toLowerCase()
  if (verb && ['luksformat', 'erase', 'lukserase', 'lukskillslot'].includes(verb)) c.f.add(REASON.erase)
})
rule('badblocks', (c) => {
  if (getopt(c.args, 'bcdeilopt').short.has('w')) anyDevice(c.f, c.scope, c.args, REASON.blockWrite)
})
rule('lvremove vgremove pvremove lvreduce', (c) => {
  if (!has(getopt(c.args), 'h', 'help')) c.f.add(REASON.volume)
})
rule('pvcreate vgcreate', (c) => anyDevice(c.f, c.scope, c.args, REASON.format))
rule('mdadm', (c) => {
  const o = getopt(c.args)
  if (has(o, 'C', 'create')) c.f.add(REASON.format)
  if (has(o, '', 'zero-superblock', 'fail', 'remove')) c.f.add(REASON.volume)
})
rule('zpool zfs', (c) => {
  const verb = lit(getopt(c.args, '', [], true).operands[0])
  if (verb === 'destroy' || verb === 'labelclear' || (c.name === 'zfs' && verb === 'rollback')) c.f.add(REASON.volume)
  if (c.name === 'zpool' && verb === 'create') c.f.add(REASON.format)
})
rule('btrfs', (c) => {
  const [group, verb] = words(getopt(c.args).operands)
  if (group && verb && 'subvolume'.startsWith(group) && group.length >= 3 && 'delete'.startsWith(verb)) c.f.add(REASON.volume)
})
rule('dmsetup', (c) => {
  if (['remove_all', 'remove', 'wipe_table', 'clear'].includes(lit(getopt(c.args, '', [], true).operands[0]) ?? '')) c.f.add(REASON.volume)
})

// Power.
rule('shutdown', (c) => {
  if (!has(getopt(c.args), 'ck', 'help')) c.f.add(REASON.power)
})
rule('reboot halt poweroff', (c) => {
  if (!has(getopt(c.args), '', 'help')) c.f.add(REASON.power)
})
rule('kexec', (c) => {
  if (has(getopt(c.args, 'lpt', ['type', 'initrd', 'append', 'command-line']), 'ef', 'exec', 'force')) c.f.add(REASON.power)
})
const POWER_VERBS = new Set(['reboot', 'poweroff', 'halt', 'kexec', 'emergency', 'rescue', 'suspend', 'hibernate', 'hybrid-sleep', 'suspend-then-hibernate', 'soft-reboot'])
const POWER_TARGETS = /^(?:rescue|emergency|poweroff|reboot|halt|shutdown|kexec|runlevel[016]|ctrl-alt-del|soft-reboot)(?:\.target)?$/
const REMOTE_UNITS = /^(?:ssh|sshd|networking|network|NetworkManager|systemd-networkd)(?:\.service|\.socket)?$/
rule('systemctl', (c) => {
  const o = getopt(c.args, 'tpHMnosPl', ['type', 'property', 'host', 'machine', 'lines', 'output', 'signal', 'state', 'job-mode', 'kill-whom', 'root'])
  const [verb, ...units] = words(o.operands)
  if (verb === undefined) return
  if (POWER_VERBS.has(verb) || ((verb === 'isolate' || verb === 'start' || verb === 'restart') && units.some((u) => u !== undefined && POWER_TARGETS.test(u)))) c.f.add(REASON.power)
  const stops = verb === 'stop' || verb === 'kill' || ((verb === 'disable' || verb === 'mask') && o.long.has('now'))
  if (stops && units.some((u) => u !== undefined && REMOTE_UNITS.test(u))) c.f.add(REASON.remoteAccess)
})
rule('service', (c) => {
  const [unit, action] = words(c.args)
  if (unit && REMOTE_UNITS.test(unit) && action === 'stop') c.f.add(REASON.remoteAccess)
})
rule('loginctl', (c) => {
  if (POWER_VERBS.has(lit(getopt(c.args, 'HMpnosl').operands[0]) ?? '')) c.f.add(REASON.power)
})
rule('init telinit', (c) => {
  if (['0', '6', '1', 's', 'S'].includes(lit(c.args[0]) ?? '')) c.f.add(REASON.power)
})

// Processes.
rule('kill', (c) => {
  let i = 0
  const first = lit(c.args[0])
  if (first === '-s' || first === '-n' || first === '--signal') i = 2
  else if (first?.startsWith('-') && first !== '--' && first !== '-1') i = 1
  else if (first === '-1' && c.args.length > 1) i = 1 // `kill -1 -1`: the first is the signal (HUP)
  if (lit(c.args[i]) === '--') i++
  // pid -1 is every process the caller may signal.
  if (c.args.slice(i).some((a) => lit(a) === '-1')) c.f.add(REASON.killAll)
})
rule('killall5', (c) => c.f.add(REASON.killAll))
rule('pkill killall', (c) => {
  const o = getopt(c.args, c.name === 'pkill' ? 'uUgGPstFn' : 'usoyY', ['signal', 'user', 'euid', 'uid', 'group', 'parent', 'session', 'terminal', 'older-than', 'younger-than'])
  const patterns = o.operands.map(lit)
  const root = ['u', 'U', 'user', 'euid', 'uid'].some((k) => ['root', '0'].includes(lit(o.values.get(k)) ?? (k.length > 1 ? (o.long.get(k) ?? '') : '')))
  // `pkill -v NAME` signals every process but NAME's.
  const inverse = c.name === 'pkill' && has(o, 'v', 'inverse')
  if (inverse || patterns.some((p) => p !== undefined && ['', '.', '.*', '.+', '^', '$'].includes(p)) || (patterns.length === 0 && root)) c.f.add(REASON.killAll)
  if (patterns.some((p) => p === 'sshd')) c.f.add(REASON.remoteAccess)
})

// Network and firewall.
const abbrev = (word: string | undefined, full: string, min = 1) => word !== undefined && word.length >= min && full.startsWith(word)
rule('ip', (c) => {
  const o = getopt(c.args, 'nfbrl', ['netns', 'family', 'batch', 'rcvbuf', 'loops'], true)
  const [object, verb, ...rest] = words(o.operands)
  const down =
    (abbrev(object, 'link') && abbrev(verb, 'set') && rest.includes('down')) ||
    ((abbrev(object, 'address') || abbrev(object, 'route')) && abbrev(verb, 'flush')) ||
    (abbrev(object, 'route') && abbrev(verb, 'delete') && rest.some((w) => w === 'default' || w === '0.0.0.0/0'))
  if (down) c.f.add(REASON.networkDown)
})
rule('ifdown', (c) => c.f.add(REASON.networkDown))
rule('ifconfig', (c) => {
  if (words(c.args).includes('down')) c.f.add(REASON.networkDown)
})
rule('nmcli', (c) => {
  const [object, verb, what] = words(getopt(c.args, 'fgep', ['fields', 'get-values', 'escape', 'colors', 'wait', 'ask'], true).operands)
  const off =
    (abbrev(object, 'networking') && verb === 'off') ||
    (abbrev(object, 'radio') && verb === 'all' && what === 'off') ||
    (abbrev(object, 'connection') && abbrev(verb, 'down')) ||
    (abbrev(object, 'device') && abbrev(verb, 'disconnect', 2))
  if (off) c.f.add(REASON.networkDown)
})
rule('iptables', (c) => {
  const ws = words(c.args)
  const at = (flag: string, long: string) => ws.findIndex((w) => w === flag || w === long)
  if (ws.some((w) => w === '--flush' || (w !== undefined && /^-[a-zA-Z]*F/.test(w) && !w.startsWith('--')))) c.f.add(REASON.firewallFlush)
  const p = at('-P', '--policy')
  const drops = (t: string | undefined) => t === 'DROP' || t === 'REJECT'
  if (p >= 0 && drops(ws[p + 2])) {
    if (ws[p + 1] === 'INPUT') c.f.add(REASON.dropInput)
    if (ws[p + 1] === 'OUTPUT') c.f.add(REASON.dropOutput)
  }
  // A rule that drops everything: appended or inserted with no match at all.
  const add = Math.max(at('-A', '--append'), at('-I', '--insert'))
  const j = at('-j', '--jump')
  if (add >= 0 && j >= 0 && drops(ws[j + 1])) {
    const skip = new Set([add, add + 1, j, j + 1])
    if (/^\d+$/.test(ws[add + 2] ?? '') && ws[add] !== '-A' && ws[add] !== '--append') skip.add(add + 2)
    const t = at('-t', '--table')
    if (t >= 0) skip.add(t).add(t + 1)
    const matches = ws.filter((w, i) => !skip.has(i) && w !== undefined && w.startsWith('-') && w !== '-w' && w !== '--wait')
    if (matches.length === 0) {
      if (ws[add + 1] === 'INPUT') c.f.add(REASON.dropInput)
      if (ws[add + 1] === 'OUTPUT') c.f.add(REASON.dropOutput)
    }
  }
})
rule('nft', (c) => {
  const o = getopt(c.args, 'fIi', ['file', 'includepath'])
  const ws = words(o.operands)
  const text = ws.join(' ')
  if ((ws[0] === 'flush' && ['ruleset', 'table', 'chain'].includes(ws[1] ?? '')) || (ws[0] === 'delete' && ws[1] === 'table')) c.f.add(REASON.firewallFlush)
  if (/\bpolicy drop\b/.test(text)) {
    if (/\bhook input\b/.test(text)) c.f.add(REASON.dropInput)
    if (/\bhook output\b/.test(text)) c.f.add(REASON.dropOutput)
  }
})
rule('ufw', (c) => {
  const ws = words(getopt(c.args).operands)
  if (ws[0] === 'reset' || ws[0] === 'disable') c.f.add(REASON.firewallFlush)
  if (ws[0] === 'default' && (ws[1] === 'deny' || ws[1] === 'reject')) c.f.add(ws[2] === 'outgoing' ? REASON.dropOutput : REASON.dropInput)
})
rule('firewall-cmd', (c) => {
  const o = getopt(c.args)
  const zone = o.long.get('set-default-zone')
  if (o.long.has('panic-on') || zone === 'drop' || zone === 'block') c.f.add(REASON.dropInput)
})

// Scheduled jobs, packages, container volumes.
rule('crontab', (c) => {
  if (getopt(c.args, 'us').short.has('r')) c.f.add(REASON.cron)
})
const ESSENTIAL = new Set(['libc6', 'libc-bin', 'glibc', 'musl', 'bash', 'dash', 'coreutils', 'systemd', 'systemd-sysv', 'init', 'sysvinit-core', 'openssh-server', 'openssh', 'sudo', 'dpkg', 'apt', 'rpm', 'yum', 'dnf', 'util-linux', 'login', 'passwd', 'base-files', 'base-passwd', 'busybox', 'apk-tools', 'pacman', 'filesystem', 'pam', 'libpam0g', 'python3'])
const ESSENTIAL_PREFIX = /^(?:linux-image|linux-generic|kernel|grub|libc6|glibc|libpam|systemd)/
function essentialPackages(c: Call, names: Arg[]) {
  const hit = names.some((a) => {
    const name = (lit(a) ?? '').split(/[:=]/)[0]!
    return name === '*' || ESSENTIAL.has(name) || ESSENTIAL_PREFIX.test(name)
  })
  if (hit) c.f.add(REASON.packages)
}
rule('apt apt-get aptitude yum dnf microdnf tdnf zypper apk', (c) => {
  const o = getopt(c.args, 'octqC', ['option', 'config-file', 'target-release', 'root', 'installroot', 'repo'])
  const [verb, ...pkgs] = o.operands
  if (['remove', 'purge', 'erase', 'autoremove', 'rm', 'del'].includes(lit(verb) ?? '')) essentialPackages(c, pkgs)
})
rule('dpkg', (c) => {
  const o = getopt(c.args, 'rP', ['remove', 'purge'])
  const named = [o.values.get('r'), o.values.get('P'), o.values.get('remove'), o.values.get('purge')].filter((a): a is Arg => a !== undefined)
  if (named.length > 0) essentialPackages(c, [...named, ...o.operands])
})
rule('rpm', (c) => {
  const o = getopt(c.args)
  if (has(o, 'e', 'erase')) essentialPackages(c, o.operands)
})
rule('pacman', (c) => {
  const o = getopt(c.args)
  if (has(o, 'R', 'remove')) essentialPackages(c, o.operands)
})
rule('docker podman', (c) => {
  const o = getopt(c.args, 'HcD', ['host', 'config', 'context', 'log-level'], true)
  const [group, verb] = words(o.operands)
  const rest = getopt(o.operands.slice(2))
  if ((group === 'system' && verb === 'prune' && rest.long.has('volumes')) || (group === 'volume' && verb === 'prune')) c.f.add(REASON.volumes)
})
