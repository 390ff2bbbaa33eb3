"""What both services share: effects kept in SQLite, keyed by the Idempotency-Key sagactl sends.

A key seen before gets the first answer again, so a retried or duplicated command has one effect.
"""
import json
import sqlite3
import threading
import uuid

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse


class Effects:
    def __init__(self, path: str):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, kind TEXT, order_id TEXT, effect_id TEXT, status INTEGER, body TEXT)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT, kind TEXT, order_id TEXT, attempt INTEGER)")
        # Orders whose undo came before their act: the act, if it comes late, is not carried out.
        self.db.execute("CREATE TABLE IF NOT EXISTS undone_first (order_id TEXT PRIMARY KEY)")
        self.lock = threading.Lock()

    def call(self, key: str, kind: str, order_id: str, attempt: int) -> int:
        """Records the call; returns how many calls this key has had, this one included."""
        with self.lock:
            self.db.execute("INSERT INTO calls VALUES (?, ?, ?, ?)", (key, kind, order_id, attempt))
            return self.db.execute("SELECT COUNT(*) FROM calls WHERE key = ?", (key,)).fetchone()[0]

    def answered(self, key: str):
        row = self.db.execute("SELECT status, body FROM effects WHERE key = ?", (key,)).fetchone()
        return None if row is None else JSONResponse(status_code=row[0], content=json.loads(row[1]))

    def answer(self, key: str, kind: str, order_id: str, status: int, body: dict, effect_id: str | None = None):
        with self.lock:
            self.db.execute(
                "INSERT OR IGNORE INTO effects VALUES (?, ?, ?, ?, ?, ?)",
                (key, kind, order_id, effect_id, status, json.dumps(body)),
            )
        return self.answered(key)

    def done(self, kind: str, order_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM effects WHERE kind = ? AND order_id = ? AND status = 200", (kind, order_id)).fetchone() is not None

    def undo_first(self, order_id: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR IGNORE INTO undone_first VALUES (?)", (order_id,))

    def was_undone_first(self, order_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM undone_first WHERE order_id = ?", (order_id,)).fetchone() is not None

    async def act(self, request: Request, idempotency_key: str | None, kind: str, done: str, decide):
        """The act of a step, once per key: `decide(body, calls)` answers (status, body, effect id),
        or a response that is not kept (a transient failure, answered afresh when the key comes again)."""
        key = require_key(idempotency_key)
        body = await body_of(request)
        calls = self.call(key, kind, body["order_id"], body.get("attempt", 1))
        earlier = self.answered(key)
        if earlier is not None:
            return earlier
        if self.was_undone_first(body["order_id"]):
            return self.answer(key, kind, body["order_id"], 409, {"detail": f"cancelled before it was {done}: not carried out"})
        decided = decide(body, calls)
        if isinstance(decided, JSONResponse):
            return decided
        status, answer, effect_id = decided
        return self.answer(key, kind, body["order_id"], status, answer, effect_id)

    async def undo(self, request: Request, idempotency_key: str | None, kind: str, act_kind: str, effect_field: str):
        """The undo of a step, once per key; an undo that comes first is remembered, so its act is not carried out."""
        key = require_key(idempotency_key)
        body = await body_of(request)
        self.call(key, kind, body["order_id"], body.get("attempt", 1))
        earlier = self.answered(key)
        if earlier is not None:
            return earlier
        if not self.done(act_kind, body["order_id"]):
            self.undo_first(body["order_id"])
            return self.answer(key, kind, body["order_id"], 200, {effect_field: None, "note": "nothing to undo"})
        return self.answer(key, kind, body["order_id"], 200, {"undone": body.get(effect_field)}, body.get(effect_field))

    def listing(self):
        rows = self.db.execute("SELECT key, kind, order_id, effect_id, status FROM effects ORDER BY rowid").fetchall()
        calls = self.db.execute("SELECT key, kind, order_id, attempt FROM calls ORDER BY rowid").fetchall()
        return {
            "effects": [dict(zip(["key", "kind", "order_id", "effect_id", "status"], r)) for r in rows],
            "calls": [dict(zip(["key", "kind", "order_id", "attempt"], r)) for r in calls],
        }


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def require_key(idempotency_key: str | None) -> str:
    if not idempotency_key:
        raise HTTPException(status_code=400, detail="Idempotency-Key header is required")
    return idempotency_key


async def body_of(request: Request) -> dict:
    """A body that is not a JSON object is the caller's mistake (400), never a crash."""
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(status_code=400, detail="the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("order_id"), str):
        raise HTTPException(status_code=400, detail="the body must be a JSON object with order_id")
    return body


def add_listing(app: FastAPI, effects: Effects) -> None:
    @app.get("/effects")
    def listing():
        return effects.listing()

    @app.get("/health")
    def health():
        return {"ok": True, "service": app.title}


__all__ = ["Effects", "new_id", "require_key", "add_listing", "body_of", "Header", "Request"]
