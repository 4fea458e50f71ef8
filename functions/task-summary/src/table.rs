//! `"format": "table"`: the same answers as aligned Markdown tables, for reading in a terminal.

use timing_domain::query::RecordQuery;
use timing_domain::timing::Phase;

use timing_dynamodb::ReadCount;

use crate::model::{CompareAnswer, GroupSummary, Source, SummaryAnswer, TasksAnswer, format_p};
use crate::regressions::{RegressionsAnswer, Verdict, labels, percent};

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}
use Align::{Left, Right};

/// Columns padded to their widest cell; the separator row carries the alignment.
fn markdown(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header.chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = String>| format!("| {} |\n", cells.collect::<Vec<_>>().join(" | "));
    let pad = |text: &str, width: usize, align: Align| {
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        match align {
            Left => format!("{text}{fill}"),
            Right => format!("{fill}{text}"),
        }
    };
    let mut text = line(&mut headers.iter().zip(&widths).map(|((h, a), w)| pad(h, *w, *a)));
    text += &line(&mut headers.iter().zip(&widths).map(|((_, a), w)| match a {
        Left => "-".repeat(*w),
        Right => format!("{}:", "-".repeat(w - 1)),
    }));
    for row in rows {
        text += &line(
            &mut row
                .iter()
                .zip(headers.iter().zip(&widths))
                .map(|(c, ((_, a), w))| pad(c, *w, *a)),
        );
    }
    text
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}"))
}

fn signed(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |s| format!("{s:+.3}"))
}

fn describe_filters(filters: &RecordQuery) -> String {
    let mut parts = vec![format!("family {}", filters.family)];
    if let Some(account) = &filters.account {
        parts.push(format!("account {account}"));
    }
    if let Some(region) = &filters.region {
        parts.push(format!("region {region}"));
    }
    if let Some(cluster) = &filters.cluster {
        parts.push(format!("cluster {cluster}"));
    }
    if !filters.revisions.is_empty() {
        let revisions: Vec<String> = filters.revisions.iter().map(u32::to_string).collect();
        parts.push(format!("revisions {}", revisions.join(",")));
    }
    if let Some(launch_type) = &filters.launch_type {
        parts.push(format!("launch type {launch_type}"));
    }
    if let Some(snapshotter) = &filters.snapshotter {
        parts.push(format!("snapshotter {snapshotter}"));
    }
    parts.push(format!("createdAt in [{}, {})", filters.from, filters.to));
    parts.join(", ")
}

fn describe_read(read: &ReadCount, source: Source) -> String {
    let items = source.items();
    format!(
        "{} {items} read, {} matched, {} Query call{}",
        read.items_read,
        read.items_matched,
        read.query_calls,
        if read.query_calls == 1 { "" } else { "s" }
    )
}

pub fn summary_table(answer: &SummaryAnswer) -> String {
    let mut text = format!(
        "Summary: {} ({}). Seconds; percentiles by {}. Precision: {}.\n\n",
        describe_filters(&answer.filters),
        describe_read(&answer.read, answer.source),
        answer.percentiles,
        answer.precision
    );
    let key_headers: Vec<(&str, Align)> = answer.group_by.iter().map(|name| (*name, Left)).collect();
    let key_cells = |group: &GroupSummary| -> Vec<String> {
        answer.group_by.iter().map(|name| group.key[name].to_string()).collect()
    };
    let mut headers = key_headers.clone();
    headers.extend([
        ("tasks", Right),
        ("started", Right),
        ("stopped", Right),
        ("failed to start", Right),
        ("timestamp anomalies", Right),
        ("not ready", Right),
    ]);
    let rows: Vec<Vec<String>> = answer
        .groups
        .iter()
        .map(|group| {
            let c = group.counts;
            let mut row = key_cells(group);
            row.extend(
                [
                    c.tasks,
                    c.started,
                    c.stopped,
                    c.failed_to_start,
                    c.timestamp_anomalies,
                    c.not_ready,
                ]
                .map(|n| n.to_string()),
            );
            row
        })
        .collect();
    text += &markdown(&headers, &rows);
    text.push('\n');
    let mut headers = key_headers;
    headers.push(("phase", Left));
    headers.extend(["count", "mean", "stddev", "min", "p50", "p90", "p95", "p99", "max"].map(|h| (h, Right)));
    let mut rows = Vec::new();
    for group in &answer.groups {
        for phase in &group.phases {
            let mut row = key_cells(group);
            row.push(phase.phase.to_owned());
            row.push(phase.count.to_string());
            let v = phase.values.as_ref();
            row.extend(
                [
                    v.map(|v| v.mean),
                    v.map(|v| v.stddev),
                    v.map(|v| v.min),
                    v.map(|v| v.p50),
                    v.map(|v| v.p90),
                    v.map(|v| v.p95),
                    v.map(|v| v.p99),
                    v.map(|v| v.max),
                ]
                .map(seconds),
            );
            rows.push(row);
        }
    }
    text + &markdown(&headers, &rows)
}

