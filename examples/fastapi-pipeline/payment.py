"""The payment service of the seed's pipeline: charges an order, and refunds a charge.

sagactl calls POST /charge_payment and POST /refund_payment with an Idempotency-Key.
An amount of 13 is declined (422: compensated, not retried). An amount of 7 fails with a 500 on
the first two calls of its key, then works: the saga retries it.
"""
import os

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from effects import Effects, add_listing, new_id

app = FastAPI(title="payment")
effects = Effects(os.environ.get("DB", "payment.db"))
add_listing(app, effects)


@app.post("/charge_payment")
async def charge(request: Request, idempotency_key: str | None = Header(default=None)):
    def decide(body, calls):
        amount = body.get("amount")
        if amount == 13:
            return 422, {"detail": "card declined"}, None
        if amount == 7 and calls <= 2:
            return JSONResponse(status_code=500, content={"detail": "payment provider unavailable"})
        payment = new_id("pay")
        return 200, {"payment_id": payment, "amount": amount}, payment

    return await effects.act(request, idempotency_key, "charge", "charged", decide)


@app.post("/refund_payment")
async def refund(request: Request, idempotency_key: str | None = Header(default=None)):
    return await effects.undo(request, idempotency_key, "refund", "charge", "payment_id")
