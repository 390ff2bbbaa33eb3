import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Context, type Span, type Tracer } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'

import type { ConsumedRecord, ProducedRecord } from '../kafka/port.js'
import { traceHeadersOf, type TraceHeaders } from './observer.js'

// Loaded only when an OTLP endpoint is configured (see tracing-switch.ts): with tracing off, no
// SDK module is even imported.

export interface SpanHandle {
  /** The span's own context, as headers for whatever it causes. */
  headers: TraceHeaders
  end(attributes?: Record<string, string | number | boolean>, error?: Error | string): void
}

export interface Tracing {
  /** A server span for an incoming request (POST /orders), child of the caller's context if any. */
  request(name: string, incoming: TraceHeaders | undefined, attributes: Record<string, string | number>): SpanHandle
  /** A client-side root span (a CLI command), or a child of `parent`. */
  start(name: string, parent?: TraceHeaders, attributes?: Record<string, string | number>): SpanHandle
  /** The span of one handled message (a consumer record or a due timer). */
  handling(record: ConsumedRecord | undefined, parent: TraceHeaders | undefined): SpanHandle
  /**
   * One send span per record that carries a trace context, all spanning the batch's send; each
   * record's traceparent is replaced by its send span's, so the consumer's span hangs below it.
   */
  sending(records: ProducedRecord[], partition: number | null): (error?: Error) => void
  shutdown(): Promise<void>
}

const propagator = new W3CTraceContextPropagator()

function contextOf(headers: TraceHeaders | undefined): Context {
  return headers ? propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter) : ROOT_CONTEXT
}

function headersOf(span: Span): TraceHeaders {
  const carrier: Record<string, string> = {}
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter)
  return traceHeadersOf(carrier) ?? {}
}

function handle(span: Span): SpanHandle {
  return {
    headers: headersOf(span),
    end(attributes, error) {
      if (attributes) span.setAttributes(attributes)
      if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: typeof error === 'string' ? error : error.message })
      span.end()
    },
  }
}

/**
 * Exports over OTLP http/json to OTEL_EXPORTER_OTLP_ENDPOINT (…/v1/traces appended) or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, batched (OTEL_BSP_* apply). The service is `sagactl-<role>`
 * unless OTEL_SERVICE_NAME says otherwise.
 */
export function startTracing(service: string, instance?: string): Tracing {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME || service, 'service.namespace': 'sagactl', 'service.instance.id': instance ?? `${process.pid}` }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })],
  })
  const tracer: Tracer = provider.getTracer('sagactl')
  return {
    request(name, incoming, attributes) {
      return handle(tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, contextOf(incoming)))
    },
    start(name, parent, attributes = {}) {
      return handle(tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, contextOf(parent)))
    },
    handling(record, parent) {
      const attributes = record
        ? { 'messaging.system': 'kafka', 'messaging.operation.type': 'process', 'messaging.destination.name': record.topic, 'messaging.destination.partition.id': String(record.partition), 'messaging.kafka.offset': Number(record.offset) }
        : { 'sagactl.source': 'timer' }
      const span = tracer.startSpan(record ? `process ${record.topic}` : 'process timer', { kind: SpanKind.CONSUMER, attributes }, contextOf(parent))
      const h = handle(span)
      return {
        headers: h.headers,
        end(attrs, error) {
          if (typeof attrs?.['sagactl.message_type'] === 'string') span.updateName(`process ${attrs['sagactl.message_type']}`)
          h.end(attrs, error)
        },
      }
    },
    sending(records, partition) {
      const spans: Span[] = []
      for (const record of records) {
        const parent = traceHeadersOf(record.headers)
        if (!parent) continue
        const type = messageTypeOf(record.value)
        const span = tracer.startSpan(`publish ${type ?? record.topic}`, {
          kind: SpanKind.PRODUCER,
          attributes: { 'messaging.system': 'kafka', 'messaging.operation.type': 'send', 'messaging.destination.name': record.topic, 'messaging.batch.message_count': records.length, ...(type ? { 'sagactl.message_type': type } : {}), ...(partition !== null ? { 'sagactl.input_partition': partition } : {}) },
        }, contextOf(parent))
        record.headers = { ...record.headers, ...headersOf(span) }
        spans.push(span)
      }
      return (error) => {
        for (const span of spans) {
          if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
          span.end()
        }
      }
    },
    shutdown: () => provider.shutdown(),
  }
}

/** The event or command type of an outbox row, read cheaply (the row is our own JSON). */
function messageTypeOf(value: ProducedRecord['value']): string | undefined {
  if (value === null) return undefined
  const text = typeof value === 'string' ? value : value.toString('utf8')
  const match = /^\{"(?:event_type|command_type)":"([^"]+)"/.exec(text)
  return match?.[1]
}
