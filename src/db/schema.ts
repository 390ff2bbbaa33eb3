import { integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core'

// Mirrors migrations/*.sql, which are the source of truth for the database's shape.

export const processedMessages = sqliteTable('processed_messages', {
  messageId: text('message_id').primaryKey(),
  processedAt: integer('processed_at').notNull(),
  /** The changelog key its id list travels under (the order id, or a record position). */
  seenKey: text('seen_key'),
  part: integer('part'),
})

export const outbox = sqliteTable('outbox', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  topic: text('topic').notNull(),
  key: text('msg_key').notNull(),
  value: text('value'),
  headers: text('headers'),
  createdAt: integer('created_at').notNull(),
  sentAt: integer('sent_at'),
  part: integer('part'),
  destPartition: integer('dest_partition'),
  unit: integer('unit').notNull(),
})

export const state = sqliteTable(
  'state',
  {
    scope: text('scope').notNull(),
    key: text('key').notNull(),
    value: text('value').notNull(),
    updatedAt: integer('updated_at').notNull(),
    part: integer('part'),
  },
  (t) => [primaryKey({ columns: [t.scope, t.key] })],
)

export const timers = sqliteTable('timers', {
  key: text('key').primaryKey(),
  dueAt: integer('due_at').notNull(),
  input: text('input').notNull(),
  part: integer('part'),
})

export const positions = sqliteTable(
  'positions',
  {
    topic: text('topic').notNull(),
    part: integer('part').notNull(),
    nextOffset: text('next_offset').notNull(),
  },
  (t) => [primaryKey({ columns: [t.topic, t.part] })],
)
