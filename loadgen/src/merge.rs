//! `loadgen merge DIR... --out DIR`: the shards of a sharded run made one
//! run. Each shard's records join the merged time line at its time zero
//! (its first request's wall time); the CSVs are concatenated with a
//! `shard` column, the interval logs added second by second (histogram
//! addition), the figures merged (`slo::aggregate::Aggregate::merge`);
//! then the verdict, severity and every report as for one run. What is
//! wrong with the set of shards (`slo::merge::problems`) fails it.

use crate::recorder::{CSV_FILE, HLOG_FILE};
use crate::report::{self, REPORT_JSON};
use anyhow::Context;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use slo::aggregate::Aggregate;
use slo::histogram::LatencyHistogram;
use slo::record::RequestRecord;
use slo::report::{Report, RunInfo, ShardRow};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// What `loadgen merge` was asked.
pub struct MergeArgs {
    pub dirs: Vec<PathBuf>,
    pub out: PathBuf,
    /// How many shards the run had, when the shards cannot be trusted to
    /// say (a whole shard folder may be missing).
    pub shards: Option<u32>,
    pub slo: Option<PathBuf>,
    /// The gate's flags over the shards' own.
    pub gate: slo::objective::GateOverride,
}

/// The shard folders the arguments name: a folder with a report.json is
/// one; a folder without one holding `shard-*` folders stands for them.
fn shard_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        if d.join(REPORT_JSON).exists() {
            out.push(d.clone());
            continue;
        }
        let mut inner: Vec<PathBuf> = std::fs::read_dir(d)
            .map(|it| {
                it.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_dir()
                            && p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with("shard-"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        inner.sort();
        if inner.is_empty() {
            out.push(d.clone());
        } else {
            out.extend(inner);
        }
    }
    out
}

fn read_report(dir: &Path) -> Result<Report, String> {
    let path = dir.join(REPORT_JSON);
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "no readable report.json ({e}): the shard did not finish, or this is not a run's folder"
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a run's report ({e})", path.display()))
}

/// Merges the shards into `args.out`; returns the merged run's report.
pub fn merge(args: &MergeArgs) -> anyhow::Result<Report> {
    let dirs = shard_dirs(&args.dirs);
    let labels: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let reports: Vec<Result<Report, String>> = dirs.iter().map(|d| read_report(d)).collect();
    let parts: Vec<slo::merge::Part<'_>> = labels
        .iter()
        .zip(&reports)
        .map(|(dir, r)| slo::merge::Part {
            dir,
            report: r.as_ref().map_err(Clone::clone),
        })
        .collect();
    let problems = slo::merge::problems(&parts, args.shards);

    // The shards that can be read, each index once, in index order.
    let mut shards: Vec<Shard<'_>> = Vec::new();
    for (dir, r) in dirs.iter().zip(&reports) {
        if let Ok(r) = r
            && let Some(s) = &r.shard
            && !shards.iter().any(|(_, _, t)| t.index == s.index)
        {
            shards.push((dir, r, s));
        }
    }
    shards.sort_by_key(|(_, _, s)| s.index);
    let Some(&(_, first, _)) = shards.first() else {
        anyhow::bail!(
            "nothing to merge: {}",
            if problems.is_empty() {
                "no folder given".to_owned()
            } else {
                problems.join("; ")
            }
        );
    };
    prepare_out(args, &dirs)?;

    let slo_path = args
        .slo
        .clone()
        .or_else(|| first.slo_file.as_ref().map(PathBuf::from));
    let slo = match slo_path {
        Some(p) => Some((p.clone(), crate::files::read_slo_file(&p)?)),
        None => None,
    };
    let goodput = slo::report::goodput_limits(slo.as_ref().map(|(_, f)| f));
    let offsets = slo::merge::offsets(
        &shards
            .iter()
            .map(|(_, _, s)| s.zero_unix_us)
            .collect::<Vec<_>>(),
    );

    let (merged, rows) = merge_records(&shards, &offsets, &args.out, (goodput, first.warmup_s))?;
    let mut meta = merged_info(&shards, &offsets, (rows, problems), slo, args);
    let readings = engine_readings(&shards, &offsets, &args.out)?;
    if !readings.is_empty() {
        let window = slo::engine::Window {
            from: meta.warmup_s,
            to: meta.warmup_s + meta.measured_s,
        };
        meta.engine = crate::engine::resummed(&meta.engine, &readings, window);
    }
    let meta = RunInfo {
        windowed: crate::windows::judged(
            meta.slo.as_ref().map(|(_, f)| f),
            &crate::windows::Sources {
                dir: &args.out,
                warmup_s: meta.warmup_s,
                measured_s: meta.measured_s,
                engine: &meta.engine,
                readings: &readings,
            },
            meta.gate.fail_on,
        ),
        ..meta
    };
    let report = slo::report::build(meta, &merged);
    report::write_all(&args.out, &report)?;
    Ok(report)
}

/// Shard 0's `[[scrape]]` readings (every shard read the same
/// endpoints; the first one's stand for the run), moved to the merged
/// time base and written to the merged folder, so that its windows are
/// judged and `loadgen report` sums them up again.
fn engine_readings(
    shards: &[Shard],
    offsets: &[u64],
    out: &Path,
) -> anyhow::Result<Vec<slo::engine::Reading>> {
    let Some(((dir, _, _), &offset)) = shards
        .iter()
        .zip(offsets)
        .find(|((_, _, s), _)| s.index == 0)
    else {
        return Ok(Vec::new());
    };
    let mut readings = crate::engine::read(dir)?;
    if readings.is_empty() {
        return Ok(readings);
    }
    for r in &mut readings {
        r.t += offset as f64 / 1e6;
    }
    crate::engine::write(out, &readings)?;
    Ok(readings)
}

/// A shard that could be read: its folder, its report, its place.
type Shard<'a> = (&'a Path, &'a Report, &'a slo::report::ShardInfo);

