import { silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { defineDurableSuite } from './durable-suite.ts'

defineDurableSuite('memory', async () => {
  const bus = createMemoryBus(silentLogger())
  // Every role of the embedded cluster shares one bus instance, so "another handle" is that instance.
  return { bus, other: async () => bus, teardown: () => bus.close() }
})
