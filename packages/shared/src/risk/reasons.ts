/** The reasons an operator reads, one constant each so tests and callers match them exactly. */
export const REASON = {
  recursiveDelete: 'recursive delete of a broad path',
  systemGlobDelete: 'delete of every file in a system directory',
  critical: 'removes or overwrites a file the system needs to boot or log in',
  move: 'moves a broad path away',
  recursivePermissions: 'recursive permission change of a broad path',
  systemGlobPermissions: 'permission change of every file in a system directory',
  format: 'disk formatting or partitioning',
  blockWrite: 'writes to a block device',
  memoryWrite: 'writes to system memory',
  erase: 'erases a disk',
  volume: 'destroys a storage pool or volume',
  power: 'shutdown or reboot',
  sysrq: 'triggers an immediate reboot or crash (sysrq)',
  killAll: 'kills every process',
  remoteAccess: 'stops remote access or networking',
  networkDown: 'takes the network down',
  firewallFlush: 'flushes the firewall',
  dropInput: 'firewall policy drops all input',
  dropOutput: 'firewall policy drops all output',
  forkBomb: 'fork bomb',
  downloadShell: 'piping a download into a shell',
  downloadInterpreter: 'piping a download into an interpreter',
  cron: 'removes every cron job',
  packages: 'removes a package the system needs',
  volumes: 'deletes every container volume',
  // What cannot be checked is treated as destructive: it needs the same confirmation.
  substCommand: 'cannot be checked: command substitution runs as a command',
  decoded: 'cannot be checked: decoded text runs as a script',
  eval: 'cannot be checked: eval runs text built at run time',
  tooDeep: 'cannot be checked: commands nested too deeply',
  tooLarge: 'cannot be checked: too large to check',
} as const

export const unparsable = (why: string): string => `cannot be checked: the command does not parse (${why})`
export const variableProgram = (name: string): string => `cannot be checked: the program is a variable (${name})`
export const programOutput = (name: string): string => `cannot be checked: the output of ${name} runs as a script`
export const inlineCode = (lang: string, token: string): string => `cannot be checked: inline ${lang} code that can run commands or delete files (${token})`
export const runtimeCode = (lang: string): string => `cannot be checked: inline ${lang} code built at run time`
export const ifEmpty = (reason: string, name: string): string => `${reason} if $${name} is empty or unset`
export const substPath = (noun: string): string => `cannot be checked: command substitution gives the path of a ${noun}`
