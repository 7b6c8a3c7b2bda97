"""Checks `chainview observe --print json` after the official SDK ran against
the broker: the SDK's agents and delegations are in the reconstruction, each
delegation under a token of its delegator one level up, the refused hop 2
sits where it was attempted, and the hash chain verifies."""
import json
import sys

lines = [json.loads(l) for l in open(sys.argv[1])]
nodes = {l["id"]: l for l in lines if l["kind"] == "node"}
denied = [l for l in lines if l["kind"] == "denied"]
summary = lines[-1]
failures = []


def check(what, ok, got=""):
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        failures.append(f"{what}: {got}")


check("summary last, hash chain consistent, integrity ok", summary["kind"] == "summary" and summary["hash_chain"] == "consistent" and summary["integrity"] == "ok", summary)
regs = [n for n in nodes.values() if n["type"] == "registration"]
dels = [n for n in nodes.values() if n["type"] == "delegation"]
check("the SDK's agents are registration nodes with their jti", len(regs) >= 3 and all(n["jti"] for n in regs), len(regs))
check("the SDK's delegations are delegation nodes", len(dels) >= 2, len(dels))
for d in dels:
    p = nodes.get(d["parent"])
    check(f"{d['id']} ({d['event']}) hangs under a token of its delegator, one level up",
          p is not None and p["agent"] == d["from"] and p["depth"] + 1 == d["depth"], (d, p))
check("the refused hop 2 is a denial, attempted with a delegated token",
      any(x["event_type"] == "delegation_attenuation_violation" and x["node"] in nodes
          and nodes[x["node"]]["type"] == "delegation" for x in denied), denied)
if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"observe: {len(regs)} registrations, {len(dels)} delegations, {len(denied)} denials — all placed")
