"""Site broker bridged to the cloud: a long WAN outage (default 10 minutes) under load.

Run with the others (``./dev bench``, ``python -m bench site_bridge``) or alone::

    python -m bench.bench_site_bridge [--outage-s 600] [--gateways 10] [--rate-hz 5]

Two real Mosquittos (:mod:`harness.site_bridge`): the site broker runs exactly what
``renkei cloud site-bridge`` renders (default queue limits), the cloud broker the project's
``renkei.conf`` with TLS, passwords and the rendered ACL; a TCP proxy between them is the
WAN. ``--gateways`` MQTT 5 clients publish QoS 1 messages (about 260 bytes, numbered per
gateway) into the site broker at ``--rate-hz`` each, on a fixed schedule, for
``--before-s`` seconds, then through a silent WAN cut (blackhole: every byte dropped, the
brokers notice only by keepalive) of ``--outage-s`` seconds, then ``--after-s`` more.

Reported: messages sent, held back at the end of the outage, delivered to the cloud
(unique, duplicates, lost), the drain time after the WAN returned, the site broker's RSS
at the end of the outage (the queue is in memory), the bridge states the cloud saw, the
gateways' disconnects and failed PUBACKs. The run fails (exit 1) on any loss or disconnect.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness.seq_mqtt import SeqGateways, tally
from harness.site_bridge import start_rig
from harness.wait import wait_for


def rss_kib(pid: int | None) -> int:
    """Resident set size of process ``pid``, KiB (0 if unknown)."""
    if pid is None:
        return 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def publish_paced(gateways: SeqGateways, rate_hz: float, seconds: float) -> None:
    """Rounds of one message per gateway at ``rate_hz`` on a fixed schedule for ``seconds``."""
    start = time.monotonic()
    rounds = int(seconds * rate_hz)
    for k in range(rounds):
        delay = start + k / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        gateways.publish_round()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--outage-s", type=float, default=600.0)
    ap.add_argument("--gateways", type=int, default=10)
    ap.add_argument("--rate-hz", type=float, default=5.0, help="messages/s per gateway")
    ap.add_argument("--before-s", type=float, default=10.0)
    ap.add_argument("--after-s", type=float, default=10.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-site-bridge-") as tmp:
        rig = start_rig(Path(tmp), keepalive_s=30)
        gateways = SeqGateways(port=rig.site.port, count=args.gateways)
        try:
            publish_paced(gateways, args.rate_hz, args.before_s)
            rig.proxy.sever("blackhole")
            publish_paced(gateways, args.rate_hz, args.outage_s)
            held = tally(gateways.sent, rig.cloud_sub)["lost"]
            site_rss = rss_kib(rig.site.pid)
            restored = time.monotonic()
            rig.proxy.restore()
            publish_paced(gateways, args.rate_hz, args.after_s)
            wait_for(
                lambda: tally(gateways.sent, rig.cloud_sub)["lost"] == 0,
                max(120.0, args.outage_s),
                lambda: f"every message at the cloud: {tally(gateways.sent, rig.cloud_sub)}",
            )
            drained_s = time.monotonic() - restored
            wait_for(gateways.all_acked, 30, "every PUBACK")
            final = tally(gateways.sent, rig.cloud_sub)
            states = b"".join(rig.state()).decode()
        finally:
            gateways.close()
            rig.close()

    rate = args.gateways * args.rate_hz
    print(f"{'gateways x rate':32} {args.gateways} x {args.rate_hz:g}/s = {rate:g} msg/s QoS 1")
    print(f"{'outage (blackhole)':32} {args.outage_s:g} s")
    print(f"{'sent':32} {final['sent']}")
    print(f"{'held at the site at outage end':32} {held}")
    print(f"{'site broker RSS at outage end':32} {site_rss / 1024:.1f} MiB")
    print(f"{'delivered unique / duplicates':32} {final['unique']} / {final['duplicates']}")
    print(f"{'lost':32} {final['lost']}")
    print(f"{'all delivered after restore':32} {drained_s:.1f} s (incl. {args.after_s:g} s load)")
    print(f"{'bridge states at the cloud':32} {states}")
    print(
        f"{'gateway disconnects / bad acks':32} "
        f"{len(gateways.disconnects)} / {len(gateways.failed_acks)}"
    )
    if final["lost"] or gateways.disconnects or gateways.failed_acks:
        sys.exit(1)


if __name__ == "__main__":
    main()
