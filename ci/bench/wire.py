#!/usr/bin/env python3
"""The load generator's first-token error against the wire.

Reads a loopback capture (tcpdump -w, pcap, Ethernet link type as Linux's
`lo` has) and a run's requests.csv. For each request it finds, on the
wire, the packet that started it (the SYN for the first request of a
connection, else the packet carrying its `POST`) and the packet that
carried the end of its first visible `token` event (the blank line that
dispatches the event: the moment the client can stamp it). The wire's
first-token latency is the difference of the two packet stamps; the
client's is `first_token_us` of its CSV row. Both are relative, so no
clock alignment is needed. Prints JSON: the error (client - wire) at
p50/p99/max in ms, and how many requests were matched.

Usage: wire.py CAPTURE.pcap RUN_DIR [--port PORT]
Standard library only.
"""

import csv
import json
import re
import struct
import sys
from bisect import bisect_right

CLIENT_ID = re.compile(rb'"clientId"\s*:\s*"([^"]+)"')
TOKEN = b"event: token\ndata: "
REQUEST_LINE = re.compile(rb"(GET|POST|PUT|HEAD|DELETE|PATCH) \S+ HTTP/1\.1\r\n")


def packets(path):
    """(ts seconds, src, sport, dst, dport, flags, seq, payload) of each TCP/IPv4 packet."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xA1B2C3D4:
        endian, scale = "<", 1e-6
    elif magic == 0xA1B23C4D:
        endian, scale = "<", 1e-9
    elif magic == 0xD4C3B2A1:
        endian, scale = ">", 1e-6
    elif magic == 0x4D3CB2A1:
        endian, scale = ">", 1e-9
    else:
        sys.exit(f"{path}: not a pcap file (write it with tcpdump -w)")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"{path}: link type {linktype}, expected Ethernet (1) as on lo")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 14 + 20 or pkt[12:14] != b"\x08\x00":
            continue
        ip = pkt[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        yield (sec + frac * scale, ip[12:16], sport, ip[16:20], dport, flags, seq, tcp[doff:])


class Stream:
    """One direction of a TCP connection, reassembled by sequence number."""

    def __init__(self):
        self.isn = None
        self.segments = {}  # offset -> (ts, payload)
        self.syn_ts = None

    def add(self, ts, flags, seq, payload):
        if flags & 0x02:  # SYN
            self.isn = seq
            self.syn_ts = ts if self.syn_ts is None else self.syn_ts
            return
        if self.isn is None or not payload:
            return
        offset = (seq - self.isn - 1) % (1 << 32)
        self.segments.setdefault(offset, (ts, payload))  # first copy wins

    def assemble(self):
        """The bytes, and (start offsets, stamps) to find which packet carried a byte."""
        data = bytearray()
        starts, stamps = [], []
        for offset in sorted(self.segments):
            ts, payload = self.segments[offset]
            if offset > len(data):
                return bytes(data), starts, stamps  # a gap: stop at it
            new = payload[len(data) - offset :]
            if new:
                starts.append(len(data))
                stamps.append(ts)
                data.extend(new)
        return bytes(data), starts, stamps


def stamp_of(starts, stamps, byte):
    return stamps[bisect_right(starts, byte) - 1]


def first_visible_token_end(resp, start, end):
    """Offset just past the blank line ending the first token event with text."""
    at = start
    while True:
        at = resp.find(TOKEN, at, end)
        if at < 0:
            return None
        line_end = resp.find(b"\n", at + len(TOKEN), end)
        blank = resp.find(b"\n\n", at + len(TOKEN), end)
        if line_end < 0 or blank < 0:
            return None
        try:
            text = json.loads(resp[at + len(TOKEN) : line_end]).get("text", "")
        except ValueError:
            text = ""
        if text:
            return blank + 2
        at = blank


def main():
    args = sys.argv[1:]
    port = 0
    if "--port" in args:
        i = args.index("--port")
        port = int(args[i + 1])
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    capture, run_dir = args
    flows = {}
    for ts, src, sport, dst, dport, flags, seq, payload in packets(capture):
        key = (src, sport, dst, dport)
        flows.setdefault(key, Stream()).add(ts, flags, seq, payload)
    wire = {}  # clientId -> wire first-token latency in µs
    for (src, sport, dst, dport), up in flows.items():
        if port and dport != port:
            continue
        down = flows.get((dst, dport, src, sport))
        if down is None:
            continue
        req, req_starts, req_stamps = up.assemble()
        resp, resp_starts, resp_stamps = down.assemble()
        # Every request in order (the load generator's scrapes of the
        # monitoring endpoints share its connections): the i-th answer
        # is the i-th request's.
        heads = list(REQUEST_LINE.finditer(req))
        answers = [m.start() for m in re.finditer(rb"HTTP/1\.1 \d{3} ", resp)] + [len(resp)]
        for i, head in enumerate(heads):
            if i + 1 >= len(answers):
                break
            if head.group(1) != b"POST":
                continue
            p = head.start()
            m = CLIENT_ID.search(req, p)
            if not m:
                continue
            sent = up.syn_ts if i == 0 and up.syn_ts is not None else stamp_of(req_starts, req_stamps, p)
            end = first_visible_token_end(resp, answers[i], answers[i + 1])
            if end is None:
                continue
            got = stamp_of(resp_starts, resp_stamps, end - 1)
            wire[m.group(1).decode()] = (got - sent) * 1e6
    errors = []
    distorted = flagged = 0  # off the wire by > 50 ms; of those, marked as stalled
    with open(f"{run_dir}/requests.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["warmup"] == "true" or not row["first_token_us"]:
                continue
            w = wire.get(row["client_id"])
            if w is not None:
                e = (int(row["first_token_us"]) - w) / 1000.0
                errors.append(e)
                if abs(e) > 50.0:
                    distorted += 1
                    flagged += int(row.get("client_stall_us") or 0) > 50_000
    errors.sort()
    if not errors:
        sys.exit("no request matched between the capture and requests.csv")

    def q(p):
        return errors[min(len(errors) - 1, max(0, int(-(-p * len(errors) // 1)) - 1))]

    print(
        json.dumps(
            {
                "matched": len(errors),
                "error_ms": {
                    "min": round(errors[0], 3),
                    "p50": round(q(0.50), 3),
                    "p99": round(q(0.99), 3),
                    "max": round(errors[-1], 3),
                },
                "over_1ms": sum(1 for e in errors if abs(e) > 1.0),
                "over_50ms": distorted,
                "over_50ms_marked_stalled": flagged,
            }
        )
    )


if __name__ == "__main__":
    main()
