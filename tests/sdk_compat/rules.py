"""Each `chainview check` rule, planted by a client — checked with the official SDK.

One program per case, each against its own fresh `chainview broker` (so no
case's tokens show up in another's findings): agents made and delegations
done with the SDK (agent.delegate signs with the registration token), the
hops it cannot make over raw HTTP (a delegated token as Bearer, an admin or
app token as Bearer, widenings, tokens presented after they ended, the four
revocation levels). Then `chainview check --broker URL --format json` must
give exactly the expected findings: each rule on the node (the token the
program received, matched by jti through `observe --print json`), the agent,
or the survivors it names — nothing more, nothing less — and the exit code
its severities imply (1 with a warning, 0 with notes only).

Not every rule is a client's to cause:
- `unaudited-refusals` is a note once per source, never on an event: the
  refusals it stands for (a hop past depth 5, a delegation to an unknown
  agent) are the very ones v2.0.0 does not audit, so no trail can place
  them. The depth case makes both refusals and shows that nothing else
  appears.

argv[1] is the chainview binary. Prints 'N passed, N failed' at the end.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from typing import Callable

import httpx
from agentwrit import AgentWritApp

SCOPES = "read:data:*,write:data:*,read:logs:*"
results: list[tuple[str, bool]] = []


def check(what: str, ok: bool, got: object = "") -> None:
    results.append((what, bool(ok)))
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f"  ({got})"))


def claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def jti(token: str) -> str:
    return claims(token)["jti"]


class Broker:
    """A fresh `chainview broker --port 0` with one app; its exports read, never printed."""

    def __init__(self, chainview: str) -> None:
        self.proc = subprocess.Popen(
            [chainview, "broker", "--port", "0", "--app", f"rules={SCOPES}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # A broker of its own: not one an earlier step exported (with
            # AGENTWRIT_ADMIN_SECRET set, the broker takes it and prints no
            # export line for it).
            env={k: v for k, v in os.environ.items() if not k.startswith("AGENTWRIT_")},
        )
        self.env: dict[str, str] = {}
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        for line in self.proc.stdout:
            m = re.match(r"^export (AGENTWRIT_[A-Z_]+)=(.*)$", line.strip())
            if m:
                self.env[m.group(1)] = m.group(2)
            if line.startswith("# press Ctrl-C") or time.monotonic() > deadline:
                break
        if "AGENTWRIT_ADMIN_SECRET" not in self.env:
            self.stop()
            raise RuntimeError("chainview broker did not start")
        self.url = self.env["AGENTWRIT_BROKER_URL"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


class Case:
    """What a program planted: the tokens it received and the agents it made, by name."""

    def __init__(self, b: Broker) -> None:
        self.url = b.url
        self.app = AgentWritApp(broker_url=b.url, client_id=b.env["AGENTWRIT_CLIENT_ID"],
                                client_secret=b.env["AGENTWRIT_CLIENT_SECRET"])
        self.client_id = b.env["AGENTWRIT_CLIENT_ID"]
        self.client_secret = b.env["AGENTWRIT_CLIENT_SECRET"]
        self.admin = httpx.post(f"{b.url}/v1/admin/auth", json={"secret": b.env["AGENTWRIT_ADMIN_SECRET"]},
                                timeout=10).json()["access_token"]
        self.tokens: dict[str, str] = {}
        self.agents: dict[str, object] = {}
        # Renewals, by name: the token each renews.
        self.renews: dict[str, str] = {}

    def agent(self, name: str, scope: list[str], task: str | None = None):
        a = self.app.create_agent(orch_id="rules", task_id=task or f"task-{name}", requested_scope=scope)
        self.agents[name] = a
        self.tokens[name] = a.access_token
        return a

    def sdk_delegate(self, name: str, frm: str, to: str, scope: list[str], ttl: int = 900) -> str:
        """agent.delegate: signed with the delegator's registration token."""
        t = self.agents[frm].delegate(delegate_to=self.agents[to].agent_id, scope=scope, ttl=ttl)
        self.tokens[name] = t.access_token
        return t.access_token

    def post(self, path: str, bearer: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, headers={"Authorization": f"Bearer {bearer}"},
                          timeout=10)

    def raw_delegate(self, name: str | None, bearer: str, to: str, scope: list[str], ttl: int = 900,
                     status: int = 200) -> httpx.Response:
        """A hop over raw HTTP with any Bearer (a delegated, admin or app token)."""
        to_id = self.agents[to].agent_id if to in self.agents else to
        r = self.post("/v1/delegate", bearer, {"delegate_to": to_id, "scope": scope, "ttl": ttl})
        check(f"  the broker answers {status} to a hop to {to}", r.status_code == status, r.text)
        if name is not None and r.status_code == 200:
            self.tokens[name] = r.json()["access_token"]
        return r

    def revoke(self, level: str, target: str) -> None:
        r = self.post("/v1/revoke", self.admin, {"level": level, "target": target})
        check(f"  revoke {level} answers 200", r.status_code == 200, r.text)

    def app_token(self) -> str:
        r = httpx.post(f"{self.url}/v1/app/auth",
                       json={"client_id": self.client_id, "client_secret": self.client_secret}, timeout=10)
        return r.json()["access_token"]


