# runledger's shard plugin for pytest (docs/groups.md): keeps this shard's tests of a run
# group, and places each collected test no shard was given with the rule the handler split by
# (longest expected first is moot: each is expected to take the same time; in node id order,
# onto the least loaded shard, the lower index of equals), so every shard agrees without
# talking to the others and every collected test runs exactly once across the group.
import json
import os


def _plan():
    with open(os.environ["RUNLEDGER_SHARD_FILE"], encoding="utf-8") as f:
        return json.load(f)


def pytest_collection_modifyitems(session, config, items):
    plan = _plan()
    me = plan["shard"]
    assigned = plan["assigned"]
    loads = list(plan["predicted_ms"])
    unknown_ms = plan["unknown_ms"]
    placed = {}
    for nodeid in sorted({item.nodeid for item in items if item.nodeid not in assigned}):
        target = min(range(len(loads)), key=lambda shard: (loads[shard], shard))
        loads[target] += unknown_ms
        placed[nodeid] = target
    keep, drop = [], []
    for item in items:
        owner = assigned.get(item.nodeid, placed.get(item.nodeid))
        (keep if owner == me else drop).append(item)
    config._runledger_kept = len(keep)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_sessionfinish(session, exitstatus):
    # A shard left with nothing to run (every test placed elsewhere) has not failed.
    if exitstatus == 5 and getattr(session.config, "_runledger_kept", None) == 0:
        session.exitstatus = 0
