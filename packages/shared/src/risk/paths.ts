import { SOMEWHERE } from './model.ts'

/**
 * A path as components from `/`, `.` and `..` and repeated slashes resolved against the
 * directory the command runs in. `~` is a home directory (`home/~`), a directory the
 * classifier cannot name stays one (`[SOMEWHERE]`, which may be `/`), and `host:/path`
 * (rsync, scp) is the path on that host.
 */
export function components(path: string, cwd: string): string[] {
  let p = path
  const remote = /^[A-Za-z0-9_.@-]+:(?=\/)/.exec(p)
  if (remote) p = p.slice(remote[0].length)
  let base: string[]
  if (p.startsWith('~')) {
    const slash = p.indexOf('/')
    const user = p.slice(1, slash < 0 ? undefined : slash)
    base = user === '' ? ['home', '~'] : user === 'root' ? ['root'] : ['home', user]
    p = slash < 0 ? '' : p.slice(slash)
  } else if (p.startsWith('/')) base = []
  else base = cwd === SOMEWHERE ? [SOMEWHERE] : components(cwd, SOMEWHERE)
  const out = [...base]
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue
    // The parent of a directory the classifier cannot name is another one.
    if (c === '..') {
      if (out.length > 0 && out[out.length - 1] !== SOMEWHERE) out.pop()
    } else out.push(c)
  }
  return out
}

const GLOB = /[*?[]/
/** `*`, `.*`, `[a-z]*`: a component that names no directory of its own, only what it matches. */
const globOnly = (c: string) => GLOB.test(c) && c.replace(/\[[^\]]*\]/g, '').replace(/[*?.]/g, '') === ''

/** Directories at the top whose recursive removal or re-permissioning takes the system or its data with it. */
const TOP = new Set(['bin', 'boot', 'dev', 'etc', 'home', 'lib', 'lib32', 'lib64', 'libx32', 'media', 'mnt', 'opt', 'proc', 'root', 'run', 'sbin', 'snap', 'srv', 'sys', 'tmp', 'usr', 'var'])
/** Removing /tmp is; emptying it (`/tmp/*`) is ordinary housekeeping. */
const EMPTYING_IS_FINE = new Set(['tmp'])
const BELOW = new Set([
  'usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib32', 'usr/lib64', 'usr/libexec', 'usr/local', 'usr/share', 'usr/include',
  'var/lib', 'var/log', 'var/spool', 'var/mail', 'var/backups',
  'etc/ssh', 'etc/pam.d', 'etc/systemd', 'boot/efi', 'boot/grub', 'root/.ssh',
])

/** Whether deleting (recursively) or re-permissioning this path takes a system, a home or their data with it. */
export function isBroad(path: string[]): boolean {
  let n = path.length
  while (n > 0 && globOnly(path[n - 1]!)) n--
  const c = path.slice(0, n)
  const emptied = n < path.length
  if (c.length === 0) return true
  if (c[0] === SOMEWHERE) return c.length === 1
  if (GLOB.test(c[0]!)) return true
  const p = c.join('/')
  if (c.length === 1 && TOP.has(p)) return !(emptied && EMPTYING_IS_FINE.has(p))
  if (BELOW.has(p)) return true
  // A home directory, or its ssh keys.
  return c[0] === 'home' && (c.length === 2 || (c.length === 3 && c[2] === '.ssh'))
}

/** Every file directly in a system directory (`/etc/*`, `/usr/bin/*`): what a non-recursive delete of a glob there removes. */
export function isSystemGlob(path: string[]): boolean {
  const last = path[path.length - 1]
  if (last === undefined || !globOnly(last)) return false
  const dir = path.slice(0, -1)
  return dir.length > 0 && dir[0] !== SOMEWHERE && !EMPTYING_IS_FINE.has(dir.join('/')) && isBroad(dir) && (dir.length > 1 || TOP.has(dir[0]!))
}

const HARMLESS_DEVICES = new Set(['null', 'zero', 'full', 'random', 'urandom', 'tty', 'console', 'ptmx', 'stdin', 'stdout', 'stderr', 'log', 'kmsg'])
const HARMLESS_DEVICE_DIRS = new Set(['fd', 'pts', 'shm', 'tcp', 'udp', 'mqueue', 'hugepages', 'net'])

/** What writing to this path writes to: a disk (any device that is not a terminal, pipe or sink), system memory, or neither. */
export function deviceKind(path: string[]): 'disk' | 'memory' | null {
  if (path[0] !== 'dev' || path.length < 2) return null
  const name = path[1]!
  if (path.length === 2 && (HARMLESS_DEVICES.has(name) || /^tty/.test(name))) return null
  if (path.length > 2 && HARMLESS_DEVICE_DIRS.has(name)) return null
  if (path.length === 2 && ['mem', 'kmem', 'port'].includes(name)) return 'memory'
  return 'disk'
}

const CRITICAL = new Set([
  'etc/passwd', 'etc/shadow', 'etc/group', 'etc/gshadow', 'etc/sudoers', 'etc/fstab', 'etc/ssh/sshd_config', 'etc/pam.d/sshd',
  'bin/sh', 'bin/bash', 'usr/bin/sh', 'usr/bin/bash', 'usr/bin/sudo', 'sbin/init', 'lib/systemd/systemd', 'usr/lib/systemd/systemd',
  'root/.ssh/authorized_keys',
])

/** A file the system cannot boot or be logged into without. */
export function isCritical(path: string[]): boolean {
  const p = path.join('/')
  if (CRITICAL.has(p)) return true
  if (path[0] === 'home' && path.length === 4 && path[2] === '.ssh' && path[3] === 'authorized_keys') return true
  return path[0] === 'boot' && path.length === 2 && /^(?:vmlinuz|initrd|initramfs)/.test(path[1]!)
}

export const isSysrq = (path: string[]): boolean => path.length === 2 && path[0] === 'proc' && path[1] === 'sysrq-trigger'

/** The directory `cd TARGET` moves to from `cwd`, in the form `components` reads back. */
export function directory(target: string | undefined, cwd: string): string {
  if (target === undefined) return SOMEWHERE
  const c = components(target, cwd)
  if (c[0] === SOMEWHERE) return SOMEWHERE
  if (c[0] === 'home' && c[1] === '~') return `~/${c.slice(2).join('/')}`
  return `/${c.join('/')}`
}