# Each case plants its rule and says which findings must come out (each
# once, unless listed twice): (rule, subject), the subject a token name for a finding on a node, "agent NAME"
# for one on an agent, "left NAME,…" for a revocation gap's survivors, None
# for the source-wide note.

def wildcard_handed_down(c: Case):
    c.agent("a", ["read:data:*", "read:logs:x", "read:logs:y"])
    c.agent("b", ["read:data:*"])
    c.agent("c", ["read:data:*"])
    c.sdk_delegate("ab", "a", "b", ["read:data:*", "read:logs:x"])
    # b hands the wildcard on with its delegated token: two hops.
    c.raw_delegate("abc", c.tokens["ab"], "c", ["read:data:*"])
    return {("wildcard-handed-down", "abc")}


def hop_narrowed_nothing(c: Case):
    c.agent("a", ["read:data:x"])
    c.agent("b", ["read:data:x"])
    c.sdk_delegate("ab", "a", "b", ["read:data:x"])
    return {("hop-narrowed-nothing", "ab")}


def chain_at_depth_limit(c: Case):
    grants = [f"read:data:g{i}" for i in range(6)]
    for n in "abcdef":
        c.agent(n, grants)
    c.sdk_delegate("d1", "a", "b", grants[:5])
    bearer = c.tokens["d1"]
    for depth, to in zip(range(2, 6), "cdef"):
        bearer = c.raw_delegate(f"d{depth}", bearer, to, grants[: 6 - depth]).json()["access_token"]
    # Neither refusal below is in a v2.0.0 trail: only the note says so.
    c.raw_delegate(None, bearer, "a", grants[:1], status=403)  # past the depth limit
    c.raw_delegate(None, c.tokens["a"], "spiffe://agentwrit.local/agent/rules/x/0000000000000000",
                   grants[:1], status=404)  # an unknown delegate
    return {("chain-at-depth-limit", "d5")}


def delegator_not_agent(c: Case):
    c.agent("b", ["read:data:*"])
    c.agent("c", ["read:data:*"])
    # The admin hands b the right to read the audit trail; the app, to
    # mint launch tokens (each a scope its token holds).
    c.raw_delegate("by-admin", c.admin, "b", ["admin:audit:*"])
    c.raw_delegate("by-admin-2", c.admin, "c", ["admin:revoke:*"])
    c.raw_delegate("by-app", c.app_token(), "b", ["app:launch-tokens:*"])
    return {("delegator-not-agent", "by-admin"), ("delegator-not-agent", "by-admin-2"),
            ("delegator-not-agent", "by-app")}


def self_delegation(c: Case):
    c.agent("a", ["read:data:*"])
    c.agent("b", ["read:data:*"])
    c.sdk_delegate("aa", "a", "a", ["read:data:x"])
    c.sdk_delegate("ab", "a", "b", ["read:data:y", "read:data:z"])
    # A cycle: b hands back to a, already at the chain's root.
    c.raw_delegate("aba", c.tokens["ab"], "a", ["read:data:y"])
    return {("self-delegation", "aa"), ("self-delegation", "aba")}


def escalation_probing(c: Case):
    c.agent("a", ["read:data:*", "write:data:*"])
    c.agent("b", ["read:data:*", "write:data:*"])
    c.agent("c", ["read:data:*", "write:data:*"])
    c.sdk_delegate("ab", "a", "b", ["read:data:x"])
    for wider in (["read:data:*"], ["write:data:x"], ["read:data:x", "read:data:y"]):
        c.raw_delegate(None, c.tokens["ab"], "c", wider, status=403)
    return {("escalation-probing", "agent b")}


