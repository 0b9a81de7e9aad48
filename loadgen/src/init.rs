//! `loadgen init`: a scenario and an SLO file to start from, for the
//! target at hand. The target is probed: the guide's health endpoint
//! means `chat-v1` (judged by the guide's KPIs), an OpenAI model list
//! means `openai-chat` with its first model (judged by an LLM's first
//! token, inter-token latency and success rate), anything else gets a
//! commented `template` skeleton to fill in. The files are then read as
//! `run --dry-run` reads them, and nothing is ever overwritten.

use crate::cli::InitFlags;
use crate::client::Reach;
use crate::scrape::{ScrapeError, Scraper};
use slo::scenario::ProtocolName;
use std::path::{Path, PathBuf};

/// What the probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub protocol: ProtocolName,
    /// The OpenAI model to ask for.
    pub model: Option<String>,
    /// What was asked and answered, for the console.
    pub notes: Vec<String>,
}

/// The files written: the scenario's path, the SLO file's.
pub fn init(args: &InitFlags) -> anyhow::Result<(PathBuf, PathBuf, Found)> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if args.name.is_empty() || !args.name.chars().all(ok) {
        anyhow::bail!(
            "--name {:?}: letters, digits, - _ . only (it names the files and the runs)",
            args.name
        );
    }
    let scenario = args.dir.join(format!("{}.toml", args.name));
    let slo = args.dir.join(format!("{}-slo.toml", args.name));
    for p in [&scenario, &slo] {
        if p.exists() {
            anyhow::bail!(
                "{} exists: init never overwrites a file; move it away or give another --name",
                p.display()
            );
        }
    }
    // Checked (and their variables read) whether or not there is a probe.
    let headers = slo::headers::resolve(&Default::default(), &args.headers, |n| {
        std::env::var(n).ok()
    })
    .map_err(|e| anyhow::anyhow!("-H: {e}"))?;
    let found = match &args.target {
        None => Found {
            protocol: args.protocol.map(Into::into).unwrap_or_default(),
            model: Some(server::openai::MODEL.into()),
            notes: vec!["no --target: the embedded reference server".into()],
        },
        Some(url) => {
            let client = crate::client::build(&Reach {
                headers,
                ca_cert: args.ca_cert.clone(),
                insecure: args.insecure,
            })?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(probe(
                &Scraper::with_client(url, client),
                args.protocol.map(Into::into),
            ))?
        }
    };
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| anyhow::anyhow!("cannot make the folder {}: {e}", args.dir.display()))?;
    let slo_name = slo.file_name().unwrap_or_default().to_string_lossy();
    let text = scenario_text(args, &found, &slo_name);
    std::fs::write(&scenario, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", scenario.display()))?;
    std::fs::write(&slo, slo_text(&args.name, found.protocol))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", slo.display()))?;
    Ok((scenario, slo, found))
}

/// Asks the target what it speaks, unless `--protocol` said: the
/// guide's health endpoint first (a server with both, as the reference
/// server, is a chat-v1 backend first), then OpenAI's model list. Read as
/// every monitoring answer is (`Scraper`: bounded, errors naming the URL).
async fn probe(target: &Scraper, want: Option<ProtocolName>) -> anyhow::Result<Found> {
    let mut notes = Vec::new();
    let found = |protocol, model, notes| Found {
        protocol,
        model,
        notes,
    };
    if want.is_none() || want == Some(ProtocolName::ChatV1) {
        let health = slo::monitoring::paths::HEALTH;
        match target.get(health).await {
            // The guide's health answer: 200, or 503 when unhealthy.
            Ok((200 | 503, j)) if j["status"].is_string() => {
                let u = target.url(health);
                notes.push(format!(
                    "{u}: the guide's health endpoint ({})",
                    j["status"]
                ));
                return Ok(found(ProtocolName::ChatV1, None, notes));
            }
            Ok((status, _)) => notes.push(format!(
                "{}: HTTP {status}, not the guide's health answer",
                target.url(health)
            )),
            Err(e @ ScrapeError::Unreachable { .. }) => anyhow::bail!(
                "{e}: the target does not answer; check --target and that it is up (https with a private CA: --ca-cert FILE)"
            ),
            Err(e) => notes.push(e.to_string()),
        }
    }
    if want.is_none() || want == Some(ProtocolName::OpenaiChat) {
        let models = slo::openai::MODELS_PATH;
        match target.get(models).await {
            Ok((200, j)) => match j["data"][0]["id"].as_str() {
                Some(m) => {
                    let u = target.url(models);
                    notes.push(format!("{u}: an OpenAI model list, the first model {m:?}"));
                    return Ok(found(ProtocolName::OpenaiChat, Some(m.to_owned()), notes));
                }
                None => notes.push(format!(
                    "{}: HTTP 200, but no model in `data`",
                    target.url(models)
                )),
            },
            Ok((status, _)) => notes.push(format!(
                "{}: HTTP {status}, not an OpenAI model list",
                target.url(models)
            )),
            Err(e) => notes.push(e.to_string()),
        }
        if want == Some(ProtocolName::OpenaiChat) {
            notes.push("set [openai] model to your model's name".into());
            return Ok(found(ProtocolName::OpenaiChat, None, notes));
        }
    }
    Ok(found(ProtocolName::Template, None, notes))
}

