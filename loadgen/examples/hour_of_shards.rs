//! Writes the folders of a sharded run that lasted an hour, without
//! running it, for the merge benchmark (BENCHMARKS.md, "Sharded runs"):
//! each shard's requests.csv, its latency.hlog of one interval a second
//! (every tag, as the recorder writes them) and its report.json.
//!
//!   cargo run --release -p loadgen --example hour_of_shards -- DIR [SHARDS] [SECONDS] [RATE]
//!
//! RATE is each shard's requests a second (default 25); latencies are
//! drawn from a seeded generator, so every run writes the same files.

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use slo::aggregate::{Aggregate, Histograms};
use slo::record::{Outcome, RequestRecord};
use slo::report::{Files, RunInfo, ScenarioInfo, ShardInfo, TargetInfo};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().map_or("runs/hour-of-shards", String::as_str));
    let shards: u32 = args.get(1).map_or(Ok(4), |s| s.parse())?;
    let seconds: u64 = args.get(2).map_or(Ok(3600), |s| s.parse())?;
    let rate: u64 = args.get(3).map_or(Ok(25), |s| s.parse())?;
    let zero = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for index in 0..shards {
        let out = dir.join(format!("shard-{index}"));
        std::fs::create_dir_all(&out)?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(index + 1));
        let offset_us = u64::from(index) * 3_000;
        let mut csv = csv::Writer::from_path(out.join("requests.csv"))?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(out.join("latency.hlog"))?);
        let base = zero + Duration::from_micros(offset_us);
        let mut serializer = V2DeflateSerializer::new();
        let mut log = IntervalLogWriterBuilder::new()
            .with_start_time(base)
            .with_base_time(base)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut file, &mut serializer)?;
        let mut all = Aggregate::default();
        let mut seq = 0;
        for second in 0..seconds {
            let mut interval = Histograms::default();
            for k in 0..rate {
                let first_token = 40_000 + rng.below(400_000);
                let tokens = 80 + rng.below(40) as u32;
                let gaps: Vec<u32> = (1..tokens)
                    .map(|_| 15_000 + rng.below(10_000) as u32)
                    .collect();
                let complete = first_token + gaps.iter().map(|&g| u64::from(g)).sum::<u64>();
                let start = second * 1_000_000 + k * 1_000_000 / rate;
                let r = RequestRecord {
                    seq,
                    user: (seq % 200) as usize,
                    client_id: format!("lg-bench-s{index}-{seq}"),
                    chatbot_id: "60f7b3b3e6b6f40015e6b6f4".into(),
                    scheduled_us: Some(start),
                    start_us: start + rng.below(300),
                    status: Some(200),
                    headers_us: Some(2_000),
                    first_token_us: Some(first_token),
                    first_audio_us: Some(complete + 30_000),
                    complete_us: Some(complete + 60_000),
                    end_us: complete + 60_500,
                    streaming: true,
                    tokens,
                    audio_chunks: 3,
                    outcome: Outcome::Ok,
                    word_count: Some(u64::from(tokens)),
                    kb_cache: Some(if rng.below(10) < 6 { "hit" } else { "miss" }.into()),
                    ..RequestRecord::default()
                };
                csv.serialize(&r)?;
                interval.add(&r, &gaps);
                all.add(&r, &gaps);
                seq += 1;
            }
            for (tag, h) in interval.tagged() {
                if !h.is_empty() {
                    log.write_histogram(
                        h.inner(),
                        Duration::from_secs(second),
                        Duration::from_secs(1),
                        Tag::new(tag),
                    )?;
                }
            }
        }
        drop(log);
        file.flush()?;
        csv.flush()?;
        let info = RunInfo {
            scenario: ScenarioInfo {
                name: "hour-of-shards".into(),
                file: "hour.toml".into(),
                description: "synthetic: the merge benchmark's input".into(),
            },
            target: TargetInfo {
                url: "http://127.0.0.1:9".into(),
                ..TargetInfo::default()
            },
            load: serde_json::json!({ "model": { "model": "open", "rate": rate } }),
            started_at: humantime::format_rfc3339_millis(base).to_string(),
            elapsed_s: seconds as f64,
            measured_s: seconds as f64,
            warmup_s: 0.0,
            interrupted: None,
            shard: Some(ShardInfo {
                index,
                count: shards,
                seed: 1,
                start_at: None,
                zero_unix_us: base.duration_since(UNIX_EPOCH)?.as_micros() as u64,
                whole_load: serde_json::json!({ "model": "open", "rate": rate * u64::from(shards) }),
            }),
            judge: false,
            shards: Vec::new(),
            shard_problems: Vec::new(),
            events: Vec::new(),
            alerts: None,
            engine: Default::default(),
            windowed: Default::default(),
            server: slo::server_view::ServerView::default(),
            self_check: slo::self_check::SelfCheck {
                trustworthy: true,
                ..Default::default()
            },
            slo: None,
            gate: slo::objective::Gate::default(),
            open_model: true,
            files: Files::default(),
        };
        let report = slo::report::build(info, &all);
        std::fs::write(
            out.join("report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
    }
    Ok(())
}
