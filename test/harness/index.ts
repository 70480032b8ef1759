export { freePort, type NatsServer, startNats } from './nats.ts'
export { type Proc, ROOT, runBin, startBin, waitForLine } from './process.ts'
export { type TempDir, tempDir } from './temp.ts'
export { alive, type BusKind, type ClusterOptions, TestCluster, waitUntil } from './cluster.ts'
