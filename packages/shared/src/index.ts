/**
 * The wire contract of apiary: schemas and their types, subjects, errors, narration, the rules
 * every role applies alike (final and not-ok states, result groups, output digest, breaker
 * states, confirmation), and the `Bus` interface. Nothing here runs: the runtimes are
 * subpaths of their own, so a program loads only what it uses —
 * `@apiary/shared/runtime` (logger, flags, program lifecycle, heartbeats, secrets files),
 * `@apiary/shared/nats` and `@apiary/shared/memory-bus` (the two buses),
 * `@apiary/shared/client` (the job client and SSE), `@apiary/shared/inventory` (YAML/JSON
 * inventories and their watcher).
 *
 * @example
 * import { JobRequest, subjects } from '@apiary/shared'
 * const req = JobRequest.parse({ operation: { type: 'ping' }, targets: 'role=web' })
 */
export { ApiaryError, ERROR_CODES, type ErrorCode, errorMessage, invalidInput, isApiaryError, issuePath, parseOrThrow } from './errors.ts'
export { subjects } from './subjects.ts'
export type { Logger } from './runtime/log.ts'
export { type Bus, type BusHandler, type BusMessage, type BusSubscription, decode, type RequestOptions, subjectMatches } from './bus/bus.ts'
export {
  claimKey,
  CLAIM_MAX_BYTES,
  CLAIMS_BUCKET,
  CLAIMS_MAX_AGE_MS,
  type ClaimStore,
  type ConsumeOptions,
  type Durable,
  type DurableConfig,
  type DurablePublishOptions,
  LEASE_BUCKET,
  SECRETS_BUCKET,
  type SecretStore,
  type Lease,
  MAX_ACK_PENDING,
  type PublishReceipt,
  type ReadOptions,
  type Revisioned,
  STREAMS,
  type StreamMessage,
  type StreamName,
  type StreamReader,
} from './bus/durable.ts'
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
export {
  ExecOperationView,
  hasSecrets,
  joinSecrets,
  type OperationSecrets,
  OperationView,
  REDACTED,
  redactOperation,
  splitSecrets,
} from './schema/secrets.ts'
export { Glob, matchesSelector, parseSelector, type SelectableNode, type Selector, type SelectorTerm, SelectorText } from './schema/targets.ts'
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
  JobRequestView,
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
  Refusals,
  MAX_CAUSE,
  MAX_RESULT_CHARS,
  NodeRunResult,
  Rollout,
  type RolloutInput,
} from './schema/job.ts'
export type { Risk, RiskClass } from './schema/risk.ts'
export { EVENT_KINDS, type EventKind, type EventOf, JobEvent, MAX_HUMAN, MAX_OUTPUT_DATA, MAX_OUTPUT_HUMAN, WireEvent, type WireEventOf } from './schema/event.ts'
export {
  Ack,
  BODY_LIMITS,
  Control,
  type ControlOrder,
  Grant,
  Heartbeat,
  HiveJob,
  type HiveJobInput,
  HostReach,
  MAX_CHUNK_NODES,
  MAX_CHUNKS,
  MAX_SHARE_NODES,
  ShareChunk,
  ShareOffer,
  Task,
} from './schema/messages.ts'
export { fromSubjectToken, parseSubject, type Role, subjectToken } from './subjects.ts'
export { type BusPermissions, type Identity, permissionsFor } from './trust/identity.ts'
export { canonicalJson, createSigner, createVerifier, digestOf, generateSigningKey, parsePublicKey, type Signer, type Verifier } from './trust/signing.ts'
export { leafHash, merkleTree, verifyProof } from './trust/merkle.ts'
export { assembleShare, type CheckedShare, CONTROL_TTL_MS, controlRefusal, signControl, signShare, type TaskCheck, taskRefusal } from './trust/work.ts'
export { VERSION } from './version.ts'
export { clip, finishedLine, notRunEvent, prefixLines, startedEvent, unfoldStart } from './schema/narration.ts'
export { outputDigest } from './schema/digest.ts'
export {
  AccessVerdict,
  AddUserRequest,
  AUDIT_GENESIS,
  AUDIT_KINDS,
  AuditHead,
  AuditKind,
  AuditPage,
  AuditRecord,
  BUILTIN_ROLES,
  IssuedToken,
  MAX_AUDIT_PAGE,
  MAX_ROLES,
  MAX_USER_ROLES,
  MAX_USERS,
  OPERATION_TYPES,
  OperationType,
  RoleName,
  RoleSpec,
  TokenHash,
  UserInfo,
  UserName,
  UsersFile,
  UserSpec,
} from './schema/access.ts'
export {
  type Access,
  type Answer,
  API_INPUTS,
  API_OUTPUTS,
  API_ROUTES,
  AuditQuery,
  CancelAnswer,
  ErrorBody,
  Health,
  IDEMPOTENCY_HEADER,
  IdempotencyKey,
  JobList,
  ListQuery,
  LogsPage,
  LogsQuery,
  MAX_JOBS_PAGE,
  NodeList,
  OutputChunk,
  Readiness,
  Revoked,
  type RouteKey,
  type RouteSpec,
  SignedIn,
  SignIn,
  StreamQuery,
  UserList,
} from './schema/api.ts'
export { againstHead, auditHash, type ChainBreak, type ChainVerdict, ChainVerifier, describeVerdict } from './trust/audit-chain.ts'
