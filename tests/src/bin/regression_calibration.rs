//! The regression watch's false-alarm rate and power, over many seeds (docs/regressions.md):
//!
//!   cargo run --release -p task-timing-tests --bin regression_calibration [SEEDS]
//!
//! Equal revisions are two revisions of the same generated profile; slower ones pull an image that takes
//! 4 s or 12 s longer at the median (start-up ≈ 37.5 s: about +11 % and +32 %). Pure: no services.

use std::time::Instant;

use task_summary::regressions::{SIGNIFICANCE, Settings};
use task_timing_tests::calibration::{Tally, tally, tally_looks, wilson_95};
use task_timing_tests::generator::Profile;
use timing_domain::request::{DEFAULT_MIN_CHANGE, DEFAULT_MIN_TASKS};

fn main() -> Result<(), String> {
    let seeds: u64 = match std::env::args().nth(1) {
        None => 10_000,
        Some(text) => text
            .parse()
            .map_err(|_| format!("SEEDS must be a whole number, got {text:?}"))?,
    };
    let settings = Settings {
        min_tasks: DEFAULT_MIN_TASKS,
        min_change: DEFAULT_MIN_CHANGE,
    };
    let baseline = Profile::without_index("web", 1);
    let slower = |extra_pull: f64| Profile {
        image_pull: (baseline.image_pull.0 + extra_pull, baseline.image_pull.1),
        ..Profile::without_index("web", 2)
    };
    let equal = Profile::without_index("web", 2);
    // Fewer trials where each costs more (200 tasks a side) or where the rate is far from α (power).
    let rows: [(&str, &Profile, usize, u64); 7] = [
        ("equal", &equal, 24, seeds),
        ("equal", &equal, 50, seeds),
        ("equal", &equal, 200, seeds / 5),
        ("pull +4 s (start-up ≈ +11 %)", &slower(4.0), 24, seeds / 10),
        ("pull +4 s (start-up ≈ +11 %)", &slower(4.0), 200, seeds / 10),
        ("pull +12 s (start-up ≈ +32 %)", &slower(12.0), 24, seeds / 10),
        ("pull +12 s (start-up ≈ +32 %)", &slower(12.0), 50, seeds / 10),
    ];
    println!(
        "Significance {SIGNIFICANCE}, minChange {DEFAULT_MIN_CHANGE}, minTasks {DEFAULT_MIN_TASKS}; tasks include the generator's 4 % failed starts (no start-up).\n"
    );
    println!(
        "| newest revision | tasks a side | trials | p < {SIGNIFICANCE} either way | 95 % CI | flagged: start-up regression | 95 % CI |"
    );
    println!("| --- | ---: | ---: | ---: | --- | ---: | --- |");
    let started = Instant::now();
    for (offset, (name, candidate, tasks, trials)) in rows.into_iter().enumerate() {
        // Different seeds for every row, so rows are independent.
        let first = offset as u64 * 1_000_000;
        let Tally {
            trials,
            significant,
            flagged,
        } = tally(first..first + trials, tasks, &baseline, candidate, settings);
        let rate = |hits: usize| format!("{:.2} % ({hits})", hits as f64 * 100.0 / trials.max(1) as f64);
        let interval = |hits: usize| {
            let (low, high) = wilson_95(hits, trials);
            format!("[{:.2} %, {:.2} %]", low * 100.0, high * 100.0)
        };
        println!(
            "| {name} | {tasks} | {trials} | {} | {} | {} | {} |",
            rate(significant),
            interval(significant),
            rate(flagged),
            interval(flagged)
        );
    }
    // The hourly schedule looks at a release again and again while its tasks accumulate: a release of
    // equal start-up gets many chances to be flagged once.
    let (step, looks) = (20, 10);
    println!(
        "\nOne release looked at every hour as it runs {step} more tasks an hour, {looks} looks (20 to 200 tasks), against 50 tasks of the revision before:\n"
    );
    println!(
        "| newest revision | releases | flagged at some look | 95 % CI | flagged at two looks in a row | 95 % CI |"
    );
    println!("| --- | ---: | ---: | --- | ---: | --- |");
    for (offset, (name, candidate, trials)) in [
        ("equal", &equal, seeds / 5),
        ("pull +12 s (start-up ≈ +32 %)", &slower(12.0), seeds / 10),
    ]
    .into_iter()
    .enumerate()
    {
        let first = (10 + offset as u64) * 1_000_000;
        let looked = tally_looks(first..first + trials, 50, (step, looks), &baseline, candidate, settings);
        let rate = |hits: usize| format!("{:.2} % ({hits})", hits as f64 * 100.0 / looked.trials.max(1) as f64);
        let interval = |hits: usize| {
            let (low, high) = wilson_95(hits, looked.trials);
            format!("[{:.2} %, {:.2} %]", low * 100.0, high * 100.0)
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            looked.trials,
            rate(looked.any_look),
            interval(looked.any_look),
            rate(looked.two_in_a_row),
            interval(looked.two_in_a_row)
        );
    }
    eprintln!("{:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
