"""Schemathesis hooks for .ci/schemathesis.

A connector's addresses are where its secret is sent and where its worker connects: a
generated host name would be looked up in DNS, and a generated address could be anywhere.
Every address a request to create or change a connector carries is therefore replaced by a
closed port on loopback before it is sent, and a kind whose addresses default to the vendor's
cloud (Defender's Graph and login addresses, CrowdStrike's cloud) is given that loopback
address explicitly. The server runs with `--allow-private-tenants`, so such a connector is
saved and its worker fails to connect, on loopback.
"""

import schemathesis

LOOPBACK = "https://127.0.0.1:9"
ADDRESSES = ("tenant_url", "graph_url", "login_url", "base_url")
DEFAULTED = {"defender": ("graph_url", "login_url"), "crowdstrike": ("base_url",)}


@schemathesis.hook
def before_call(ctx, case, kwargs):
    op = case.operation
    if not op.path.startswith("/api/v1/connectors") or op.method.upper() not in ("POST", "PATCH"):
        return
    body = case.body
    if not isinstance(body, dict):
        return
    for field in ADDRESSES:
        if isinstance(body.get(field), str) or (field in body and body[field] is None):
            body[field] = LOOPBACK
    kind = body.get("kind")
    for field in DEFAULTED.get(kind if isinstance(kind, str) else None, ()):
        body.setdefault(field, LOOPBACK)
    if op.method.upper() == "PATCH" and "cloud" in body:
        body.setdefault("base_url", LOOPBACK)


# A long poll of the events (`order=asc&wait=N`) answers after N seconds when no event comes,
# which is right, but N up to 30 for each of hundreds of generated requests would make the run
# last hours: the fuzzer's waits are cut to one second. The bound itself (30, and a 400 above
# it) is held by the server's tests.
MAX_FUZZ_WAIT = 1


@schemathesis.hook("before_call")
def short_waits(ctx, case, kwargs):
    if case.operation.path != "/api/v1/events" or not isinstance(case.query, dict):
        return
    wait = case.query.get("wait")
    if isinstance(wait, int) and wait > MAX_FUZZ_WAIT:
        case.query["wait"] = MAX_FUZZ_WAIT
