/** What the api answers for GET /orders/{order_id}: its read model of one order, under ORDER_SCOPE. */
export const ORDER_SCOPE = 'order'

export type OrderStatus = 'pending' | 'completed' | 'cancelled'

export interface OrderView {
  order_id: string
  saga_id: string
  status: OrderStatus
  last_event: string
  reason?: string
  created_at: string
  updated_at: string
}
