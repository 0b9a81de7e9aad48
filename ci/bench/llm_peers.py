#!/usr/bin/env python3
"""One trace replayed against the reference server's OpenAI endpoint by our
load generator, GuideLLM and inference-perf (BENCHMARKS.md, "Issue 28").

The trace: RATE requests a second, evenly spaced, for DURATION seconds,
each with INPUT prompt tokens and OUTPUT answer tokens (Mooncake JSONL).
Every tool counts with the same Hugging Face tokenizer, trained here
offline (ci/tokenizer.py) and saved as a model's folder. For each tool in
turn: a fresh release refserver pinned to core 0 (exact delays: first
token FT ms, a token every TI ms), tcpdump on loopback pinned to core 0,
the tool pinned to core 1. Per tool it prints one JSON line:

- send_error_ms: the packet carrying each request's POST against the
  schedule (request k due at k / RATE after the first), p50/p99/max. The
  schedule's zero is the earliest-on-time request (so every error is
  0 or more) — the same measure for every tool, none of them trusted.
- requests_per_cpu_s: requests answered per second of the client's CPU
  (its whole process tree, getrusage of the reaped children).
- ttft_ms and wire_ttft_ms: the tool's first-token latency and the
  wire's (the request's first packet, its SYN when it opened the
  connection, to the packet carrying the first content token),
  p50/p99; ttft_error_ms their difference at each.

    python3 ci/bench/llm_peers.py       # RATE=500 DURATION=20 TOOLS=ours,guidellm,inference-perf
Needs: target/release/{refserver,loadgen}, tcpdump, and the tools' venvs
(ci/bench/llm_peers.sh makes all of them).
"""
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wire  # noqa: E402  (the pcap reader)
from aiperf import free_port, quantile, measured as aiperf_measured, server as aiperf_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RATE = float(os.environ.get("RATE", "500"))
DURATION = int(os.environ.get("DURATION", "20"))
# 30 answer tokens: what inference-perf asks of a chat request (its
# ShareGPT chat data sets no max_tokens; its client then asks 30).
INPUT, OUTPUT = int(os.environ.get("INPUT", "256")), 30
FT, TI = 20, 1
TOOLS = os.environ.get("TOOLS", "ours,guidellm,inference-perf").split(",")
OUT = Path(os.environ.get("OUT", "/tmp/llm-peers"))
GUIDELLM = os.environ.get("GUIDELLM", "/tmp/venv-guidellm/bin/guidellm")
INFERENCE_PERF = os.environ.get("INFERENCE_PERF", "/tmp/venv-iperf/bin/inference-perf")


def summary(values):
    return {k: quantile(values, q) for k, q in (("p50", 0.5), ("p99", 0.99))} | {
        "max": max(values) if values else None,
        "n": len(values),
    }


def tokenizer(d):
    """A byte-level BPE tokenizer trained on local text, as a model's folder."""
    model = d / "model"
    model.mkdir(parents=True, exist_ok=True)
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(p.read_text() for p in Path("/usr/share/common-licenses").glob("*") if p.is_file()))
    subprocess.run([sys.executable, str(ROOT / "ci/tokenizer.py"), "train", str(corpus), str(model)], check=True)
    (model / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 1000000,
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
    }))
    (model / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 2000}))
    return model


