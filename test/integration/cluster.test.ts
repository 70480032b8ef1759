import { defineClusterSuite } from './cluster-suite.ts'

defineClusterSuite('memory')
defineClusterSuite('nats')
