import type { Operation } from './operation.ts'

export type RiskClass = 'safe' | 'destructive'

export interface Risk {
  class: RiskClass
  /** Why, in words an operator recognises: "recursive delete of /", "reboot". */
  reasons: string[]
}

/** Paths whose recursive removal takes a system or its data with it. */
const BROAD_PATH = String.raw`(?:/|/\*|~/?|~/\*|\*|\.|\./?\*|/(?:bin|boot|dev|etc|home|lib|lib64|opt|root|sbin|srv|usr|var)(?:/\*?)?|\$HOME/?\*?)`
const DEVICE = String.raw`/dev/(?:sd[a-z]|nvme\d|vd[a-z]|xvd[a-z]|hd[a-z]|mmcblk\d|md\d|dm-\d|mapper/)`

const RULES: Array<{ re: RegExp; reason: string }> = [
  {
    re: new RegExp(String.raw`(?:^|[;&|(\s])rm\s+(?:-[a-zA-Z]*[rR][a-zA-Z]*\s+|--recursive\s+|-[a-zA-Z]+\s+|--[a-z-]+\s+)*(?:-[a-zA-Z]*[rR][a-zA-Z]*\s+|--recursive\s+)(?:-[a-zA-Z-]+\s+)*(?:"|')?${BROAD_PATH}(?:"|')?(?=\s|$|[;&|)])`),
    reason: 'recursive delete of a broad path',
  },
  { re: /(?:^|[;&|(\s])(?:mkfs(?:\.\w+)?|mke2fs|mkswap|wipefs|sgdisk\s+(?:-Z|--zap-all)|fdisk|sfdisk|parted|blkdiscard)(?=\s|$)/, reason: 'disk formatting or partitioning' },
  { re: new RegExp(String.raw`(?:^|[;&|(\s])dd\s+[^;&|]*of=${DEVICE}`), reason: 'raw write to a block device' },
  { re: new RegExp(String.raw`>\s*${DEVICE}`), reason: 'raw write to a block device' },
  { re: new RegExp(String.raw`(?:^|[;&|(\s])shred\s+[^;&|]*${DEVICE}`), reason: 'raw write to a block device' },
  { re: /(?:^|[;&|(\s])(?:shutdown|reboot|halt|poweroff)(?=\s|$|[;&|)])/, reason: 'shutdown or reboot' },
  { re: /(?:^|[;&|(\s])(?:systemctl|loginctl)\s+(?:-\S+\s+)*(?:reboot|poweroff|halt|kexec|emergency|rescue)(?=\s|$)/, reason: 'shutdown or reboot' },
  { re: /(?:^|[;&|(\s])(?:init|telinit)\s+[06](?=\s|$)/, reason: 'shutdown or reboot' },
  { re: /(?:curl|wget|fetch)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b/, reason: 'piping a download into a shell' },
  { re: /(\w+|:)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&[^}]*\}\s*;\s*\1/, reason: 'fork bomb' },
  { re: new RegExp(String.raw`(?:^|[;&|(\s])(?:chmod|chown|chgrp)\s+(?:-\S+\s+)*-[a-zA-Z]*R[a-zA-Z]*\s+\S+\s+${BROAD_PATH}(?=\s|$)`), reason: 'recursive permission change of a broad path' },
  { re: /(?:^|[;&|(\s])kill\s+(?:-\S+\s+)*-1(?=\s|$)/, reason: 'kills every process' },
  { re: /(?:^|[;&|(\s])(?:iptables|ip6tables)\s+(?:-\S+\s+)*-F(?=\s|$)|nft\s+flush\s+ruleset/, reason: 'flushes the firewall' },
]

/**
 * Classifies an operation's risk from its command text. Destructive operations need an
 * explicit confirmation of the node count (`--yes`, or typing the count on a terminal), and
 * the queen refuses them without it. A classifier cannot read intent: it catches the common
 * foot-guns, it is not a sandbox.
 *
 * @example classifyRisk({ type: 'exec', shell: true, command: 'rm -rf /' }) // { class: 'destructive', reasons: ['recursive delete of a broad path'] }
 */
export function classifyRisk(op: Operation): Risk {
  if (op.type !== 'exec') return { class: 'safe', reasons: [] }
  const text = op.shell ? (op.command ?? '') : (op.argv ?? []).join(' ')
  const reasons = [...new Set(RULES.filter((r) => r.re.test(text)).map((r) => r.reason))]
  // argv with an interpreter: `sh -c '…'` or `bash -c '…'` hides the real command one level down.
  return { class: reasons.length > 0 ? 'destructive' : 'safe', reasons }
}
