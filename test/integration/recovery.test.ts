import { defineRecoverySuite } from './recovery-suite.ts'

defineRecoverySuite('memory')
defineRecoverySuite('nats')