pub fn compare_table(answer: &CompareAnswer) -> String {
    let mut text = format!(
        "Compare: baseline = {} ({}); candidate = {} ({}).\nSeconds; differences are candidate − baseline (negative: candidate faster). Precision: {}.\n\n",
        describe_filters(&answer.baseline.filters),
        describe_read(&answer.baseline.read, answer.source),
        describe_filters(&answer.candidate.filters),
        describe_read(&answer.candidate.read, answer.source),
        answer.precision,
    );
    let arrow = |base: Option<f64>, cand: Option<f64>| format!("{} → {}", seconds(base), seconds(cand));
    let ratio = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"));
    let rows: Vec<Vec<String>> = answer
        .phases
        .iter()
        .map(|p| {
            vec![
                p.phase.to_owned(),
                format!("{} / {}", p.baseline.count, p.candidate.count),
                arrow(p.baseline.p50, p.candidate.p50),
                signed(p.p50_difference),
                ratio(p.p50_ratio),
                arrow(p.baseline.mean, p.candidate.mean),
                signed(p.mean_difference),
                arrow(p.baseline.p90, p.candidate.p90),
            ]
        })
        .collect();
    text += &markdown(
        &[
            ("phase", Left),
            ("n (base / cand)", Right),
            ("p50 base → cand", Right),
            ("Δ p50", Right),
            ("p50 ratio", Right),
            ("mean base → cand", Right),
            ("Δ mean", Right),
            ("p90 base → cand", Right),
        ],
        &rows,
    );
    text.push('\n');
    let rows: Vec<Vec<String>> = answer
        .phases
        .iter()
        .map(|p| {
            let test = p.mann_whitney.as_ref();
            vec![
                p.phase.to_owned(),
                test.map_or_else(|| "-".to_owned(), |t| format_p(t.p_value)),
                test.map_or_else(|| "-".to_owned(), |t| format!("{:.3}", t.probability_candidate_shorter)),
                p.median_difference_ci95
                    .map_or_else(|| "-".to_owned(), |[low, high]| format!("[{low:+.3}, {high:+.3}]")),
                p.verdict.clone(),
            ]
        })
        .collect();
    text += &markdown(
        &[
            ("phase", Left),
            ("p (Mann–Whitney)", Right),
            ("P(cand shorter)", Right),
            ("95% CI of Δ median", Right),
            ("verdict", Left),
        ],
        &rows,
    );
    text
}