def trace(d):
    """RATE rows a second, evenly spaced, in Mooncake's format."""
    path = d / "trace.jsonl"
    n = int(RATE * DURATION)
    with open(path, "w") as f:
        for k in range(n):
            f.write(json.dumps({"timestamp": round(k * 1000 / RATE, 3), "input_length": INPUT,
                                "output_length": OUTPUT,
                                # One id a 512-token block (GuideLLM checks the count), each its own.
                                "hash_ids": [k * 64 + b for b in range(-(-INPUT // 512))]}) + "\n")
    return path, n


def measured(cmd, env=None, log=None):
    """aiperf.measured, killing a tool that is still there DURATION x 10 +
    120 s after it started (GuideLLM hung after its run at 500/s)."""
    return aiperf_measured(cmd, env=env, log=log, timeout=DURATION * 10 + 120)


def ours(port, d, trace_file, model):
    scenario = d / "replay.toml"
    scenario.write_text(f"""
name = "replay-bench"
duration = "{DURATION}s"
target = "http://127.0.0.1:{port}"
protocol = "openai-chat"
[openai]
model = "refserver"
[load]
model = "trace"
trace = "{trace_file}"
max_users = 2000
[request]
audio = false
repeat_ratio = 0.0
timeout = "30s"
[tokens]
tokenizer = "{model}"
""")
    cpu, wall = measured(["taskset", "-c", "1", str(ROOT / "target/release/loadgen"), "run",
                          str(scenario), "--out", str(d / "run"), "-q"], log=d / "tool.log")
    with open(d / "run" / "requests.csv") as f:
        ok = [r for r in csv.DictReader(f) if r["outcome"] == "ok"]
    return cpu, wall, len(ok), [int(r["first_token_us"]) / 1000 for r in ok]


def guidellm(port, d, trace_file, model):
    out = d / "guidellm.json"
    cmd = ["taskset", "-c", "1", GUIDELLM, "run",
           "--backend", json.dumps({"kind": "openai_http", "target": f"http://127.0.0.1:{port}",
                                    "model": "refserver", "validate_backend": False}),
           # Mooncake stamps are milliseconds; GuideLLM reads seconds.
           "--profile", json.dumps({"kind": "replay", "schedule_turn": "timestamp", "time_scale": 0.001}),
           "--data", json.dumps({"kind": "mooncake", "source": {"kind": "json_file", "path": str(trace_file)}}),
           "--tokenizer", json.dumps({"kind": "huggingface_auto", "model": str(model)}),
           "--output", json.dumps({"kind": "json", "path": str(out)}),
           "--disable-console-interactive"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cpu, wall = measured(cmd, env=env, log=d / "tool.log")
    ttft = []
    try:
        doc = json.loads(out.read_text())
    except (OSError, ValueError):
        return cpu, wall, 0, ttft
    for b in doc.get("benchmarks", []):
        for r in b.get("requests", {}).get("successful", []):
            v = r.get("time_to_first_token_ms")
            if v is not None:
                ttft.append(float(v))
    return cpu, wall, len(ttft), ttft


def inference_perf(port, d, trace_file, model):
    """A constant rate with the same lengths: its trace replay reads times
    only, and of its data only ShareGPT-format files make chat requests
    (its random and shared-prefix data make completions, which the
    reference server does not serve); each prompt INPUT tokens."""
    config = d / "config.yml"
    config.write_text(f"""
load:
  type: constant
  stages:
    - rate: {RATE}
      duration: {DURATION}
api:
  type: chat
  streaming: true
server:
  type: vllm
  model_name: refserver
  base_url: http://127.0.0.1:{port}
  ignore_eos: true
tokenizer:
  pretrained_model_name_or_path: {model}
data:
  type: shareGPT
  path: {sharegpt(d, model)}
report:
  request_lifecycle:
    summary: true
    per_request: true
storage:
  local_storage:
    path: {d / "reports"}
""")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cpu, wall = measured(["taskset", "-c", "1", INFERENCE_PERF, "--config_file", str(config)],
                         env=env, log=d / "tool.log")
    ttft = []
    for p in (d / "reports").rglob("per_request_lifecycle_metrics.json"):
        for r in json.loads(p.read_text()):
            chunks = ((r.get("info") or {}).get("response_metrics") or {}).get("chunk_times") or []
            if not r.get("error") and chunks:
                ttft.append((chunks[0] - r["start_time"]) * 1000)
    return cpu, wall, len(ttft), ttft


def sharegpt(d, model):
    """ShareGPT-format conversations, each a greeting and a question of
    INPUT tokens of the tokenizer (cut from the corpus it was trained on)."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    ids = tok.encode((OUT / "corpus.txt").read_text(), add_special_tokens=False).ids
    rows = []
    for k in range(500):
        at = (k * 997) % max(1, len(ids) - INPUT)
        # It takes conversations of two turns or more and sends them all:
        # a greeting first, so the last message is the question.
        rows.append({"conversations": [{"from": "gpt", "value": "Hi"},
                                       {"from": "human", "value": tok.decode(ids[at:at + INPUT])}]})
    path = d / "sharegpt.json"
    path.write_text(json.dumps(rows))
    return path


def on_the_wire(pcap, port):
    """Each request's first packet and its first content token's packet."""
    conns = {}
    for ts, src, sport, dst, dport, flags, _seq, payload in wire.packets(pcap):
        if dport == port:
            c = conns.setdefault(sport, {"syn": None, "reqs": [], "used": False})
            if flags & 0x02 and not flags & 0x10:
                c["syn"] = ts
            elif b"POST /v1/chat/completions" in payload:
                # A connection's SYN counts for its first request only when
                # nothing went on it before (a scrape's GET may have opened it).
                start = c["syn"] if c["syn"] is not None and not c["used"] else ts
                c["reqs"].append([start, None, ts])
            if payload:
                c["used"] = True
        elif sport == port and dport in conns:
            reqs = conns[dport]["reqs"]
            if reqs and reqs[-1][1] is None and b'"content":"' in payload:
                i = payload.find(b'"content":"') + len(b'"content":"')
                if payload[i:i + 1] != b'"':
                    reqs[-1][1] = ts
    # Sent when the request line hit the wire (a new connection's
    # handshake is not the schedule's business; it counts in the TTFT).
    sends = sorted(r[2] for c in conns.values() for r in c["reqs"])
    ttft = [(r[1] - r[0]) * 1000 for c in conns.values() for r in c["reqs"] if r[1] is not None]
    return sends, ttft


def send_errors(sends):
    """Each send against the even schedule whose zero is the earliest on time."""
    offsets = [t - k / RATE for k, t in enumerate(sends)]
    zero = min(offsets) if offsets else 0.0
    return [(o - zero) * 1000 for o in offsets]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    model = tokenizer(OUT)
    trace_file, rows = trace(OUT)
    for name in TOOLS:
        d = OUT / name
        d.mkdir(parents=True, exist_ok=True)
        port = free_port()
        srv = aiperf_server(port, d / "server.log", FT, TI)
        pcap = d / "wire.pcap"
        dump = subprocess.Popen(["taskset", "-c", "0", "tcpdump", "-i", "lo", "-s", "600", "-U", "-w",
                                 str(pcap), f"tcp port {port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        run = {"ours": ours, "guidellm": guidellm, "inference-perf": inference_perf}[name]
        cpu, wall, ok, ttft = run(port, d, trace_file, model)
        time.sleep(0.5)
        dump.terminate()
        dump.wait()
        srv.terminate()
        srv.wait()
        sends, wire_ttft = on_the_wire(pcap, port)
        errors = send_errors(sends)
        # A tool killed before it wrote its records: the wire's answers.
        answered = ok if ok else len(wire_ttft)
        t, w = summary(ttft), summary(wire_ttft)
        print(json.dumps({
            "tool": name, "rate": RATE, "rows": rows, "requests_on_wire": len(sends), "answered": answered,
            "answered_by": "tool" if ok else "wire",
            "client_cpu_s": round(cpu, 2), "wall_s": round(wall, 1),
            "requests_per_cpu_s": round(answered / cpu, 1) if cpu > 0 else None,
            "send_error_ms": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in summary(errors).items()},
            "ttft_ms": t, "wire_ttft_ms": w,
            "ttft_error_ms": {q: (round(t[q] - w[q], 3) if t[q] is not None and w[q] is not None else None)
                              for q in ("p50", "p99")},
        }), flush=True)


if __name__ == "__main__":
    main()
