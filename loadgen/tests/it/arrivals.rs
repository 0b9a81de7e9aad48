//! The open model's arrival shapes through the binary: a rate ramping
//! through stages, and gamma arrivals with a burstiness factor. The
//! schedule is what is asserted (the records' intended starts), not how
//! late the machine sent them.

use crate::support::{checked_report, passed_unless_distrusted, records, run_bin, temp_dir};

fn scheduled_s(load: &str, name: &str) -> Vec<f64> {
    let dir = temp_dir(name);
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\nduration = \"4s\"\nwarmup = \"0s\"\n[server]\nargs = [\"--profile\", \"fast\", \"--first-token-ms\", \"5\", \"--token-interval-ms\", \"0\"]\n[request]\naudio = false\n[load]\nmodel = \"open\"\nmax_lateness = \"30s\"\n{load}"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = run_bin(&file, &out, &[]);
    passed_unless_distrusted(o.status.code(), &checked_report(&out));
    let mut at: Vec<f64> = records(&out)
        .iter()
        .map(|r| r.scheduled_us.unwrap() as f64 / 1e6)
        .collect();
    at.sort_by(f64::total_cmp);
    at
}

#[test]
fn stages_ramp_the_rate_and_gamma_arrivals_are_bursty() {
    // 5/s ramping to 25/s over 3 s, then 25/s: 8.3, 15, 21.7, 25 a second.
    let at = scheduled_s(
        "rate = 5.0\nstages = [{ target = 25.0, duration = \"3s\" }]\n",
        "arrivals-stages",
    );
    let per_second: Vec<usize> = (0..4)
        .map(|s| at.iter().filter(|t| t.floor() as usize == s).count())
        .collect();
    for (got, want) in per_second.iter().zip([8.33, 15.0, 21.67, 25.0]) {
        assert!((*got as f64 - want).abs() <= 1.0, "{per_second:?}");
    }

    // Gamma gaps of shape 0.25 at 25/s: the same mean gap, and gaps that
    // vary about twice as much as a Poisson process's (cv 1/sqrt(0.25)).
    let at = scheduled_s(
        "rate = 25.0\narrival = \"gamma\"\nburstiness = 0.25\n",
        "arrivals-gamma",
    );
    let gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let cv = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n).sqrt() / mean;
    assert!(gaps.len() >= 50, "{} arrivals", at.len());
    assert!(cv > 1.4, "cv {cv} over {} gaps", gaps.len());
}
