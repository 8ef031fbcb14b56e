"""An OPC UA load server for benchmarks: N Double variables whose values change on a schedule.

Each variable ``ns=2;s=x{i}`` holds, after each change, the server's wall clock at the
change in UTC epoch ms (exact in a Double), so a subscriber can compute the end-to-end
latency from the value itself. Every ``--period-ms`` a ``--fraction`` of the variables
(rotating) change, so each variable changes every ``period / fraction`` ms.

Run: ``python -m bench.opcua_load_server --port P --vars 5000 --period-ms 100 --fraction 0.1``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any, cast

from asyncua import ua
from asyncua.server.server import Server


async def serve(port: int, n_vars: int, period_ms: float, fraction: float) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/renkei/bench/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:renkei:bench")
    obj = await server.nodes.objects.add_object(ns, "Load")
    ids = []
    for i in range(n_vars):
        node_id: Any = ua.NodeId(cast(Any, f"x{i}"), cast(Any, ns))
        var = await obj.add_variable(node_id, f"x{i}", 0.0)
        ids.append(var.nodeid)
    per_tick = max(1, round(n_vars * fraction))
    async with server:
        print("READY", flush=True)
        k = 0
        next_t = time.monotonic()
        while True:
            now: Any = datetime.now(UTC)
            value = ua.Variant(float(time.time_ns() // 1_000_000), ua.VariantType.Double)
            for _ in range(per_tick):
                dv = ua.DataValue(value, SourceTimestamp=now, ServerTimestamp=now)
                await server.write_attribute_value(ids[k], dv)
                k = (k + 1) % n_vars
            next_t += period_ms / 1000
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--vars", type=int, default=5000)
    p.add_argument("--period-ms", type=float, default=100.0)
    p.add_argument("--fraction", type=float, default=0.1)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(a.port, a.vars, a.period_ms, a.fraction))


if __name__ == "__main__":
    main()
