"""Compatibility check: the unmodified official AgentWrit Python SDK (agentwrit
0.3.0) against `chainview broker`.

Reads AGENTWRIT_BROKER_URL, AGENTWRIT_CLIENT_ID, AGENTWRIT_CLIENT_SECRET from the
environment (as printed by `chainview broker`). Exits non-zero on the first
difference from what the SDK expects of a v2.0.0 broker. Prints
'N passed, N failed' at the end.
"""
from __future__ import annotations

import os
import sys
import traceback

import httpx
from agentwrit import (
    AgentWritApp,
    AuthenticationError,
    AuthorizationError,
    ProblemResponseError,
    validate,
)

checks: list[tuple[str, bool, str]] = []


def check(name: str, cond: bool, info: str = "") -> None:
    checks.append((name, bool(cond), info))
    print(("ok   " if cond else "FAIL ") + name + (f"  ({info})" if info and not cond else ""))


def main() -> int:
    url = os.environ["AGENTWRIT_BROKER_URL"]
    app = AgentWritApp(
        broker_url=url,
        client_id=os.environ["AGENTWRIT_CLIENT_ID"],
        client_secret=os.environ["AGENTWRIT_CLIENT_SECRET"],
    )
    health = app.health()
    check("health has all five fields", health.status == "ok" and health.version == "2.0.0")

    orch = app.create_agent(
        orch_id="deploy-pipeline", task_id="release-v2.4.1",
        requested_scope=["read:config:*", "read:deploy:*", "write:deploy:*"],
    )
    analyst = app.create_agent(
        orch_id="deploy-pipeline", task_id="review-v2.4.1",
        requested_scope=["read:config:*", "read:deploy:*"],
    )
    deployer = app.create_agent(
        orch_id="deploy-pipeline", task_id="push-v2.4.1",
        requested_scope=["write:deploy:*"],
    )
    check("three agents created", all(a.agent_id.startswith("spiffe://agentwrit.local/agent/deploy-pipeline/")
                                      for a in (orch, analyst, deployer)))
    check("registration expires_in is 300", orch.expires_in == 300, str(orch.expires_in))

    # Hop 1 through the SDK.
    hop1 = orch.delegate(
        delegate_to=analyst.agent_id,
        scope=["read:config:production", "read:deploy:web-service", "write:deploy:web-service"],
        ttl=120,
    )
    check("hop 1 chain has one record", len(hop1.delegation_chain) == 1)
    check("hop 1 record names the orchestrator", hop1.delegation_chain[0].agent == orch.agent_id)
    check("hop 1 expires_in is the ttl", hop1.expires_in == 120, str(hop1.expires_in))

    v1 = validate(url, hop1.access_token)
    check("hop 1 validates", v1.valid and v1.claims is not None)
    check("hop 1 claims carry the delegated scope",
          v1.claims.scope == ["read:config:production", "read:deploy:web-service", "write:deploy:web-service"])
    check("hop 1 claims carry the delegator's task id", v1.claims.task_id == "release-v2.4.1")
    check("hop 1 claims carry chain and hash", len(v1.claims.delegation_chain or []) == 1 and bool(v1.claims.chain_hash))

    # Hop 2 over raw HTTP with the delegated token as Bearer (the SDK cannot).
    resp = httpx.post(
        f"{url}/v1/delegate",
        json={"delegate_to": deployer.agent_id, "scope": ["write:deploy:web-service"], "ttl": 60},
        headers={"Authorization": f"Bearer {hop1.access_token}"},
        timeout=10,
    )
    check("hop 2 over raw HTTP succeeds", resp.status_code == 200, resp.text)
    hop2 = resp.json()
    chain = hop2.get("delegation_chain", [])
    check("hop 2 chain has two records", len(chain) == 2)
    check("hop 2 chain: orchestrator then analyst",
          [r["agent"] for r in chain] == [orch.agent_id, analyst.agent_id])
    check("hop 2 second record holds the analyst's hop-1 scope",
          chain[1]["scope"] == ["read:config:production", "read:deploy:web-service", "write:deploy:web-service"])
    v2 = app.validate(hop2["access_token"])
    check("hop 2 validates with scope write:deploy:web-service",
          v2.valid and v2.claims.scope == ["write:deploy:web-service"])

    # The seed's original hop 2 (analyst holding only read scopes) is refused.
    narrow = orch.delegate(delegate_to=analyst.agent_id,
                           scope=["read:config:production", "read:deploy:web-service"])
    resp = httpx.post(
        f"{url}/v1/delegate",
        json={"delegate_to": deployer.agent_id, "scope": ["write:deploy:web-service"]},
        headers={"Authorization": f"Bearer {narrow.access_token}"},
        timeout=10,
    )
    body = resp.json()
    check("seed hop 2 refused 403 scope_violation",
          resp.status_code == 403 and body.get("error_code") == "scope_violation"
          and body.get("detail") == "delegated scope exceeds delegator scope", resp.text)

    # Escalation through the SDK raises AuthorizationError.
    try:
        analyst.delegate(delegate_to=deployer.agent_id, scope=["write:deploy:*"])
        check("escalation raises AuthorizationError", False, "no exception")
    except AuthorizationError as e:
        check("escalation raises AuthorizationError",
              e.status_code == 403 and e.problem.error_code == "scope_violation", str(e))

    # Missing field on delegate: the real v2.0.0 broker answers 500, chainview's
    # embedded broker the documented 400 (a listed deviation). Either way the
    # SDK raises its generic ProblemResponseError, not a 401/403 subclass.
    try:
        analyst._app._transport.request("POST", "/v1/delegate", json={"scope": ["read:config:x"]},
                                        headers={"Authorization": f"Bearer {analyst.access_token}"})
        check("delegate without delegate_to is a problem", False, "no exception")
    except (AuthenticationError, AuthorizationError) as e:
        check("delegate without delegate_to is a problem", False, f"wrong class: {e!r}")
    except ProblemResponseError as e:
        check("delegate without delegate_to is a problem",
              e.status_code == 400 and e.problem.detail == "missing required field: delegate_to", str(e))

    # Renew keeps TTL and kills the old token.
    old = deployer.access_token
    deployer.renew()
    check("renew returns a new token", deployer.access_token != old and deployer.expires_in == 300)
    check("renewed-away token is invalid", not validate(url, old).valid)
    check("renewed token is valid", validate(url, deployer.access_token).valid)

    # Release; the SDK's second release is a client-side no-op; a released token answers 401.
    for a in (orch, analyst, deployer):
        a.release()
    deployer.release()
    check("released token is invalid", not validate(url, orch.access_token).valid)
    try:
        httpx_resp = app._transport.request("POST", "/v1/token/renew",
                                            headers={"Authorization": f"Bearer {orch.access_token}"})
        check("released token is refused 401", False, str(httpx_resp.status_code))
    except AuthenticationError as e:
        check("released token is refused 401",
              e.status_code == 401 and e.problem.detail == "token verification failed", str(e))
    app.close()
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception:  # any crash inside the SDK is a compatibility failure
        traceback.print_exc()
        checks.append(("script ran to the end", False, "exception"))
    failed = sum(1 for _, ok, _ in checks if not ok)
    print(f"sdk_compat: {len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