/// The `[headers]` table of the given `-H` flags, as given (a value
/// `${VAR}` stays a reference, read from the environment at run time).
fn headers_table(flags: &[String]) -> String {
    let lines: Vec<String> = flags
        .iter()
        .filter_map(|h| h.split_once(':'))
        .map(|(n, v)| format!("{:?} = {:?}", n.trim(), v.trim()))
        .collect();
    if lines.is_empty() {
        "# [headers]                     # on every request; ${NAME} from the environment\n# Authorization = \"Bearer ${API_KEY}\"\n".into()
    } else {
        format!(
            "[headers]                       # ${{NAME}} is read from the environment at run time\n{}\n",
            lines.join("\n")
        )
    }
}

/// The `[tls]` table of `--ca-cert` and `--insecure` (the CA's path made
/// absolute: the scenario's paths are relative to its own folder).
fn tls_table(args: &InitFlags) -> String {
    let mut lines = Vec::new();
    if let Some(ca) = &args.ca_cert {
        let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.clone());
        lines.push(format!("ca_cert = {:?}", ca.display().to_string()));
    }
    if args.insecure {
        lines.push("insecure = true                # no certificate check".into());
    }
    if lines.is_empty() {
        String::new()
    } else {
        format!("[tls]\n{}\n\n", lines.join("\n"))
    }
}

fn scenario_text(args: &InitFlags, found: &Found, slo_file: &str) -> String {
    let target = match &args.target {
        Some(t) => format!("target = {t:?}"),
        None => "# target = \"https://staging.example\"   # absent: the embedded reference server"
            .into(),
    };
    let (protocol, table, audio) = match found.protocol {
        ProtocolName::ChatV1 => ("", String::new(), true),
        ProtocolName::OpenaiChat => {
            let (model, why) = match &found.model {
                Some(m) => (m.clone(), "the first of the server's /v1/models"),
                None => ("EDIT-your-model".into(), "EDIT: your model's name"),
            };
            (
                "protocol = \"openai-chat\"\n",
                format!(
                    "[openai]\nmodel = {model:?}    # {why}\nmax_tokens = 256\n# temperature = 0.7\n# extra = {{ top_p = 0.9 }}\n\n"
                ),
                false,
            )
        }
        ProtocolName::Template => ("protocol = \"template\"\n", format!("{TEMPLATE}\n"), false),
    };
    let notes: String = found.notes.iter().map(|n| format!("#   {n}\n")).collect();
    format!(
        "# Written by `loadgen init` for {what}; the probe found:\n{notes}\
         # Every key: the manual, docs/scenarios.md. Check with\n\
         #   loadgen run {name}.toml --dry-run\n\
         name = {name:?}\n\
         {target}\n\
         {protocol}\
         duration = \"60s\"               # the measured part\n\
         warmup = \"10s\"                 # runs first; excluded from every figure\n\
         slo = {slo_file:?}\n\
         min_requests = 200             # go on past duration until this many measured requests\n\
         until_conclusive = true        # ... and until every percentile objective is decided\n\
         max_duration = \"5m\"\n\n\
         {headers}\n\
         {tls}\
         {table}\
         [load]\n\
         model = \"closed\"               # or \"open\" with rate = requests per second\n\
         users = 10\n\
         ramp_up = \"5s\"\n\n\
         [request]\n\
         audio = {audio}\n\
         repeat_ratio = 0.7             # prompts asked again, so the caches have something to hit\n\
         timeout = \"30s\"\n",
        what = args
            .target
            .as_deref()
            .unwrap_or("the embedded reference server"),
        name = args.name,
        headers = headers_table(&args.headers),
        tls = tls_table(args),
    )
}

