import { z } from 'zod'

/** A node id: a host name or any short name; dots allowed (escaped in subjects). */
export const NodeId = z
  .string()
  .min(1, 'must not be empty')
  .max(253, 'must be at most 253 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/, "must start with a letter or digit and hold only letters, digits, '.', '_', ':', '@' or '-'")

export const Region = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, "must hold only letters, digits, '_' or '-'")

export const JobId = z.string().regex(/^j[0-9a-z]{6,40}$/, 'is not a job id')

export const LabelKey = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_./-]*$/, "must hold only letters, digits, '.', '_', '/' or '-'")
export const LabelValue = z.string().max(253).regex(/^[A-Za-z0-9_.:/@-]*$/, "must hold only letters, digits, '.', '_', ':', '/', '@' or '-'")
/** The most labels a node may carry: a heartbeat holds them all, every few seconds. */
export const MAX_LABELS = 64
export const Labels = z
  .record(LabelKey, LabelValue)
  .refine((l) => Object.keys(l).length <= MAX_LABELS, `must hold at most ${MAX_LABELS} labels`)
export type Labels = z.infer<typeof Labels>
