"""The payment service of the seed's pipeline: charges an order, and refunds a charge.

sagactl calls POST /charge_payment and POST /refund_payment with an Idempotency-Key.
An amount of 13 is declined (422: compensated, not retried). An amount of 7 fails with a 500 on
the first two calls of its key, then works: the saga retries it.
"""
import os

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from effects import Effects, add_listing, body_of, new_id, require_key

app = FastAPI(title="payment")
effects = Effects(os.environ.get("DB", "payment.db"))
add_listing(app, effects)


@app.post("/charge_payment")
async def charge(request: Request, idempotency_key: str | None = Header(default=None)):
    key = require_key(idempotency_key)
    body = await body_of(request)
    calls = effects.call(key, "charge", body["order_id"], body.get("attempt", 1))
    earlier = effects.answered(key)
    if earlier is not None:
        return earlier
    if effects.was_undone_first(body["order_id"]):
        return effects.answer(key, "charge", body["order_id"], 409, {"detail": "cancelled before it was charged: not carried out"})
    amount = body.get("amount")
    if amount == 13:
        return effects.answer(key, "charge", body["order_id"], 422, {"detail": "card declined"})
    if amount == 7 and calls <= 2:
        return JSONResponse(status_code=500, content={"detail": "payment provider unavailable"})
    payment = new_id("pay")
    return effects.answer(key, "charge", body["order_id"], 200, {"payment_id": payment, "amount": amount}, payment)


@app.post("/refund_payment")
async def refund(request: Request, idempotency_key: str | None = Header(default=None)):
    key = require_key(idempotency_key)
    body = await body_of(request)
    effects.call(key, "refund", body["order_id"], body.get("attempt", 1))
    earlier = effects.answered(key)
    if earlier is not None:
        return earlier
    if not effects.done("charge", body["order_id"]):
        effects.undo_first(body["order_id"])
        return effects.answer(key, "refund", body["order_id"], 200, {"payment_id": None, "note": "nothing to undo"})
    return effects.answer(key, "refund", body["order_id"], 200, {"refunded": body.get("payment_id")}, body.get("payment_id"))