pub fn regressions_table(answer: &RegressionsAnswer) -> String {
    let mut scope: Vec<String> = [
        answer.family.as_ref().map(|f| format!("family {f}")),
        answer.account.as_ref().map(|a| format!("account {a}")),
        answer.region.as_ref().map(|r| format!("region {r}")),
        answer.cluster.as_ref().map(|c| format!("cluster {c}")),
        answer.launch_type.as_ref().map(|l| format!("launch type {l}")),
        answer.snapshotter.as_ref().map(|s| format!("snapshotter {s}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if scope.is_empty() {
        scope.push("every family".to_owned());
    }
    let flagged = match answer.startup_regressions.as_slice() {
        [] => "none".to_owned(),
        families => families.join(", "),
    };
    let mut text = format!(
        "Regressions: {}, createdAt in [{}, {}) ({}). Newest revision against the one before; a regression is p < {} \
         (Mann-Whitney, two-sided), newest slower, p50 at least {:.0} % longer, at least {} values a side.\n\
         Start-up regressions: {flagged}.\n\n",
        scope.join(", "),
        answer.from,
        answer.to,
        describe_read(&answer.read, answer.source),
        answer.significance,
        answer.min_change * 100.0,
        answer.min_tasks,
    );
    let arrow = |base: Option<f64>, cand: Option<f64>| format!("{} → {}", seconds(base), seconds(cand));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (family, label) in answer.families.iter().zip(labels(&answer.families)) {
        let (Some(base), Some(cand)) = (family.baseline, family.candidate) else {
            let mut row = vec![label.clone(), "-".into()];
            row.extend(std::iter::repeat_n("-".to_owned(), 7));
            row.push(family.summary.clone());
            rows.push(row);
            continue;
        };
        for phase in &family.phases {
            rows.push(vec![
                label.clone(),
                format!("{} → {}", base.revision, cand.revision),
                phase.phase.to_owned(),
                format!("{} / {}", phase.baseline.count, phase.candidate.count),
                arrow(phase.baseline.p50, phase.candidate.p50),
                percent(phase.p50_change),
                arrow(phase.baseline.p90, phase.candidate.p90),
                phase.mann_whitney_p.map_or_else(|| "-".to_owned(), format_p),
                phase
                    .probability_candidate_longer
                    .map_or_else(|| "-".to_owned(), |p| format!("{p:.3}")),
                match phase.verdict {
                    Verdict::Regression => "REGRESSION".to_owned(),
                    other => other.text().to_owned(),
                },
            ]);
        }
    }
    text += &markdown(
        &[
            ("family", Left),
            ("revisions", Left),
            ("phase", Left),
            ("n (base / new)", Right),
            ("p50 base → new", Right),
            ("p50 change", Right),
            ("p90 base → new", Right),
            ("p", Right),
            ("P(new longer)", Right),
            ("verdict", Left),
        ],
        &rows,
    );
    text
}

pub fn tasks_table(answer: &TasksAnswer) -> String {
    let mut text = format!(
        "Tasks, newest first: {} ({} shown; {}).\n\n",
        describe_filters(&answer.filters),
        answer.count,
        describe_read(&answer.read, Source::Records)
    );
    let mut headers = vec![
        ("task id", Left),
        ("rev", Right),
        ("createdAt", Left),
        ("startedAt", Left),
        ("stoppedAt", Left),
    ];
    headers.extend(Phase::ALL.map(|phase| (phase.name(), Right)));
    headers.push(("snapshotter", Left));
    headers.push(("stop code", Left));
    headers.push(("account region", Left));
    let time = |t: Option<timing_domain::timestamp::Timestamp>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
    let rows: Vec<Vec<String>> = answer
        .tasks
        .iter()
        .map(|task| {
            let mut row = vec![
                task.task_id.clone(),
                task.revision.to_string(),
                time(task.created_at),
                task.started_at.map_or_else(
                    || {
                        if task.failed_to_start {
                            "(failed to start)".to_owned()
                        } else {
                            "-".to_owned()
                        }
                    },
                    |t| t.to_string(),
                ),
                time(task.stopped_at),
            ];
            row.extend(Phase::ALL.map(|phase| seconds(task.phases.get(phase))));
            row.push(task.snapshotter.to_owned());
            row.push(task.stop_code.clone().unwrap_or_else(|| "-".to_owned()));
            row.push(match (&task.account, &task.region) {
                (Some(account), Some(region)) => format!("{account} {region}"),
                _ => "-".to_owned(),
            });
            row
        })
        .collect();
    text += &markdown(&headers, &rows);
    if let Some(token) = &answer.next_token {
        text += &format!("\nMore tasks match: send \"nextToken\": \"{token}\" with the same filters.\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_aligned() {
        let text = markdown(
            &[("name", Left), ("n", Right)],
            &[vec!["a".into(), "10".into()], vec!["long name".into(), "7".into()]],
        );
        assert_eq!(
            text,
            "| name      |   n |\n| --------- | --: |\n| a         |  10 |\n| long name |   7 |\n"
        );
    }
}
