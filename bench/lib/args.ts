import { errorMessage } from '@apiary/shared'

/** The benchmark's own arguments: `pnpm bench:x -- --nodes 5` passes the `--` through. */
export function benchArgs(argv: string[]): string[] {
  return argv[0] === '--' ? argv.slice(1) : argv
}

/** A flag's value as a whole number from `min` to `max`; throws naming the flag. */
export function wholeNumber(v: string, flag: string, min: number, max: number): number {
  const n = Number(v)
  if (!/^\d+$/.test(v) || n < min || n > max) throw new Error(`${flag}: "${v}" must be a whole number from ${min} to ${max}`)
  return n
}

/**
 * The benchmark's options from its command line (`parse` returns 'help' for -h); when there is
 * nothing to run, prints the usage and returns the exit code instead: 2 for a bad flag, 0 for help.
 */
export function optionsOrExit<O>(name: string, usage: string, parse: (argv: string[]) => O | 'help'): O | number {
  let opts: O | 'help'
  try {
    opts = parse(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${name}: ${errorMessage(err)}\n\n${usage}`)
    return 2
  }
  if (opts !== 'help') return opts
  process.stdout.write(usage)
  return 0
}
