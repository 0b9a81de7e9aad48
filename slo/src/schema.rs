//! JSON Schemas of the files people write (scenarios, SLO files), of
//! `report.json` and `capacity.json`, and of the monitoring endpoints'
//! answers, generated from the types. The committed copies are checked to
//! be current by the tidy test; `UPDATE_SCHEMAS=1 cargo test -p testkit
//! --test tidy` rewrites them.

use serde_json::Value;

pub fn report() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::report::Report)).expect("a schema serializes")
}

pub fn capacity() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::capacity::CapacityReport))
        .expect("a schema serializes")
}

pub fn scenario() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::scenario::Scenario))
        .expect("a schema serializes")
}

pub fn slo_file() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::objective::SloFile))
        .expect("a schema serializes")
}

fn of<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("a schema serializes")
}

/// A schema and where it is committed, relative to the workspace root.
pub type SchemaFile = (&'static str, fn() -> Value);

pub const FILES: [SchemaFile; 5] = [
    ("reports/schema/report.schema.json", report),
    ("reports/schema/capacity.schema.json", capacity),
    ("reports/schema/ab.schema.json", of::<crate::ab::AbReport>),
    ("scenarios/schema/scenario.schema.json", scenario),
    ("scenarios/schema/slo.schema.json", slo_file),
];

/// The monitoring endpoints' answers ([`crate::monitoring`]): each path and
/// where the schema of its answer is committed.
pub const MONITORING: [(&str, SchemaFile); 7] = {
    use crate::monitoring::{self as m, paths};
    [
        (
            paths::HEALTH,
            (
                "reports/schema/monitoring/health.schema.json",
                of::<m::Health>,
            ),
        ),
        (
            paths::SUMMARY,
            (
                "reports/schema/monitoring/summary.schema.json",
                of::<m::Summary>,
            ),
        ),
        (
            paths::DETAILED,
            (
                "reports/schema/monitoring/detailed.schema.json",
                of::<m::Detailed>,
            ),
        ),
        (
            paths::EVENTS,
            (
                "reports/schema/monitoring/events.schema.json",
                of::<m::Events>,
            ),
        ),
        (
            paths::SYSTEM,
            (
                "reports/schema/monitoring/system.schema.json",
                of::<m::System>,
            ),
        ),
        (
            paths::FEATURE_FLAGS,
            (
                "reports/schema/monitoring/feature-flags.schema.json",
                of::<m::FeatureFlags>,
            ),
        ),
        (
            paths::ROLLOUT,
            (
                "reports/schema/monitoring/rollout.schema.json",
                of::<m::Rollout>,
            ),
        ),
    ]
};

/// The OpenAI endpoint's answers ([`crate::openai`]): a streamed chunk,
/// the one-JSON answer, an error body and the model list.
pub const OPENAI: [SchemaFile; 4] = {
    use crate::openai as o;
    [
        (
            "reports/schema/openai/chat-completion-chunk.schema.json",
            of::<o::ChatCompletionChunk>,
        ),
        (
            "reports/schema/openai/chat-completion.schema.json",
            of::<o::ChatCompletion>,
        ),
        (
            "reports/schema/openai/error.schema.json",
            of::<o::ErrorResponse>,
        ),
        (
            "reports/schema/openai/models.schema.json",
            of::<o::ModelList>,
        ),
    ]
};

/// Every committed schema.
pub fn all() -> impl Iterator<Item = SchemaFile> {
    FILES
        .into_iter()
        .chain(MONITORING.into_iter().map(|(_, f)| f))
        .chain(OPENAI)
}