def revoked_token_presented(c: Case):
    c.agent("a", ["read:data:*"])
    c.agent("b", ["read:data:*"])
    c.agent("c", ["read:data:*"])
    ab = c.sdk_delegate("ab", "a", "b", ["read:data:x"])
    c.revoke("token", jti(ab))
    c.raw_delegate(None, ab, "c", ["read:data:x"], status=401)
    # c releases its own token (SDK) and presents it again.
    released = c.tokens["c"]
    c.agents["c"].release()
    c.raw_delegate(None, released, "a", ["read:data:q"], status=401)
    # v2.0.0 audits both as token_auth_failed with no subject (its
    # token_revoked_access path is dead): the finding is on the event, and
    # names the path; no trail can say which token it was.
    return [("revoked-token-presented", "at /v1/delegate")] * 2


def revocation_gap_agent(c: Case):
    c.agent("a", ["read:data:*"])
    c.agent("b", ["read:data:*"])
    c.agent("c", ["read:data:*"])
    c.sdk_delegate("ab", "a", "b", ["read:data:x", "read:data:y"])
    c.raw_delegate("abc", c.tokens["ab"], "c", ["read:data:x"])
    # b's own token and ab die (sub b); abc, delegated by b, lives on.
    c.revoke("agent", c.agents["b"].agent_id)
    return {("revocation-gap", "left abc"), ("outlives-delegator", "abc")}


def revocation_gap_chain_root(c: Case):
    c.agent("a", ["read:data:*"])
    c.agent("b", ["read:data:*"])
    c.sdk_delegate("ab", "a", "b", ["read:data:x"])
    # The chain entry hits ab (its chain starts at a), not a's own token.
    c.revoke("chain", c.agents["a"].agent_id)
    return {("revocation-gap", "left a")}


def revocation_gap_chain_mid(c: Case):
    c.agent("a", ["read:data:*"])
    c.agent("b", ["read:data:*"])
    c.agent("c", ["read:data:*"])
    c.sdk_delegate("ab", "a", "b", ["read:data:x", "read:data:y"])
    c.raw_delegate("abc", c.tokens["ab"], "c", ["read:data:x"])
    # A chain entry matches only a chain's first agent: b is mid-chain.
    c.revoke("chain", c.agents["b"].agent_id)
    # Nothing dies: b's own token, ab (held by b) and abc (through b) live on.
    return {("revocation-gap", "left ab,abc,b")}


def revocation_gap_rerooted(c: Case):
    c.agent("a", ["write:data:*"])
    c.agent("b", ["write:data:*"])
    c.agent("c", ["write:data:*"])
    c.sdk_delegate("ab", "a", "b", ["write:data:x", "write:data:y"])
    c.sdk_delegate("bc", "b", "c", ["write:data:x"])  # re-rooted at b
    c.revoke("chain", c.agents["a"].agent_id)  # kills ab; a's own token and bc live on
    return {("rerooted-chain", "bc"), ("revocation-gap", "left a,bc")}


def rerooted_chain(c: Case):
    c.agent("a", ["write:data:*"])
    c.agent("b", ["write:data:*"])
    c.agent("c", ["write:data:*"])
    c.sdk_delegate("ab", "a", "b", ["write:data:x", "write:data:y"])
    # b, holding ab, delegates with the SDK: a new chain rooted at b.
    c.sdk_delegate("bc", "b", "c", ["write:data:x"])
    return {("rerooted-chain", "bc")}


def outlives_delegator(c: Case):
    c.agent("a", ["read:data:*"])
    c.agent("b", ["read:data:*"])
    c.sdk_delegate("ab", "a", "b", ["read:data:x"])
    c.agents["a"].release()  # ab lives on
    return {("outlives-delegator", "ab")}


def outlives_delegator_renewed(c: Case):
    c.agent("a", ["read:data:*"])
    c.agent("b", ["read:data:*"])
    c.agent("c", ["read:data:*"])
    ab = c.sdk_delegate("ab", "a", "b", ["read:data:x", "read:data:y"])
    abc = c.raw_delegate("abc", ab, "c", ["read:data:x"]).json()["access_token"]
    # ab dies with its holder b; abc (held by c) does not.
    c.revoke("agent", c.agents["b"].agent_id)
    # Renewal re-issues abc with the same chain, whatever became of ab.
    r = c.post("/v1/token/renew", abc, {})
    check("  a delegated token renews after its delegator was revoked", r.status_code == 200, r.text)
    c.tokens["abc2"] = r.json()["access_token"]
    c.renews["abc2"] = "abc"
    return {("outlives-delegator", "abc2"), ("revocation-gap", "left abc2")}


