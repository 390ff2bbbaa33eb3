import { readFileSync } from 'node:fs'

import { Parser } from '@asyncapi/parser'
import { describe, expect, it } from 'vitest'

import { COMMAND_TYPES, EVENT_TYPES, orderSaga, TOPICS } from '../../src/order-saga/saga.js'
import { asyncApiDocument, asyncApiYaml } from '../../src/ops/asyncapi.js'
import { CANCEL_ACCEPTED, CANCEL_IGNORED, CONTROL_ANSWERS, PAUSE_ACCEPTED, PAUSE_IGNORED, RESUME_IGNORED, RETRY_ACCEPTED, RETRY_REFUSED } from '../../src/saga/decide.js'
import { threeStepSaga } from '../saga/three-step-saga.js'

const root = new URL('../../', import.meta.url)
const version = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }).version
const committed = readFileSync(new URL('docs/asyncapi.yaml', root), 'utf8')

describe('docs/asyncapi.yaml', () => {
  it('is exactly what the generator makes from the code now (regenerate: sagactl docs asyncapi --out docs/asyncapi.yaml)', () => {
    expect(committed).toBe(asyncApiYaml(version))
  })

  it('is a valid AsyncAPI 3 document: the parser reports no error, warning or hint', async () => {
    const { document, diagnostics } = await new Parser().parse(committed)
    expect(diagnostics.map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`)).toEqual([])
    expect(document?.version()).toMatch(/^3\./)
    expect(document!.channels().all().map((c) => c.address()).sort()).toEqual([TOPICS.control.name, TOPICS.dlq.name, TOPICS.inventoryCommands.name, TOPICS.orderEvents.name, TOPICS.paymentCommands.name].sort())
    const names = new Set(document!.allMessages().all().map((m) => m.name()))
    for (const type of [...EVENT_TYPES, ...COMMAND_TYPES, ...CONTROL_ANSWERS]) expect(names, type).toContain(type)
  })

  it("puts the orchestrator's answers to requests on sagactl.control, sent by the orchestrator, each with the payload it sends", () => {
    const doc = asyncApiDocument(version) as { channels: Record<string, { address: string; messages: Record<string, unknown> }>; components: { messages: Record<string, { 'x-sender': string; payload: { properties: { payload: { properties: Record<string, unknown> } } } }> } }
    expect(doc.channels.control!.address).toBe('sagactl.control')
    expect(Object.keys(doc.channels.control!.messages).sort()).toEqual([...CONTROL_ANSWERS].sort())
    for (const type of CONTROL_ANSWERS) {
      expect(Object.keys(doc.channels.orderEvents!.messages)).not.toContain(type)
      expect(doc.components.messages[type]!['x-sender']).toBe('orchestrator')
      expect(Object.keys(doc.components.messages[type]!.payload.properties.payload.properties)).toEqual(expect.arrayContaining(['status', 'step', 'attempt']))
    }
    const fields = (type: string) => Object.keys(doc.components.messages[type]!.payload.properties.payload.properties)
    expect(fields(RETRY_ACCEPTED)).toContain('attempts')
    for (const type of [RETRY_REFUSED, CANCEL_ACCEPTED, CANCEL_IGNORED, PAUSE_ACCEPTED, PAUSE_IGNORED, RESUME_IGNORED]) expect(fields(type), type).toContain('reason')
  })

  it('puts each command on the topic its saga step names', () => {
    const channels = asyncApiDocument(version).channels as Record<string, { messages: Record<string, unknown> }>
    for (const step of orderSaga.steps) {
      expect(Object.keys(channels[step.command.topic]!.messages)).toContain(step.command.type)
      expect(Object.keys(channels[step.compensation!.topic]!.messages)).toContain(step.compensation!.type)
      expect(Object.keys(channels.orderEvents!.messages)).toEqual(expect.arrayContaining([step.succeeded, step.failed, step.compensation!.confirmed]))
    }
  })
})

describe('the AsyncAPI document of another saga', () => {
  it('given the three-step saga, then its ship step has its channel, its messages and its receiver', () => {
    const doc = asyncApiDocument('0.0.0', threeStepSaga) as { channels: Record<string, { address: string; messages: Record<string, unknown> }>; components: { messages: Record<string, { 'x-receivers': string[] }> } }
    expect(doc.channels.shippingCommands?.address).toBe('shipping.commands')
    expect(Object.keys(doc.channels.shippingCommands!.messages)).toEqual(['ship_order', 'cancel_shipment', 'set_chaos.shipping'])
    expect(doc.components.messages.ship_order!['x-receivers']).toEqual(['shipping'])
    expect(Object.keys(doc.channels.orderEvents!.messages)).toContain('shipping.shipped')
  })
})