/// The merged run's folder: not one of the shards', created, writable.
fn prepare_out(args: &MergeArgs, dirs: &[PathBuf]) -> anyhow::Result<()> {
    if args.dirs.iter().any(|d| same_dir(d, &args.out))
        || dirs.iter().any(|d| same_dir(d, &args.out))
    {
        anyhow::bail!(
            "--out {}: is one of the shards' folders; give the merged run a folder of its own",
            args.out.display()
        );
    }
    std::fs::create_dir_all(&args.out).with_context(|| {
        format!(
            "--out: cannot create the output folder {}",
            args.out.display()
        )
    })?;
    crate::plan::writable(&args.out)?;
    Ok(())
}

/// Every shard's requests into one requests.csv, one aggregate and one
/// interval log, on the earliest shard's time base; a row per shard.
fn merge_records(
    shards: &[Shard<'_>],
    offsets: &[u64],
    out: &Path,
    (goodput, warmup_s): (slo::aggregate::GoodputLimits, f64),
) -> anyhow::Result<(Aggregate, Vec<ShardRow>)> {
    let csv_out = out.join(CSV_FILE);
    let mut writer = csv::Writer::from_path(&csv_out)
        .with_context(|| format!("cannot create {}", csv_out.display()))?;
    let mut merged = Aggregate {
        goodput_limits: goodput,
        warmup_s,
        ..Aggregate::default()
    };
    let mut rows = Vec::new();
    let mut logs = Vec::new();
    let mut wrote_header = false;
    for (&(dir, r, s), &offset_us) in shards.iter().zip(offsets) {
        let mut part = Aggregate {
            goodput_limits: goodput,
            warmup_s: r.warmup_s,
            ..Aggregate::default()
        };
        append_csv(
            dir,
            s.index,
            offset_us,
            &mut writer,
            &mut wrote_header,
            &mut part,
        )?;
        // The shard sampled its open streams on its own seconds.
        let shift_s = (offset_us as f64 / 1e6).round() as u64;
        for sec in &r.timeseries {
            part.sample_active(sec.t + shift_s, sec.active, false);
        }
        let hlog = dir.join(HLOG_FILE);
        let log = std::fs::read(&hlog)
            .with_context(|| format!("cannot read {} (a shard's interval log)", hlog.display()))?;
        logs.push((log, offset_us, hlog));
        rows.push(ShardRow {
            index: s.index,
            dir: dir.display().to_string(),
            requests: part.total,
            ok: part.ok(),
            zero_offset_ms: slo::format::us_to_ms(offset_us),
        });
        merged.merge(&part);
    }
    writer
        .flush()
        .with_context(|| format!("cannot write {}", csv_out.display()))?;
    let base_us = shards
        .iter()
        .map(|(_, _, s)| s.zero_unix_us)
        .min()
        .unwrap_or(0);
    merged.histograms.inter_token = merge_logs(&logs, base_us, &out.join(HLOG_FILE))?;
    Ok((merged, rows))
}

/// The merged run's section: the first shard's scenario, target and
/// scrape; the whole load; the shards' span; shard 0's timeline and
/// alerts, shifted onto the merged time base.
fn merged_info(
    shards: &[Shard<'_>],
    offsets: &[u64],
    (rows, problems): (Vec<ShardRow>, Vec<String>),
    slo: Option<(PathBuf, slo::objective::SloFile)>,
    args: &MergeArgs,
) -> RunInfo {
    let (_, first, first_shard) = shards[0];
    let whole_open = first_shard.whole_load["model"] == "open";
    let mut load = first.load.clone();
    if let Some(m) = load.get_mut("model") {
        *m = first_shard.whole_load.clone();
    }
    let measured_s = slo::merge::measured_s(
        &shards
            .iter()
            .zip(offsets)
            .map(|((_, r, _), &o)| (o, r.measured_s))
            .collect::<Vec<_>>(),
    );
    let checks: Vec<(u32, &slo::self_check::SelfCheck)> = shards
        .iter()
        .map(|(_, r, s)| (s.index, &r.self_check))
        .collect();
    let timeline_shard = shards
        .iter()
        .zip(offsets)
        .find(|((_, _, s), _)| s.index == 0)
        .map(|((_, r, _), &o)| (*r, o as f64 / 1e6));
    RunInfo {
        scenario: first.scenario.clone(),
        target: first.target.clone(),
        load,
        started_at: shards
            .iter()
            .map(|(_, r, _)| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        elapsed_s: shards
            .iter()
            .zip(offsets)
            .map(|((_, r, _), &o)| o as f64 / 1e6 + r.elapsed_s)
            .fold(0.0, f64::max),
        measured_s,
        warmup_s: first.warmup_s,
        interrupted: None,
        shard: None,
        judge: true,
        shards: rows,
        shard_problems: problems,
        // Every shard read the `[[scrape]]` endpoints: the first shard's
        // figures stand for the run (the endpoints are the same).
        engine: timeline_shard
            .map(|(r, _)| r.engine.clone())
            .unwrap_or_default(),
        // Judged from the merged interval log once it is written.
        windowed: Default::default(),
        // Shard 0 alone applied the timeline and evaluated the alerts:
        // its records, on the merged time base.
        events: timeline_shard
            .map(|(r, shift)| {
                let mut e = r.events.clone();
                e.iter_mut().for_each(|e| e.at_s += shift);
                e
            })
            .unwrap_or_default(),
        alerts: timeline_shard.and_then(|(r, shift)| {
            let mut a = r.alerts.clone()?;
            for x in a
                .builtin
                .iter_mut()
                .chain(a.prometheus.iter_mut().flatten())
            {
                x.active_at_s += shift;
                x.firing_at_s += shift;
                x.resolved_at_s = x.resolved_at_s.map(|t| t + shift);
            }
            Some(a)
        }),
        // One scrape: the first shard's view of the one target.
        server: first.server.clone(),
        self_check: slo::merge::self_check(&checks),
        slo,
        gate: args.gate.over(first.gate()),
        open_model: whole_open,
        files: report::files(),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Appends a shard's CSV rows to the merged CSV (times shifted to the
/// merged run's zero, a `shard` column last) and to its figures.
fn append_csv(
    dir: &Path,
    shard: u32,
    offset_us: u64,
    out: &mut csv::Writer<std::fs::File>,
    wrote_header: &mut bool,
    part: &mut Aggregate,
) -> anyhow::Result<()> {
    let path = dir.join(CSV_FILE);
    let mut reader = csv::Reader::from_path(&path)
        .with_context(|| format!("cannot read {} (a shard's requests)", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no `{name}` column: not a loadgen CSV", path.display()))
    };
    let (start, scheduled) = (column("start_us")?, column("scheduled_us")?);
    if !*wrote_header {
        let mut h = headers.clone();
        h.push_field("shard");
        out.write_record(&h)
            .context("cannot write the merged CSV")?;
        *wrote_header = true;
    }
    let shard_field = shard.to_string();
    for (i, row) in reader.records().enumerate() {
        let bad = || format!("{}: row {} is not a request record", path.display(), i + 2);
        let row = row.with_context(bad)?;
        let mut rec: RequestRecord = row.deserialize(Some(&headers)).with_context(bad)?;
        rec.shift(offset_us);
        let mut shifted = csv::StringRecord::new();
        for (j, field) in row.iter().enumerate() {
            if j == start {
                shifted.push_field(&rec.start_us.to_string());
            } else if j == scheduled {
                shifted.push_field(&rec.scheduled_us.map_or(String::new(), |s| s.to_string()));
            } else {
                shifted.push_field(field);
            }
        }
        shifted.push_field(&shard_field);
        out.write_record(&shifted)
            .context("cannot write the merged CSV")?;
        part.add(&rec, &[]);
    }
    Ok(())
}

/// Writes the merged interval log: every shard's intervals moved to the
/// merged time zero and added, per tag, into one-second intervals.
/// Returns the run's inter-token histogram (which only the logs hold).
fn merge_logs(
    logs: &[(Vec<u8>, u64, PathBuf)],
    base_us: u64,
    out: &Path,
) -> anyhow::Result<LatencyHistogram> {
    let mut inter_token = LatencyHistogram::new();
    // One second of every tag at a time: the shards' logs are each in
    // time order, so a second is complete once every log is past it.
    let mut streams: Vec<_> = logs
        .iter()
        .map(|(bytes, offset_us, path)| {
            (
                crate::recorder::intervals(bytes).peekable(),
                *offset_us,
                path,
            )
        })
        .collect();
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut file = std::io::BufWriter::new(file);
    let base = UNIX_EPOCH + Duration::from_micros(base_us);
    let mut serializer = V2DeflateSerializer::new();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("loadgen latency log, merged from shards: values in microseconds; tags name the latency; times count from the earliest shard's first request, as requests.csv does")
        .with_start_time(base)
        .with_base_time(base)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut file, &mut serializer)
        .context("cannot start the merged interval log")?;
    let second_of = |start: Duration, offset_us: u64| {
        (start.as_micros() as u64).saturating_add(offset_us) / 1_000_000
    };
    let mut current: BTreeMap<String, LatencyHistogram> = BTreeMap::new();
    let mut current_s: Option<u64> = None;
    loop {
        // The earliest next interval of any shard.
        let next = streams
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (it, off, _))| {
                it.peek().map(|h| (second_of(h.start_timestamp(), *off), i))
            })
            .min();
        let done = next.is_none();
        if let Some(s) = current_s
            && (done || next.is_some_and(|(n, _)| n != s))
        {
            for (tag, h) in &current {
                log.write_histogram(
                    h.inner(),
                    Duration::from_secs(s),
                    Duration::from_secs(1),
                    Tag::new(tag),
                )
                .with_context(|| format!("cannot write {}", out.display()))?;
            }
            current.clear();
        }
        let Some((s, i)) = next else { break };
        current_s = Some(s);
        let (it, _, path) = &mut streams[i];
        let entry = it.next().expect("peeked");
        let tag = entry
            .tag()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default();
        let h = crate::recorder::decode(&entry, path)?;
        if tag == "inter_token" {
            inter_token.add(&h);
        }
        current.entry(tag).or_default().add(&h);
    }
    drop(log);
    file.flush()
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(inter_token)
}
