import { defineRolloutSuite } from './rollout-suite.ts'

defineRolloutSuite('memory')
defineRolloutSuite('nats')
