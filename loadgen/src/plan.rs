//! Raw flags and the scenario file become one validated plan before
//! anything runs.

use crate::RunArgs;
use anyhow::{Context, bail};
use slo::objective::{FailOn, SloFile};
use slo::scenario::{Load, Model, Scenario};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub scenario_file: PathBuf,
    /// `None`: start the reference server in-process.
    pub target: Option<String>,
    pub out: PathBuf,
    pub slo: Option<(PathBuf, SloFile)>,
    pub fail_on: FailOn,
    /// Objectives with no data do not fail the run (`--allow-missing`).
    pub allow_missing: bool,
    /// Inconclusive percentiles do not fail the run (`--accept-inconclusive`).
    pub accept_inconclusive: bool,
    pub quiet: bool,
    /// The objectives a run that sizes itself (`until_conclusive`) waits
    /// to decide; `None`: the SLO file's. A capacity step names its
    /// deciding objectives only.
    pub sizing: Option<Vec<slo::objective::Objective>>,
    /// A run that sizes itself also ends once one of them is shown
    /// breached (a capacity step: the breach decides it).
    pub stop_on_breach: bool,
}

impl Plan {
    /// What fails the run.
    pub fn gate(&self) -> slo::objective::Gate {
        slo::objective::Gate {
            fail_on: self.fail_on,
            allow_missing: self.allow_missing,
            accept_inconclusive: self.accept_inconclusive,
        }
    }

    pub fn from_args(args: &RunArgs) -> anyhow::Result<Plan> {
        let mut scenario = Scenario::from_file(&args.scenario)?;
        if let Some(d) = args.duration {
            scenario.duration = d;
        }
        if let Some(d) = args.max_duration {
            scenario.max_duration = Some(d);
        }
        if let Some(users) = args.users {
            scenario.load = Load {
                model: Model::Closed,
                users: Some(users),
                ramp_up: scenario
                    .load
                    .ramp_up
                    .filter(|_| scenario.load.model == Model::Closed),
                test_plan: None,
                rate: None,
                arrival: Default::default(),
                max_users: None,
                max_lateness: None,
            };
        }
        if let Some(rate) = args.rate {
            let open = scenario.load.model == Model::Open;
            scenario.load = Load {
                model: Model::Open,
                rate: Some(rate),
                users: None,
                ramp_up: None,
                test_plan: None,
                arrival: if open {
                    scenario.load.arrival
                } else {
                    Default::default()
                },
                max_users: scenario.load.max_users.filter(|_| open),
                max_lateness: scenario.load.max_lateness.filter(|_| open),
            };
        }
        if let Some(t) = &args.target {
            scenario.target = Some(t.clone());
        }
        if let Err((key, message)) = scenario.validate() {
            let flag = match key {
                "duration" => "--duration",
                "load.users" => "--users",
                "load.rate" => "--rate",
                "target" => "--target",
                _ => key,
            };
            bail!("{flag}: {message}");
        }
        let base = args
            .scenario
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        let slo_path = match (&args.slo, &scenario.slo) {
            (Some(flag), _) => Some(flag.clone()),
            (None, Some(rel)) => Some(base.join(rel)),
            (None, None) => None,
        };
        let slo = match slo_path {
            Some(p) => {
                let file = SloFile::from_file(&p)?;
                Some((p, file))
            }
            None => None,
        };
        let out = match &args.out {
            Some(o) => o.clone(),
            None => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                PathBuf::from("runs").join(format!("{}-{secs}", scenario.name))
            }
        };
        std::fs::create_dir_all(&out)
            .with_context(|| format!("--out: cannot create the output folder {}", out.display()))?;
        Ok(Plan {
            target: scenario.target.clone(),
            scenario,
            scenario_file: args.scenario.clone(),
            out,
            slo,
            fail_on: args.fail_on.into(),
            allow_missing: args.allow_missing,
            accept_inconclusive: args.accept_inconclusive,
            quiet: args.quiet,
            sizing: None,
            stop_on_breach: false,
        })
    }

    /// Warm-up plus the measured duration.
    pub fn run_length(&self) -> Duration {
        self.scenario.warmup + self.scenario.duration
    }
}
