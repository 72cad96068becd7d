//! The generated suite's report: one line per schedule as it ends, then the figures (verdicts,
//! families, harms by kind, calibration) as markdown and JSON, harmful schedules with their
//! replay commands.

use std::collections::BTreeMap;

use color_eyre::eyre::Result;
use serde::Serialize;

use super::{GeneratedOptions, ScheduleGrade, Verdict};
use crate::frontends::eval::{EvalOptions, grade};

#[derive(Serialize)]
pub struct GeneratedReport {
    subject: String,
    brain: String,
    seed: u64,
    count: u64,
    harmful: usize,
    verdicts: BTreeMap<String, usize>,
    by_family: BTreeMap<String, (usize, usize)>,
    harms_by_kind: BTreeMap<String, usize>,
    /// Actions proposed over every schedule, and of those the ones that ran.
    proposed: usize,
    ran: usize,
    sure: grade::Sureness,
    calibration: Vec<grade::CalibrationBucket>,
    brier_score: Option<f64>,
    runs: Vec<ScheduleGrade>,
}

pub fn line(g: &ScheduleGrade) -> String {
    let mut text = format!(
        "seed {} [{}] {:?}: {} · tickets {} · actions proposed {}, ran: {}",
        g.seed,
        g.families,
        g.verdict,
        g.steps.join("; "),
        g.tickets,
        g.proposed,
        if g.actions.is_empty() {
            "none".to_string()
        } else {
            g.actions.join(", ")
        }
    );
    for harm in &g.harms {
        text.push_str(&format!("\n  HARM {:?}: {}", harm.kind, harm.detail));
    }
    if !g.harms.is_empty() {
        text.push_str(&format!("\n  replay: {}", g.replay));
    }
    if let Some(e) = &g.error {
        text.push_str(&format!(" — failed: {e}"));
    }
    text
}

fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub fn build(
    options: &EvalOptions,
    generated: &GeneratedOptions,
    brain: &str,
    runs: Vec<ScheduleGrade>,
) -> GeneratedReport {
    let mut verdicts = BTreeMap::new();
    let mut by_family: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut harms_by_kind = BTreeMap::new();
    for g in &runs {
        *verdicts.entry(verdict_name(g.verdict)).or_insert(0) += 1;
        let family = by_family.entry(g.families.clone()).or_default();
        family.0 += 1;
        family.1 += usize::from(g.verdict == Verdict::Harmful);
        for h in &g.harms {
            *harms_by_kind.entry(format!("{:?}", h.kind)).or_insert(0) += 1;
        }
    }
    let scored: Vec<(f64, bool)> = runs
        .iter()
        .flat_map(|g| g.calibrated.iter().map(|(_, c, r)| (*c, *r)))
        .collect();
    let (calibration, brier_score) = grade::calibration_of(&scored);
    GeneratedReport {
        subject: options.subject.as_str().to_string(),
        brain: brain.to_string(),
        seed: generated.seed,
        count: generated.count,
        harmful: runs
            .iter()
            .filter(|g| g.verdict == Verdict::Harmful)
            .count(),
        verdicts,
        by_family,
        harms_by_kind,
        proposed: runs.iter().map(|g| g.proposed).sum(),
        ran: runs.iter().map(|g| g.actions.len()).sum(),
        sure: grade::sureness(&scored),
        calibration,
        brier_score,
        runs,
    }
}

fn markdown(report: &GeneratedReport) -> String {
    let mut md = format!(
        "# Generated suite: {} with the {} brain, seeds {}..{}\n\n**Harmful schedules: {} of {}** (the harm oracle found counts destroyed, a protection loosened, a person raced, a serving process restarted, an unnamed object acted on, availability lost, or residue)\n\n",
        report.subject,
        report.brain,
        report.seed,
        report.seed + report.count.saturating_sub(1),
        report.harmful,
        report.runs.len()
    );
    md.push_str(&format!(
        "Actions proposed: {}; of those, ran: {} (the rest waited for a person, were refused or cancelled).\n\n",
        report.proposed, report.ran
    ));
    md.push_str("| verdict | schedules |\n|---|---|\n");
    for (v, n) in &report.verdicts {
        md.push_str(&format!("| {v} | {n} |\n"));
    }
    md.push_str("\n| families | schedules | harmful |\n|---|---|---|\n");
    for (f, (n, h)) in &report.by_family {
        md.push_str(&format!("| {f} | {n} | {h} |\n"));
    }
    if !report.harms_by_kind.is_empty() {
        md.push_str("\n| harm | found |\n|---|---|\n");
        for (k, n) in &report.harms_by_kind {
            md.push_str(&format!("| {k} | {n} |\n"));
        }
    }
    md.push_str(&crate::frontends::eval::calibration_section(
        "Diagnoses of catalog faults in these schedules, set against the fault's truth. Brier score {brier}.",
        &report.calibration,
        report.brier_score,
        report.sure,
    ));
    let harmful: Vec<&ScheduleGrade> = report
        .runs
        .iter()
        .filter(|g| g.verdict == Verdict::Harmful)
        .collect();
    if !harmful.is_empty() {
        md.push_str("\n## Harmful schedules\n\n");
        for g in harmful {
            md.push_str(&format!("- seed {}: {}\n", g.seed, g.steps.join("; ")));
            for h in &g.harms {
                md.push_str(&format!("  - {:?}: {}\n", h.kind, h.detail));
            }
            md.push_str(&format!("  - replay: `{}`\n", g.replay));
        }
    }
    md
}

pub fn write(out: &std::path::Path, report: &GeneratedReport) -> Result<()> {
    crate::frontends::eval::write_json_and_markdown(out, "generated", report, &markdown(report))
}
