import { parseArgs } from 'node:util'
import { parseDuration } from './config.ts'
import { ApiaryError } from './errors.ts'
import { LabelKey, LabelValue } from './schema/ids.ts'

export interface OptionSpec {
  type: 'string' | 'boolean'
  help: string
  /** Environment variable read when the flag is absent. */
  env?: string
  default?: string
  short?: string
  multiple?: boolean
  /** Shown in help: `--region R`. */
  value?: string
}

export type OptionTable = Record<string, OptionSpec>

type Values<T extends OptionTable> = {
  [K in keyof T]: T[K]['type'] extends 'boolean' ? boolean : T[K]['multiple'] extends true ? string[] : string | undefined
}

/**
 * Parses flags against a table, filling absent ones from the environment, then defaults. An
 * unknown flag or a missing value is an `invalid_input` error that names the flag.
 *
 * @example
 * const { values } = parseCommandLine('apiary-hive', HIVE_OPTIONS, process.argv.slice(2), process.env)
 */
export function parseCommandLine<T extends OptionTable>(
  program: string,
  table: T,
  argv: string[],
  env: NodeJS.ProcessEnv,
  opts: { positionals?: boolean } = {},
): { values: Values<T>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const [name, spec] of Object.entries(table)) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) }
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: opts.positionals ?? false })
  } catch (err) {
    throw new ApiaryError('invalid_input', `${flagProblem((err as Error).message)} (see ${program} --help)`, 'flags', { cause: err })
  }
  const values: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(table)) {
    let v: unknown = (parsed.values as Record<string, unknown>)[name]
    if (v === undefined && spec.env && env[spec.env] !== undefined && env[spec.env] !== '') {
      const raw = env[spec.env]!
      v = spec.type === 'boolean' ? raw === '1' || raw === 'true' : spec.multiple ? raw.split(',').filter(Boolean) : raw
    }
    if (v === undefined) v = spec.type === 'boolean' ? false : spec.multiple ? [] : spec.default
    values[name] = v
  }
  return { values: values as Values<T>, positionals: parsed.positionals }
}

function flagProblem(message: string): string {
  const unknown = /Unknown option '([^']+)'/.exec(message)
  if (unknown) return `unknown flag ${unknown[1]}`
  const missing = /Option '([^']+?)(?: <value>)?' argument missing/.exec(message)
  if (missing) return `flag ${missing[1]!.replace(/^-\w, /, '')} needs a value`
  const positional = /Unexpected argument '([^']+)'/.exec(message)
  if (positional) return `unexpected argument "${positional[1]}"`
  return message.replace(/\. To specify.*$/s, '')
}

/** The options part of `--help`, one flag a line with its variable and default. */
export function optionsHelp(table: OptionTable): string {
  const rows = Object.entries(table).map(([name, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`
    const extra = [s.env ? `env ${s.env}` : '', s.default !== undefined ? `default ${s.default}` : ''].filter(Boolean).join('; ')
    return [flag, `${s.help}${extra ? ` (${extra})` : ''}`] as const
  })
  const width = Math.max(...rows.map(([f]) => f.length)) + 2
  return rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`).join('\n')
}

/** Parses `k=v` labels from flags, naming the bad one. */
export function parseLabels(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of items) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw new ApiaryError('invalid_input', `${flag}: "${item}" is not key=value`, flag)
    const [key, value] = [item.slice(0, eq), item.slice(eq + 1)]
    const k = LabelKey.safeParse(key)
    if (!k.success) throw new ApiaryError('invalid_input', `${flag}: label name "${key}" ${k.error.issues[0]?.message ?? 'is not valid'}`, flag)
    const v = LabelValue.safeParse(value)
    if (!v.success) throw new ApiaryError('invalid_input', `${flag}: label value "${value}" ${v.error.issues[0]?.message ?? 'is not valid'}`, flag)
    out[key] = value
  }
  return out
}

/** An integer flag within bounds, naming the flag when it is not. */
export function parseIntFlag(text: string, flag: string, min: number, max: number): number {
  const n = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ApiaryError('invalid_input', `${flag}: "${text}" must be a whole number from ${min} to ${max}`, flag)
  }
  return n
}

/** Milliseconds from a flag: a bare number is ms, otherwise a duration (`5s`, `1m`). */
export function parseMsFlag(text: string, flag: string): number {
  return /^\d+$/.test(text.trim()) ? Number(text) : parseDuration(text, flag)
}
