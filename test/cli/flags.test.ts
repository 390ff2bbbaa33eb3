import { Errors } from '@oclif/core'
import { UserError } from '@platformatic/kafka'
import { describe, expect, it } from 'vitest'

import { explainMissingTopic, missingTopicMessage, sagaFrom, sagaModule, unknownRoleMessage } from '../../src/cli/flags.js'
import { orderSaga } from '../../src/order-saga/saga.js'
import { roleNames } from '../../src/saga/derive.js'
import { topicTable } from '../../src/topics.js'

const at = { brokers: ['127.0.0.1:9092'], topicPrefix: '', stepTopics: ['inventory.commands', 'payment.commands'] }

describe('a forgotten --saga: the sentence says the default saga was read, and how to name yours', () => {
  it("given the default saga, when one of its step topics is missing, then the sentence names the topic, the default saga and --saga <module>", () => {
    const message = missingTopicMessage('inventory.commands', { ...at, module: undefined })

    expect(message).toBe(
      'No topic inventory.commands on the broker at 127.0.0.1:9092: it is a topic of the default saga (the order saga), read because neither --saga nor SAGA_DEFINITION_MODULE names another; if your system runs a saga of its own, pass --saga <module> (the module `sagactl dev --saga` runs), else check --brokers and SAGA_TOPIC_PREFIX="".',
    )
    // One sentence: a user reads one line, not a stack of client codes.
    expect(message.match(/\.( |$)/g)).toHaveLength(1)
    expect(message).not.toContain('PLT_KFK')
  })

  it('given a saga module, when its step topic is missing, then the sentence names the module, not the default saga', () => {
    const message = missingTopicMessage('p.cards.commands', { ...at, topicPrefix: 'p.', stepTopics: ['p.cards.commands'], module: '/srv/cards/dist/saga.js' })

    expect(message).toContain('the saga in /srv/cards/dist/saga.js uses it')
    expect(message).toContain('SAGA_TOPIC_PREFIX="p."')
    expect(message).not.toContain('default saga')
  })

  it('given a topic every saga has (a changelog), when missing, then the sentence blames no saga: nothing has run with this prefix', () => {
    const message = missingTopicMessage('x.sagactl.orchestrator.changelog', { ...at, topicPrefix: 'x.', module: undefined })

    expect(message).toBe('No topic x.sagactl.orchestrator.changelog on the broker at 127.0.0.1:9092: no role has run there with SAGA_TOPIC_PREFIX="x."; check --brokers and SAGA_TOPIC_PREFIX.')
  })

  it("given the client's own unknown-topic error, when explained, then it is a CLI error with exit 1 and the sentence; any other error is left as it was", () => {
    const saved = process.env.SAGA_DEFINITION_MODULE
    delete process.env.SAGA_DEFINITION_MODULE
    try {
      const explained = explainMissingTopic(new UserError('Unknown topic inventory.commands.'), { brokers: ['b:9092'], topicPrefix: '' }, orderSaga)
      expect(explained).toBeInstanceOf(Errors.CLIError)
      expect((explained as Errors.CLIError).oclif.exit).toBe(1)
      expect((explained as Error).message).toMatch(/^No topic inventory\.commands on the broker at b:9092: it is a topic of the default saga .* pass --saga <module>/)

      const other = new Error('Producing messages failed.')
      expect(explainMissingTopic(other, { brokers: ['b:9092'], topicPrefix: '' }, orderSaga)).toBe(other)
    } finally {
      if (saved !== undefined) process.env.SAGA_DEFINITION_MODULE = saved
    }
  })

  it('given no module in the environment, then the saga is the default one; given one, that module', () => {
    expect(sagaModule({})).toBeUndefined()
    expect(sagaModule({ SAGA_DEFINITION_MODULE: '' })).toBeUndefined()
    expect(sagaModule({ SAGA_DEFINITION_MODULE: '/srv/cards/dist/saga.js' })).toBe('/srv/cards/dist/saga.js')
  })

  it("given the default saga, when a role it does not have is started, then the roles listed are said to be the order saga's, and --saga is suggested", () => {
    const message = unknownRoleMessage('cards', roleNames(orderSaga), undefined)

    expect(message).toBe(
      'Expected the role to be one of: api, orchestrator, inventory, payment, notifier, participant (got "cards"): those are the roles of the default saga (the order saga); if "cards" is a role of your saga, pass --saga <module>.',
    )
  })

  it('given a saga module, when a role it does not have is started, then the roles are said to be that module’s, with no --saga advice', () => {
    const message = unknownRoleMessage('cards', ['api', 'orchestrator', 'shipping', 'notifier'], '/srv/s.js')

    expect(message).toBe('Expected the role to be one of: api, orchestrator, shipping, notifier, participant (got "cards"): the roles of the saga in /srv/s.js.')
  })
})

describe('the saga a command runs carries SAGA_PARTITIONS', () => {
  const withEnv = async <T>(env: Record<string, string>, run: () => Promise<T>): Promise<T> => {
    const saved = { ...process.env }
    delete process.env.SAGA_DEFINITION_MODULE
    Object.assign(process.env, env)
    try {
      return await run()
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key]
      Object.assign(process.env, saved)
    }
  }

  it('given SAGA_PARTITIONS, when the saga is loaded, then its topics have those counts', async () => {
    const saga = await withEnv({ SAGA_PARTITIONS: 'order.events=16,payment.commands=8' }, () => sagaFrom({}))

    expect(topicTable(saga).orderEvents.partitions).toBe(16)
    expect(topicTable(saga).paymentCommands.partitions).toBe(8)
    expect(topicTable(saga).inventoryCommands.partitions).toBe(4)
  })

  it.each([
    ['order.events=lots', /^SAGA_PARTITIONS must be topic=count pairs/],
    ['orders=16', /^SAGA_PARTITIONS names orders, not a topic whose partitions can be set/],
  ])('given SAGA_PARTITIONS=%s, when the saga is loaded, then the command ends with exit 2 and the sentence', async (raw, sentence) => {
    const refused = await withEnv({ SAGA_PARTITIONS: raw }, () => sagaFrom({}).then(() => undefined, (error: unknown) => error))

    expect(refused).toBeInstanceOf(Errors.CLIError)
    expect((refused as Errors.CLIError).oclif.exit).toBe(2)
    expect((refused as Error).message).toMatch(sentence)
  })
})
