"""The inventory service of the seed's pipeline: reserves goods, and releases a reservation.

sagactl calls POST /reserve_inventory and POST /cancel_reservation with an Idempotency-Key.
An item with sku "sold-out" cannot be reserved: 422, a decline the saga compensates.
"""
import os

from fastapi import FastAPI, Header, Request

from effects import Effects, add_listing, body_of, new_id, require_key

app = FastAPI(title="inventory")
effects = Effects(os.environ.get("DB", "inventory.db"))
add_listing(app, effects)


@app.post("/reserve_inventory")
async def reserve(request: Request, idempotency_key: str | None = Header(default=None)):
    key = require_key(idempotency_key)
    body = await body_of(request)
    effects.call(key, "reserve", body["order_id"], body.get("attempt", 1))
    earlier = effects.answered(key)
    if earlier is not None:
        return earlier
    if effects.was_undone_first(body["order_id"]):
        return effects.answer(key, "reserve", body["order_id"], 409, {"detail": "cancelled before it was reserved: not carried out"})
    if any(item.get("sku") == "sold-out" for item in body.get("items", [])):
        return effects.answer(key, "reserve", body["order_id"], 422, {"detail": "out of stock"})
    reservation = new_id("res")
    return effects.answer(key, "reserve", body["order_id"], 200, {"reservation_id": reservation}, reservation)


@app.post("/cancel_reservation")
async def cancel(request: Request, idempotency_key: str | None = Header(default=None)):
    key = require_key(idempotency_key)
    body = await body_of(request)
    effects.call(key, "cancel", body["order_id"], body.get("attempt", 1))
    earlier = effects.answered(key)
    if earlier is not None:
        return earlier
    if not effects.done("reserve", body["order_id"]):
        effects.undo_first(body["order_id"])
        return effects.answer(key, "cancel", body["order_id"], 200, {"reservation_id": None, "note": "nothing to undo"})
    return effects.answer(key, "cancel", body["order_id"], 200, {"cancelled": body.get("reservation_id")}, body.get("reservation_id"))
