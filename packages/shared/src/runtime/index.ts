/** Runtime helpers of every apiary program: logger, flags, program lifecycle, heartbeats, secret files. */
export { createLogger, type Logger, type LoggerOptions, REDACT, silentLogger } from './log.ts'
export { rateLimitedWarning, warnRateLimited } from './rate-limit.ts'
export { defaultStateDir, ensureStateDir, parseDuration, readOwnFile, readSecretBytes, readSecretFile, SECRET_FILE_MAX_BYTES, writeSecretFile } from './config.ts'
export {
  DAEMON_OPTIONS,
  DRAIN_OPTIONS,
  NATS_CONNECT_OPTIONS,
  OPS_OPTIONS,
  type OpsFlags,
  opsOptionsFrom,
  type NatsConnectFlags,
  natsConnectOptionsFrom,
  type OptionSpec,
  type OptionTable,
  type OptionValues,
  optionsHelp,
  parseCommandAndGlobals,
  parseCommandLine,
  parseLabels,
  requiredNatsUrl,
  requiredQueenKey,
  SSH_OPTIONS,
  SSH_POOL_OPTIONS,
  type SshPoolFlags,
  sshPoolOptionsFrom,
  withHelpPrefix,
} from './cli.ts'
export { CLOSE_MARGIN_MS, type ProgramSpec, runProgram } from './program.ts'
export { closeOnSignals } from './process.ts'
export { Heartbeater } from './heartbeat.ts'
export { abortable } from './abort.ts'
export { pause } from '../bus/durable.ts'
export { loadOrCreateSigningKey, publicKeyPath, readQueenKey } from './keys.ts'
export { busLink, createMetrics, type DaemonMetrics, type MetricKey, type MetricOf, METRICS, secondsSince } from './metrics.ts'
export { checkOpsEndpoint, healthFromFlags, isLoopback, type OpsEndpoint, type OpsListen, type OpsServer, type OpsServerOptions, probeReady, serveOps, startOpsServer } from './ops-server.ts'
