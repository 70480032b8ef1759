export { ApiaryError, type ErrorCode, errorMessage, invalidInput, isApiaryError, issuePath, parseOrThrow } from './errors.ts'
export { subjects } from './subjects.ts'
export { createLogger, type Logger, type LoggerOptions, REDACT, silentLogger } from './log.ts'
export { defaultStateDir, parseDuration, readSecretFile, writeSecretFile } from './config.ts'
export { type Bus, type BusHandler, type BusMessage, type BusSubscription, decode, type RequestOptions, subjectMatches } from './bus/bus.ts'
export { createMemoryBus } from './bus/memory.ts'
export { createNatsBus, type NatsBusOptions } from './bus/nats.ts'
export { createJobClient, errorFromBody, type JobClient, type JobClientOptions, type StreamOptions } from './client/job-client.ts'
export { parseSse } from './client/sse.ts'
export { JobId, LabelKey, Labels, LabelValue, NodeId, Region } from './schema/ids.ts'
export {
  describeOperation,
  ExecOperation,
  Facts,
  FactsOperation,
  MAX_COMMAND_BYTES,
  Operation,
  PingOperation,
} from './schema/operation.ts'
export { matchesSelector, parseSelector, type SelectableNode, type Selector, type SelectorTerm, SelectorText } from './schema/targets.ts'
export {
  BreakerState,
  Confirm,
  Counts,
  CountOrPercent,
  DEFAULT_CONCURRENCY,
  DEFAULT_DELIVERY_TIMEOUT_MS,
  DEFAULT_OUTPUT_CAP,
  DEFAULT_TIMEOUT_MS,
  FINAL_STATES,
  FinalState,
  isFinal,
  JOB_STATES,
  JobCreated,
  JobDetail,
  JobPlan,
  JobRequest,
  type JobRequestInput,
  JobState,
  JobSummary,
  newJobId,
  NodeInfo,
  NodeResult,
  NodeState,
  NODE_OUTCOME,
  resolveCount,
  spendsErrorBudget,
  NOT_OK_STATES,
  resultGroupKey,
  RerunRequest,
  ResultGroup,
  Rollout,
  type RolloutInput,
} from './schema/job.ts'
export { classifyRisk, type Risk, type RiskClass } from './schema/risk.ts'
export { EVENT_KINDS, type EventKind, type EventOf, JobEvent, WireEvent, type WireEventOf } from './schema/event.ts'
export { Ack, Control, Heartbeat, HiveJob, HostReach, Task } from './schema/messages.ts'
export { VERSION } from './version.ts'
export {
  DAEMON_OPTIONS,
  type OptionSpec,
  type OptionTable,
  type OptionValues,
  optionsHelp,
  parseCommandAndGlobals,
  parseCommandLine,
  parseLabels,
  SSH_OPTIONS,
  SSH_POOL_OPTIONS,
  type SshPoolFlags,
  sshPoolOptionsFrom,
  withHelpPrefix,
} from './cli.ts'
export { type ProgramSpec, runProgram } from './program.ts'
export { closeOnSignals } from './process.ts'
export { Heartbeater } from './heartbeat.ts'
export {
  type Inventory,
  type InventoryNode,
  type InventoryOptions,
  loadInventory,
  MAX_INVENTORY_BYTES,
  MAX_INVENTORY_NODES,
  parseInventory,
} from './inventory/inventory.ts'
export { expandHostList, type HostList, type HostPattern, parseHostList, type RangeItem } from './inventory/range.ts'
export { type InventoryHandle, watchInventory } from './inventory/watch.ts'
export { finishedLine, notRunEvent, prefixLines } from './schema/narration.ts'
export { outputDigest } from './schema/digest.ts'
export { abortable } from './abort.ts'
