export {
  type Embedded,
  type EmbeddedOptions,
  type EmbeddedQueenOptions,
  type HiveSpec,
  type RoleDefaults,
  type SshWorkerSpec,
  startEmbedded,
  type WorkerSpec,
} from './embedded.ts'
export { type BusFactory, memoryBuses } from './embedded/buses.ts'
export { natsBuses } from './embedded/nats-buses.ts'
