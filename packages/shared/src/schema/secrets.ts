import { z } from 'zod'
import { ApiaryError } from '../errors.ts'
import { ExecOperation, FactsOperation, type Operation, PingOperation } from './operation.ts'

/** What stands in for every env value an operation's view shows. */
export const REDACTED = '[redacted]'

/** The parts of an operation that are never shown, logged or stored in clear text: env values and stdin. */
export interface OperationSecrets {
  env?: Record<string, string>
  stdin?: string
}

const exec = ExecOperation.shape

/**
 * An exec operation as the API, events and logs show it: env keys with `"[redacted]"` for
 * every value, and stdin only as its length in UTF-8 bytes.
 *
 * @example { type: 'exec', shell: false, argv: ['deploy'], env: { TOKEN: '[redacted]' }, stdinBytes: 412 }
 */
export const ExecOperationView = z.strictObject({
  type: exec.type,
  argv: exec.argv,
  shell: exec.shell,
  command: exec.command,
  cwd: exec.cwd,
  env: z.record(z.string().max(1024), z.literal(REDACTED)).optional(),
  stdinBytes: z.number().int().min(0).optional(),
})
export type ExecOperationView = z.infer<typeof ExecOperationView>

/** An operation without its secrets (see `redactOperation`): what a job's `operation` is everywhere outside the queen's dispatch. */
export const OperationView = z.discriminatedUnion('type', [ExecOperationView, PingOperation, FactsOperation])
export type OperationView = z.infer<typeof OperationView>

/**
 * The operation as it may be shown: env values replaced by `"[redacted]"` (keys kept), stdin
 * by `stdinBytes`. Operations other than `exec` hold no secrets and come back as they are.
 *
 * @example redactOperation({ type: 'exec', shell: false, argv: ['x'], env: { T: 's3cr3t' } }) // env: { T: '[redacted]' }
 */
export function redactOperation(op: Operation): OperationView {
  return splitSecrets(op).view
}

/**
 * The operation split into its view and its secrets; `secrets` is undefined when it has none
 * (no env value, no stdin). `joinSecrets(view, secrets)` gives the operation back.
 */
export function splitSecrets(op: Operation): { view: OperationView; secrets: OperationSecrets | undefined } {
  if (op.type !== 'exec') return { view: op, secrets: undefined }
  const { env, stdin, ...rest } = op
  const view: ExecOperationView = { ...rest }
  const secrets: OperationSecrets = {}
  if (env !== undefined) {
    view.env = Object.fromEntries(Object.keys(env).map((k) => [k, REDACTED]))
    if (Object.keys(env).length > 0) secrets.env = env
  }
  if (stdin !== undefined) {
    view.stdinBytes = Buffer.byteLength(stdin)
    secrets.stdin = stdin
  }
  return { view, secrets: secrets.env === undefined && secrets.stdin === undefined ? undefined : secrets }
}

/** Whether the view stands for an operation with secrets: env values or stdin that `joinSecrets` needs. */
export function hasSecrets(view: OperationView): boolean {
  return view.type === 'exec' && ((view.env !== undefined && Object.keys(view.env).length > 0) || view.stdinBytes !== undefined)
}

/**
 * The whole operation again from its view and its secrets. Throws `invalid_input` when the
 * secrets are not the view's (other env keys, another stdin length, missing ones); the
 * message names keys and lengths, never a value.
 */
export function joinSecrets(view: OperationView, secrets: OperationSecrets | undefined): Operation {
  if (view.type !== 'exec') return view
  const { env: envView, stdinBytes, ...rest } = view
  const op: ExecOperation = { ...rest }
  if (envView !== undefined) {
    const want = Object.keys(envView).sort()
    const have = Object.keys(secrets?.env ?? {}).sort()
    if (want.join('\0') !== have.join('\0')) {
      throw new ApiaryError('invalid_input', `operation.env: the secrets hold the keys [${have.join(', ')}], the operation [${want.join(', ')}]`, 'operation.env')
    }
    op.env = { ...secrets?.env }
  } else if (secrets?.env !== undefined) {
    throw new ApiaryError('invalid_input', 'operation.env: the secrets hold env values the operation has no keys for', 'operation.env')
  }
  if (stdinBytes !== undefined) {
    const stdin = secrets?.stdin
    if (stdin === undefined || Buffer.byteLength(stdin) !== stdinBytes) {
      throw new ApiaryError('invalid_input', `operation.stdin: the secrets hold ${stdin === undefined ? 'no stdin' : `${Buffer.byteLength(stdin)} bytes of stdin`}, the operation ${stdinBytes}`, 'operation.stdin')
    }
    op.stdin = stdin
  } else if (secrets?.stdin !== undefined) {
    throw new ApiaryError('invalid_input', 'operation.stdin: the secrets hold stdin the operation has none of', 'operation.stdin')
  }
  return op
}
