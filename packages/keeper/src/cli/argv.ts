import type { OptionTable } from '@apiary/shared/runtime'

/** Everything after the first `--` is the remote command, never keeper's flags. */
export function splitAtDoubleDash(argv: string[]): { before: string[]; after: string[] | undefined } {
  const dd = argv.indexOf('--')
  return dd < 0 ? { before: argv, after: undefined } : { before: argv.slice(0, dd), after: argv.slice(dd + 1) }
}

/** The index of the first word that is neither a flag of `table` nor a flag's value; -1 if none. */
export function firstWord(argv: string[], table: OptionTable): number {
  return argv.findIndex((a, i) => !a.startsWith('-') && !isFlagValue(argv, i, table))
}

/**
 * `keeper dev --workers 2 run --targets x -- CMD`: the flags before the first word are the
 * command's own; from that word on, with the `--` tail put back, a command line of its own.
 */
export function splitSubcommand(flags: string[], after: string[] | undefined, table: OptionTable): { own: string[]; sub: string[] } {
  const at = firstWord(flags, table)
  if (at < 0) return { own: flags, sub: after === undefined ? [] : ['--', ...after] }
  return { own: flags.slice(0, at), sub: [...flags.slice(at), ...(after === undefined ? [] : ['--', ...after])] }
}

function isFlagValue(argv: string[], i: number, table: OptionTable): boolean {
  const prev = argv[i - 1]
  if (prev === undefined || !prev.startsWith('-') || prev.includes('=')) return false
  const name = prev.replace(/^-+/, '')
  const spec = table[name] ?? Object.values(table).find((s) => s.short === name)
  return spec !== undefined && spec.type !== 'boolean'
}
