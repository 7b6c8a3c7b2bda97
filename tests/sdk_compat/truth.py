"""Observe states nothing wrong as fact — checked with the official SDK.

SDK programs make agents, delegate (agent.delegate signs with the
registration token), renew and release (agent.renew / agent.release), renew
a delegated token and delegate with it over raw HTTP, present revoked and
released tokens, and revoke at all four levels (admin, raw HTTP). Every
token the broker answered with is kept. Then `chainview observe --print json`
rebuilds it from the audit trail, and each node is checked against those
JWTs: whatever it does not mark as inferred must be true.

Reads AGENTWRIT_BROKER_URL, AGENTWRIT_CLIENT_ID, AGENTWRIT_CLIENT_SECRET and
AGENTWRIT_ADMIN_SECRET (as `chainview broker` prints them); argv[1] is the
chainview binary. Prints 'N passed, N failed' at the end.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import httpx
from agentwrit import AgentWritApp

URL = os.environ["AGENTWRIT_BROKER_URL"]
results: list[tuple[str, bool]] = []


def check(what: str, ok: bool, got: object = "") -> None:
    results.append((what, bool(ok)))
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f"  ({got})"))


def claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


class Book:
    """Every token the programs received, with how they got it and how it ended."""

    def __init__(self) -> None:
        self.tokens: list[dict] = []

    def add(self, raw: str, src: int | None = None, renewal: bool = False) -> int:
        c = claims(raw)
        self.tokens.append({
            "raw": raw, "jti": c["jti"], "sub": c["sub"], "scope": sorted(c["scope"]),
            "depth": len(c.get("delegation_chain") or []), "chain_hash": c.get("chain_hash", ""),
            "from": src, "renewal": renewal, "fate": None,
        })
        return len(self.tokens) - 1

    def end(self, i: int, how: str) -> None:
        if self.tokens[i]["fate"] is None:
            self.tokens[i]["fate"] = how


def post(path: str, token: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{URL}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def main() -> int:
    chainview = sys.argv[1]
    app = AgentWritApp(broker_url=URL, client_id=os.environ["AGENTWRIT_CLIENT_ID"],
                       client_secret=os.environ["AGENTWRIT_CLIENT_SECRET"])
    admin = httpx.post(f"{URL}/v1/admin/auth", json={"secret": os.environ["AGENTWRIT_ADMIN_SECRET"]},
                       timeout=10).json()["access_token"]
    scope = ["read:deploy:*", "write:deploy:*"]
    a = app.create_agent(orch_id="truth", task_id="task-a", requested_scope=scope)
    b = app.create_agent(orch_id="truth", task_id="task-b", requested_scope=scope)
    c = app.create_agent(orch_id="truth", task_id="task-c", requested_scope=["read:deploy:*"])
    d = app.create_agent(orch_id="truth", task_id="task-d", requested_scope=scope)
    e = app.create_agent(orch_id="truth", task_id="task-a", requested_scope=scope)  # shares a's task
    book = Book()
    ta, tb, tc, td, te = (book.add(x.access_token) for x in (a, b, c, d, e))

    # a → b with the SDK; b renews that delegated token (raw) and delegates with it to c.
    ab_raw = a.delegate(delegate_to=b.agent_id, scope=["write:deploy:web"], ttl=900).access_token
    ab = book.add(ab_raw, ta)
    r = post("/v1/token/renew", ab_raw)
    check("a delegated token renews", r.status_code == 200, r.text)
    ab2 = book.add(r.json()["access_token"], ab, renewal=True)
    book.end(ab, "renewed")
    r = post("/v1/delegate", book.tokens[ab2]["raw"],
             {"delegate_to": c.agent_id, "scope": ["write:deploy:web"], "ttl": 900})
    check("delegation with the renewed hop", r.status_code == 200, r.text)
    abc = book.add(r.json()["access_token"], ab2)
    # A widening refused, attempted with the renewed hop.
    r = post("/v1/delegate", book.tokens[ab2]["raw"], {"delegate_to": c.agent_id, "scope": ["write:deploy:*"]})
    check("a widening is refused", r.status_code == 403, r.text)
    # b delegates with the SDK (registration token): a new chain rooted at b.
    bd = book.add(b.delegate(delegate_to=d.agent_id, scope=["read:deploy:web"], ttl=900).access_token, tb)
    # e (same task as a) renews with the SDK, then delegates.
    e.renew()
    te2 = book.add(e.access_token, te, renewal=True)
    book.end(te, "renewed")
    eb = book.add(e.delegate(delegate_to=b.agent_id, scope=["read:deploy:*"], ttl=900).access_token, te2)
    # Renew then release (SDK).
    a.renew()
    ta2 = book.add(a.access_token, ta, renewal=True)
    book.end(ta, "renewed")
    a.release()
    book.end(ta2, "released")
    # The released token presented again: refused.
    r = post("/v1/delegate", book.tokens[ta2]["raw"], {"delegate_to": b.agent_id, "scope": ["read:deploy:x"]})
    check("a released token is refused", r.status_code == 401, r.text)

    def revoke(level: str, target: str) -> None:
        r = post("/v1/revoke", admin, {"level": level, "target": target})
        check(f"revoke {level}", r.status_code == 200, r.text)

    revoke("token", book.tokens[abc]["jti"])  # a jti the trail never carried
    book.end(abc, "revoked")
    r = post("/v1/delegate", book.tokens[abc]["raw"], {"delegate_to": d.agent_id, "scope": ["write:deploy:web"]})
    check("a revoked token is refused", r.status_code == 401, r.text)
    revoke("agent", d.agent_id)  # d's own token and bd (held by d)
    for i in (td, bd):
        book.end(i, "revoked")
    revoke("task", "task-c")  # c's own token (abc carries task-a)
    book.end(tc, "revoked")
    revoke("chain", e.agent_id)  # eb; e's own tokens are spared
    book.end(eb, "revoked")

    # The broker's word on every token, at the end.
    for t in book.tokens:
        v = httpx.post(f"{URL}/v1/token/validate", json={"token": t["raw"]}, timeout=10).json()
        check(f"the book agrees with the broker on {t['jti'][:8]}", v["valid"] == (t["fate"] is None), t["fate"])

    out = subprocess.run([chainview, "observe", "--print", "json"], capture_output=True, text=True, timeout=60)
    check("observe exits 0", out.returncode == 0, out.stderr)
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    nodes = {n["id"]: n for n in lines if n["kind"] == "node"}

    def truth_of(n: dict) -> int | None:
        for i, t in enumerate(book.tokens):
            if n.get("jti") == t["jti"]:
                return i
        for i, t in enumerate(book.tokens):
            if n.get("jti") is None and n.get("chain_hash") == t["chain_hash"] and not t["renewal"]:
                return i
        return None

    seen = set()
    wrong = []
    for n in nodes.values():
        i = truth_of(n)
        if i is None:
            if n["agent"].startswith("spiffe://agentwrit.local/agent/truth/") and not n["inferred"]:
                wrong.append(f"{n['id']}: a node that is no token, as fact")
            continue
        seen.add(i)
        t = book.tokens[i]
        if n["agent"] != t["sub"]:
            wrong.append(f"{n['id']}: holder")
        if not n["link_inferred"]:
            if n["depth"] != t["depth"]:
                wrong.append(f"{n['id']}: depth {n['depth']} stated, {t['depth']} true")
            if sorted(n["scope"]) != t["scope"]:
                wrong.append(f"{n['id']}: scope stated {n['scope']}")
            link = n["renews"] if t["renewal"] else n["parent"]
            linked = truth_of(nodes[link]) if link else None
            if linked != t["from"]:
                wrong.append(f"{n['id']}: {'renews' if t['renewal'] else 'parent'} {link} stated, token {t['from']} true")
        if n["liveness"] == "live" and t["fate"] is not None:
            wrong.append(f"{n['id']}: live, but {t['fate']}")
        if n["liveness"] == "dead" and t["fate"] is None:
            wrong.append(f"{n['id']}: dead, but valid")
        if not n["status_inferred"]:
            want = t["fate"] or "valid"
            if n["status"] != want:
                wrong.append(f"{n['id']}: status {n['status']} stated, {want} true")
    check("every token the programs received is a node", seen == set(range(len(book.tokens))),
          sorted(set(range(len(book.tokens))) - seen))
    check("nothing wrong is stated as fact", not wrong, "; ".join(wrong))
    mine = [n for n in nodes.values() if truth_of(n) is not None]
    facts = sum(not n["link_inferred"] for n in mine)
    settled = sum(not n["status_inferred"] for n in mine)
    print(f"     {len(mine)} nodes: {facts} links and {settled} statuses stated as fact, the rest marked inferred")
    check("most links are stated, not guessed", facts * 2 > len(mine), facts)
    refused = [l for l in lines if l["kind"] == "denied" and l["event_type"] == "delegation_attenuation_violation"
               and l["agent"] == c.agent_id]
    check("the widening is a denial", len(refused) == 1, refused)
    if refused and not refused[0]["node_inferred"]:
        check("placed as fact under the renewed hop", truth_of(nodes[refused[0]["node"]]) == ab2, refused[0])

    passed = sum(ok for _, ok in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
