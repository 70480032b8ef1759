import type { PushOutcome } from '../bus/push.ts'
import { defineCommand } from '../cli/command.ts'
import { EXIT, type Io } from '../cli/context.ts'
import { BUS_DIR_OPTIONS, busDirOf, PUSH_OPTIONS, pushFlagsOf } from './bus-options.ts'

/**
 * The exit code of a push: 0 once the server took the JWT; 4 when keeper could not connect to
 * it (as when keeper cannot reach the queen); 1 when it did and the server did not take it. The
 * config was written either way, and the fallback is a reload.
 */
export function pushExitCode(push: PushOutcome): number {
  return push.ok ? EXIT.ok : push.failed === 'connect' ? EXIT.unreachable : EXIT.notOk
}

/** Prints what came of a push and returns `pushExitCode`. */
export async function reportPush(io: Io, push: PushOutcome, configs: readonly string[], dirFlag: string, systemIssued: string | undefined): Promise<number> {
  if (systemIssued !== undefined) await io.out.line(`issued keeper's system user ${systemIssued} (this bus directory had none): it pushes account JWTs to nats-server`)
  if (push.ok) {
    await io.out.line(`nats-server at ${push.server} took the account JWT (${push.message}): it closed the revoked keys' connections and left every other one alone`)
    return EXIT.ok
  }
  await io.err.line(`keeper: the running nats-server has not applied it: pushing the account JWT to ${push.server} failed (${push.failed}): ${push.reason}`)
  await io.err.line(
    `keeper: ${configs.join(', ')} ${configs.length === 1 ? 'holds' : 'hold'} it, and nats-server reads it when it starts: fix that and run keeper bus push${dirFlag}, ` +
      'or reload nats-server now (kill -HUP <nats-server pid>; on 2.9 a reload drops every JWT-authenticated connection for a moment)',
  )
  return pushExitCode(push)
}

export const busPush = defineCommand({
  name: 'bus push',
  summary: "hand the account JWT to the running nats-server (as keeper's system user): revocations apply without a reload",
  usage:
    'keeper bus push [--dir DIR] [--server nats://HOST:PORT] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]\n' +
    'For a re-issue (which revokes the previous key), when a revoke could not push, or after upgrading keeper:\n' +
    'it signs the account JWT again as this keeper does (JetStream and its limits included), rewrites every\n' +
    "server's config, and pushes it. A cluster's servers all take it through the one it reaches; each must answer.",
  options: { ...BUS_DIR_OPTIONS, ...PUSH_OPTIONS },
  args: 'none',
  async run({ values: v, globals, io }) {
    const dir = busDirOf(v, globals, io.env)
    const flags = await pushFlagsOf(v)
    const [{ pushAccount }, { pusher }] = await Promise.all([import('../bus/store.ts'), import('../bus/push.ts')])
    const r = await pushAccount(dir, pusher(flags, { signal: io.interrupt }))
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify({ ...r, reload: !r.push.ok }))
      return pushExitCode(r.push)
    }
    return reportPush(io, r.push, r.configs, v.dir === undefined ? '' : ` --dir ${dir}`, r.systemIssued)
  },
})
