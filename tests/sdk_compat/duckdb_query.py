"""Loads `chainview observe --print json` into DuckDB unchanged and asks, in
SQL, "which agents hold a live token with write: on production?" — the query
docs/observe.md shows (the JSON lines load the same way into Spark or Trino).

Against the official SDK's workload (tests/sdk_compat/sdk_compat.py) the
answer is: none. The only tokens that grant write on production there are the
orchestrator's and the deployer's registration tokens, with write:deploy:*
(a `*` identifier covers production), and the SDK released them (the
deployer's after renewing it). What stays live carries write:deploy:web-service.
So this checks the three answers that workload has: no live writer on
production; the same question counting dead tokens finds the orchestrator and
the deployer (dead: released, or renewed then released); and the live writers on web-service are
the analyst (hop 1) and the deployer (hop 2)."""
import os
import re
import sys

import duckdb

# The query of docs/observe.md, with the identifier and the livenesses as
# parameters. A scope is action:resource:identifier; `*` covers any
# identifier. A delegated token carries its delegator's task id, so the
# agent's own task comes from its agent line.
QUERY = """
WITH agents AS (
  SELECT agent, task FROM lines WHERE kind = 'agent'
), grants AS (
  SELECT agent, liveness, unnest(scope) AS s FROM lines WHERE kind = 'node'
)
SELECT g.agent, a.task, list(DISTINCT g.s ORDER BY g.s) AS scopes
FROM grants g LEFT JOIN agents a USING (agent)
WHERE list_contains(?, g.liveness)
  AND split_part(g.s, ':', 1) = 'write'
  AND split_part(g.s, ':', 3) IN (?, '*')
GROUP BY g.agent, a.task
ORDER BY a.task
"""

path = sys.argv[1]
con = duckdb.connect()
literal = "'" + path.replace("'", "''") + "'"
con.execute(
    "CREATE TABLE lines AS SELECT * FROM read_json("
    + literal
    + ", format = 'newline_delimited', sample_size = -1)"
)
kinds = dict(con.execute("SELECT kind, count(*) FROM lines GROUP BY kind").fetchall())
failures = []


def ask(liveness, identifier):
    return [(task, scopes) for (_agent, task, scopes) in con.execute(QUERY, [liveness, identifier]).fetchall()]


def check(what, got, want):
    ok = got == want
    print(("PASS " if ok else "FAIL ") + what + f": {got}")
    if not ok:
        failures.append(f"{what}: got {got}, want {want}")


print(f"duckdb {duckdb.__version__}: loaded {sum(kinds.values())} lines {kinds}")
check("every line kind loaded", sorted(kinds), ["agent", "denied", "node", "summary"])
# "Live" is what may still be used: liveness live (the trail says so) or
# maybe (it cannot settle it: the SDK's delegated tokens, whose ttl the trail
# does not carry) — never only the certain ones for a question like this.
live = ["live", "maybe"]
check("live tokens with write: on production", ask(live, "production"), [])
check(
    "tokens with write: on production, dead ones too",
    ask(live + ["dead"], "production"),
    [("push-v2.4.1", ["write:deploy:*"]), ("release-v2.4.1", ["write:deploy:*"])],
)
check(
    "live tokens with write: on web-service",
    ask(live, "web-service"),
    [("push-v2.4.1", ["write:deploy:web-service"]), ("review-v2.4.1", ["write:deploy:web-service"])],
)
# The query as docs/observe.md shows it, on this file instead of its
# observed.jsonl, gives the same answer: the page cannot drift from CI.
doc = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "observe.md")).read()
sql = re.search(r"```sql\n(.*?)```", doc, re.S).group(1)
assert sql.count("'observed.jsonl'") == 1, sql
statements = [st for st in sql.replace("'observed.jsonl'", literal).split(";") if st.strip()]
docs_con = duckdb.connect()
for st in statements[:-1]:
    docs_con.execute(st)
check("the query in docs/observe.md", [(task, scopes) for (_a, task, scopes) in docs_con.execute(statements[-1]).fetchall()], [])
if failures:
    print("\n".join(failures))
    sys.exit(1)
print("duckdb: 5 passed, 0 failed")
