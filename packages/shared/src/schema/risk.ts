export type RiskClass = 'safe' | 'destructive'

/**
 * How dangerous an operation is to run on many nodes at once. Destructive operations need a
 * confirmation of the exact node count; `classifyRisk` (`@apiary/shared/risk`) decides.
 */
export interface Risk {
  class: RiskClass
  /** Why, in words an operator recognises: "recursive delete of a broad path", "shutdown or reboot". */
  reasons: string[]
}