/// A template to fill in: a JSON body with the prompt, and rules for the
/// events a JSON-over-SSE chat API commonly sends.
const TEMPLATE: &str = r#"# The target answered neither the guide's health endpoint nor an OpenAI
# model list: describe its API here (docs/protocols.md, "Your own wire
# format"). EDIT the path, the body and the event rules to your API's.
[template]
method = "POST"
path = "/chat"                   # EDIT: your streaming endpoint
# Placeholders: {{prompt}}, {{client_id}}, {{chatbot_id}} (JSON-escaped:
# put them inside quotes), {{seq}} (a number), {{audio}} (true/false).
body = '{"message": "{{prompt}}", "stream": true}'   # EDIT: your request body

# Rules, first match wins; `name` is the SSE event name, `when` a field's
# value; paths are dotted (array items by number: choices.0.delta.content).
[[template.event]]
name = "error"
kind = "error"
text = "message"

[[template.event]]
name = "done"
kind = "done"

[[template.event]]
name = "message"                 # an event without an `event:` line is a "message"
kind = "token"
text = "text"                    # EDIT: the field that holds a token's text
"#;

fn slo_text(name: &str, protocol: ProtocolName) -> String {
    match protocol {
        ProtocolName::ChatV1 => format!(
            "# Written by `loadgen init`: the monitoring guide's KPIs (docs/monitoring-guide.md),\n# as scenarios/slo/kpi.toml has them.\n{}",
            KPI.replacen("name = \"kpi\"", &format!("name = \"{name}\""), 1)
        ),
        _ => format!(
            "# Written by `loadgen init`: an LLM server's first token, inter-token\n\
             # latency and success rate, with the guide's levels where it has them\n\
             # (docs/slo.md: every figure an objective can judge).\n\
             name = {name:?}\n\
             description = \"First token, inter-token latency and success rate\"\n\n\
             [[objective]]\n\
             name = \"first token p95\"\n\
             metric = \"scheduled_latency_ms.first_token.p95\"   # from each request's intended start\n\
             direction = \"max\"\n\
             target = 500\n\
             warning = 1000\n\
             critical = 2000\n\n\
             [[objective]]\n\
             name = \"inter-token p95\"\n\
             metric = \"latency_ms.inter_token.p95\"\n\
             direction = \"max\"\n\
             target = 50\n\
             warning = 100\n\
             critical = 200\n\n\
             [[objective]]\n\
             name = \"success rate\"\n\
             metric = \"requests.success_rate\"\n\
             direction = \"min\"\n\
             target = 99\n\
             warning = 98\n\
             critical = 95\n"
        ),
    }
}

/// The guide's KPIs as the shipped SLO file has them.
const KPI: &str = include_str!("../../scenarios/slo/kpi.toml");

/// The files, read as `run --dry-run` reads them: the plan, or why not.
pub fn check(scenario: &Path) -> anyhow::Result<String> {
    use clap::Parser;
    let cli = crate::cli::Cli::try_parse_from([
        std::ffi::OsStr::new("loadgen"),
        std::ffi::OsStr::new("run"),
        scenario.as_os_str(),
        std::ffi::OsStr::new("--dry-run"),
    ])?;
    let crate::cli::Command::Run(args) = cli.command else {
        unreachable!("the words above are a run");
    };
    Ok(crate::plan::Plan::from_args(&args)?.describe())
}