def well_narrowed(c: Case):
    """A chain that narrows at each hop, delegated with the delegated token, ended leaf first: no finding."""
    c.agent("orch", ["read:data:*", "write:data:*"])
    c.agent("analyst", ["read:data:*"])
    c.agent("deployer", ["write:data:*"])
    hop1 = c.sdk_delegate("hop1", "orch", "analyst", ["read:data:prod", "write:data:web"], ttl=120)
    hop2 = c.raw_delegate("hop2", hop1, "deployer", ["write:data:web"], ttl=60).json()["access_token"]
    for t in (hop2, hop1):
        r = c.post("/v1/token/release", t, {})
        check("  a delegated token releases itself", r.status_code in (200, 204), r.text)
    return set()


CASES: list[Callable[[Case], object]] = [
    wildcard_handed_down, hop_narrowed_nothing, chain_at_depth_limit, delegator_not_agent,
    self_delegation, escalation_probing, revoked_token_presented, revocation_gap_agent,
    revocation_gap_chain_root, revocation_gap_chain_mid, revocation_gap_rerooted, rerooted_chain, outlives_delegator, outlives_delegator_renewed,
    well_narrowed,
]


def run(chainview: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWRIT_")}
    e.update(env)
    return subprocess.run([chainview, *args], capture_output=True, text=True, timeout=120, env=e)


def judge(chainview: str, b: Broker, c: Case, want: set, name: str) -> None:
    env = {"AGENTWRIT_BROKER_URL": b.url, "AGENTWRIT_ADMIN_SECRET": b.env["AGENTWRIT_ADMIN_SECRET"]}
    obs = run(chainview, env, "observe", "--print", "json")
    check(f"{name}: observe exits 0", obs.returncode == 0, obs.stderr)
    # A node is a token by its jti; a delegated one (the trail does not
    # carry its jti) by its chain hash; a renewal by the node it renews.
    by_jti = {jti(raw): n for n, raw in c.tokens.items()}
    by_chain = {claims(raw).get("chain_hash"): n for n, raw in c.tokens.items() if n not in c.renews}
    renewal_of = {of: n for n, of in c.renews.items()}
    nodes = {}
    lines = [json.loads(line) for line in obs.stdout.splitlines()]
    for n in (x for x in lines if x["kind"] == "node"):
        if n.get("jti") in by_jti:
            nodes[n["id"]] = by_jti[n["jti"]]
        elif n.get("jti") is None and n.get("type") == "delegation" and n.get("chain_hash") in by_chain:
            nodes[n["id"]] = by_chain[n["chain_hash"]]
    for n in (x for x in lines if x["kind"] == "node" and x.get("type") == "renewal"):
        if nodes.get(n.get("renews")) in renewal_of:
            nodes[n["id"]] = renewal_of[nodes[n["renews"]]]
    check(f"{name}: every token is a node", set(nodes.values()) == set(c.tokens), set(c.tokens) - set(nodes.values()))
    agents = {a.agent_id: n for n, a in c.agents.items()}
    out = run(chainview, env, "check", "--broker", b.url, "--format", "json")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    got = []
    for f in (x for x in lines if x["kind"] == "finding"):
        if f["node"] is not None:
            subject = nodes.get(f["node"], f["node"])
        elif f["rule"] == "revocation-gap":
            left = re.findall(r"\bn\d+\b", f["message"].split(":", 1)[-1])
            subject = "left " + ",".join(sorted(nodes.get(n, n) for n in left))
        elif f["agent"] is not None:
            subject = "agent " + agents.get(f["agent"], f["agent"])
        elif f["rule"] == "revoked-token-presented" and f["event"]:
            subject = "at " + f["message"].rsplit(" to ", 1)[-1]
        else:
            subject = None
        got.append((f["rule"], subject))
    want = sorted([*want, ("unaudited-refusals", None)], key=str)
    got = sorted(got, key=str)
    check(f"{name}: exactly {want}", got == want, got)
    counted = [x for x in lines if x["kind"] == "finding"]
    warns = any(x["severity"] != "note" for x in counted)
    check(f"{name}: check exits {int(warns)}", out.returncode == int(warns), (out.returncode, out.stderr))


def main() -> int:
    chainview = sys.argv[1]
    for case in CASES:
        name = case.__name__.replace("_", "-")
        b = Broker(chainview)
        try:
            print(f"== {name}")
            c = Case(b)
            want = case(c)
            judge(chainview, b, c, want, name)
        except Exception as e:  # noqa: BLE001 - a failed case is reported, the rest still run
            check(f"{name}: ran", False, repr(e))
        finally:
            b.stop()
    passed = sum(ok for _, ok in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
