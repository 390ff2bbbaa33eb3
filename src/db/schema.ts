import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

// Mirrors migrations/*.sql, which are the source of truth for the database's shape.

export const processedMessages = sqliteTable('processed_messages', {
  messageId: text('message_id').primaryKey(),
  processedAt: integer('processed_at').notNull(),
})

export const outbox = sqliteTable('outbox', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  topic: text('topic').notNull(),
  key: text('msg_key').notNull(),
  value: text('value').notNull(),
  headers: text('headers'),
  createdAt: integer('created_at').notNull(),
  sentAt: integer('sent_at'),
})

export const state = sqliteTable(
  'state',
  {
    scope: text('scope').notNull(),
    key: text('key').notNull(),
    value: text('value').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] })],
)

export const timers = sqliteTable('timers', {
  key: text('key').primaryKey(),
  dueAt: integer('due_at').notNull(),
  input: text('input').notNull(),
})

export const journal = sqliteTable(
  'journal',
  {
    messageId: text('message_id').primaryKey(),
    orderId: text('order_id').notNull(),
    sagaId: text('saga_id').notNull(),
    direction: text('direction', { enum: ['in', 'out', 'timer'] }).notNull(),
    topic: text('topic').notNull(),
    type: text('type').notNull(),
    attempt: integer('attempt'),
    at: integer('at').notNull(),
    envelope: text('envelope').notNull(),
  },
  (t) => [index('journal_order').on(t.orderId, t.at), index('journal_saga').on(t.sagaId, t.at)],
)
