import { z } from 'zod'

/** The most bytes a command may take, counted over argv or the shell string. */
export const MAX_COMMAND_BYTES = 64 * 1024
const MAX_ARGS = 4096

/**
 * exec(2) ends argv, env and paths at the first NUL byte, and shells drop NULs from what they
 * read: the node would run something other than the operation that was signed and classified
 * (`rm -rf /\0tmp/x` removes /). Refused at the edge, naming the field.
 */
const noNul = (s: z.ZodString) => s.refine((v) => !v.includes('\0'), 'must not contain a NUL byte')

const Env = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names hold only letters, digits and _'),
  noNul(z.string().max(32 * 1024)),
)

/**
 * Run a program. Without `shell`, `argv` is executed directly, no shell in between; with
 * `shell: true`, `command` is one string run by `/bin/sh -c`.
 *
 * @example { type: 'exec', argv: ['uname', '-n'] }
 * @example { type: 'exec', shell: true, command: 'df -h | tail -n +2' }
 */
export const ExecOperation = z
  .strictObject({
    type: z.literal('exec'),
    argv: z.array(noNul(z.string())).min(1, 'must name a program').max(MAX_ARGS, `must hold at most ${MAX_ARGS} arguments`).optional(),
    shell: z.boolean().default(false),
    command: noNul(z.string().min(1, 'must not be empty')).optional(),
    env: Env.optional(),
    cwd: noNul(z.string().min(1).max(4096)).optional(),
    stdin: noNul(z.string().max(1024 * 1024)).optional(),
  })
  .superRefine((op, ctx) => {
    if (op.shell) {
      if (op.command === undefined) ctx.addIssue({ code: 'custom', path: ['command'], message: 'is required when shell is true' })
      if (op.argv !== undefined) ctx.addIssue({ code: 'custom', path: ['argv'], message: 'must not be set when shell is true (use command)' })
    } else {
      if (op.command !== undefined) ctx.addIssue({ code: 'custom', path: ['command'], message: 'needs shell: true (or use argv)' })
      else if (op.argv === undefined) ctx.addIssue({ code: 'custom', path: ['argv'], message: 'is required (or set shell: true and command)' })
      if (op.argv?.[0] === '') ctx.addIssue({ code: 'custom', path: ['argv', 0], message: 'must name a program' })
    }
    const bytes = op.shell
      ? Buffer.byteLength(op.command ?? '')
      : (op.argv ?? []).reduce((n, a) => n + Buffer.byteLength(a) + 1, 0)
    if (bytes > MAX_COMMAND_BYTES) {
      ctx.addIssue({
        code: 'custom',
        path: [op.shell ? 'command' : 'argv'],
        message: `is ${bytes} bytes; the most a command may take is ${MAX_COMMAND_BYTES}`,
      })
    }
  })

/** Answers at once; measures the path to a node without running anything. */
export const PingOperation = z.strictObject({ type: z.literal('ping') })

/** Collects typed facts about the node (see `Facts`). */
export const FactsOperation = z.strictObject({ type: z.literal('facts') })

export const Operation = z.discriminatedUnion('type', [ExecOperation, PingOperation, FactsOperation])
export type Operation = z.infer<typeof Operation>
export type ExecOperation = z.infer<typeof ExecOperation>

/** The typed result of a `facts` operation. */
export const Facts = z.object({
  hostname: z.string(),
  os: z.string(),
  platform: z.string(),
  kernel: z.string(),
  arch: z.string(),
  cpus: z.object({ count: z.number().int(), model: z.string() }),
  memory: z.object({ totalBytes: z.number(), availableBytes: z.number() }),
  uptimeSeconds: z.number(),
  loadAverage: z.tuple([z.number(), z.number(), z.number()]),
})
export type Facts = z.infer<typeof Facts>

/** A one-line description of an operation for humans. */
export function describeOperation(op: Operation): string {
  switch (op.type) {
    case 'exec':
      return op.shell ? `sh -c ${JSON.stringify(op.command)}` : (op.argv ?? []).map(quoteArg).join(' ')
    case 'ping':
      return 'ping'
    case 'facts':
      return 'facts'
  }
}

function quoteArg(a: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`
}
