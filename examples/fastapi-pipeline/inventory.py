"""The inventory service of the seed's pipeline: reserves goods, and releases a reservation.

sagactl calls POST /reserve_inventory and POST /cancel_reservation with an Idempotency-Key.
An item with sku "sold-out" cannot be reserved: 422, a decline the saga compensates.
"""
import os

from fastapi import FastAPI, Header, Request

from effects import Effects, add_listing, new_id

app = FastAPI(title="inventory")
effects = Effects(os.environ.get("DB", "inventory.db"))
add_listing(app, effects)


@app.post("/reserve_inventory")
async def reserve(request: Request, idempotency_key: str | None = Header(default=None)):
    def decide(body, calls):
        if any(item.get("sku") == "sold-out" for item in body.get("items", [])):
            return 422, {"detail": "out of stock"}, None
        reservation = new_id("res")
        return 200, {"reservation_id": reservation}, reservation

    return await effects.act(request, idempotency_key, "reserve", "reserved", decide)


@app.post("/cancel_reservation")
async def cancel(request: Request, idempotency_key: str | None = Header(default=None)):
    return await effects.undo(request, idempotency_key, "cancel", "reserve", "reservation_id")
