import type { ErrorCode } from '@apiary/shared'

export const STATUS: Record<ErrorCode, 400 | 401 | 403 | 404 | 409 | 428 | 500 | 502 | 503 | 504> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  confirmation_required: 428,
  unavailable: 503,
  not_leader: 503,
  no_responders: 503,
  timeout: 504,
  unreachable: 502,
  closed: 503,
  internal: 500,
}

export function errorBody(code: ErrorCode, message: string, field?: string, details?: Record<string, unknown>) {
  return { error: { code, message, ...(field ? { field } : {}), ...(details ? { details } : {}) } }
}
