import { z } from 'zod'
import { JobId, Labels, NodeId, Region } from './ids.ts'
import { BreakerState } from './job.ts'
import { Operation } from './operation.ts'

/**
 * queen → hive on `apiary.hive.<region>.jobs`: one region's share of one phase of a job
 * (phase 0 is the canary when there is one). Counts are resolved: no percentages here.
 */
export const HiveJob = z.object({
  jobId: JobId,
  phase: z.number().int().min(0),
  region: Region,
  nodes: z.array(NodeId),
  /** The nodes of `nodes` reached over SSH by the region's SSH workers, not by an agent. */
  agentless: z.array(NodeId).default([]),
  operation: Operation,
  concurrency: z.number().int().min(1),
  /** Not-ok nodes (of the whole job) at which dispatching stops; null for no budget. */
  maxErrors: z.number().int().min(1).nullable(),
  /** Not-ok nodes of the job so far, when this share was sent. */
  errorsSoFar: z.number().int().min(0),
  timeoutMs: z.number().int().min(1),
  deliveryTimeoutMs: z.number().int().min(1),
  outputCapBytes: z.number().int(),
})
export type HiveJob = z.infer<typeof HiveJob>

/** The reply to a request: the receiver took it, or says why not. */
export const Ack = z.object({ accepted: z.boolean(), by: z.string(), reason: z.string().optional() })
export type Ack = z.infer<typeof Ack>

/** hive → worker on `apiary.node.<id>.tasks`: run one operation on one node. */
export const Task = z.object({
  jobId: JobId,
  node: NodeId,
  operation: Operation,
  timeoutMs: z.number().int().min(1),
  outputCapBytes: z.number().int().min(1),
})
export type Task = z.infer<typeof Task>

/**
 * queen → hives, workers on `apiary.control.<jobId>`. `halt` stops dispatching (what runs
 * finishes); `cancel` also stops what runs, which then ends as `outcome`.
 */
export const Control = z.object({
  jobId: JobId,
  action: z.enum(['halt', 'cancel']),
  reason: z.string(),
  outcome: z.enum(['cancelled', 'timeout']).default('cancelled'),
})
export type Control = z.infer<typeof Control>

/** What an SSH worker knows of one host it reaches: its last contact and its circuit breaker. */
export const HostReach = z.object({
  id: NodeId,
  lastContact: z.number().nullable(),
  breaker: BreakerState,
  consecutiveFailures: z.number().int().min(0),
})
export type HostReach = z.infer<typeof HostReach>

/**
 * workers, hives → queen on `apiary.hb.<role>.<id>`. An agent worker (`worker`) is a node;
 * an `ssh-worker` reaches a region's inventory nodes and reports what it knows of them.
 */
export const Heartbeat = z.object({
  id: NodeId,
  role: z.enum(['worker', 'hive', 'ssh-worker']),
  region: Region,
  labels: Labels,
  executor: z.string().default('local'),
  status: z.enum(['healthy', 'degraded']),
  running: z.number().int().min(0),
  version: z.string(),
  intervalMs: z.number().int().min(1),
  ts: z.number(),
  /** ssh-worker only: hosts whose reachability changed since its previous heartbeat. */
  hosts: z.array(HostReach).max(100_000).optional(),
})
export type Heartbeat = z.infer<typeof Heartbeat>
