//! `"format": "svg"` for `compare`: both groups' distributions of one phase as empirical CDFs, seconds
//! on the axis, n, p50 and p90 in the legend and the verdict in the title. Drawn with plotters' SVG
//! backend (no fonts needed: it lays text out by estimate and leaves the glyphs to the viewer).

use plotters::prelude::*;

use crate::model::CompareAnswer;

/// One side's values of the plotted phase: (seconds, how many tasks), ascending. The exact path gives
/// each task's value; the rollups give each histogram bucket's representative value (within 1%).
pub type Distribution = Vec<(f64, u64)>;

/// Points of the empirical CDF as a step line: (seconds, share of tasks at or below).
pub fn ecdf_steps(distribution: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let total: u64 = distribution.iter().map(|(_, count)| count).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut steps = Vec::with_capacity(distribution.len() * 2);
    let mut below = 0;
    for (seconds, count) in distribution {
        steps.push((*seconds, below as f64 / total as f64));
        below += count;
        steps.push((*seconds, below as f64 / total as f64));
    }
    steps
}

fn legend(name: &str, brief: &crate::model::Brief) -> String {
    let seconds = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"));
    format!(
        "{name}: n = {}, p50 {}, p90 {}",
        brief.count,
        seconds(brief.p50),
        seconds(brief.p90)
    )
}

fn side_label(answer_side: &crate::model::Side) -> String {
    let filters = &answer_side.filters;
    let mut label = filters.family.clone();
    if let Some(snapshotter) = &filters.snapshotter {
        label.push_str(&format!(" ({snapshotter})"));
    }
    if !filters.revisions.is_empty() {
        let revisions: Vec<String> = filters.revisions.iter().map(u32::to_string).collect();
        label.push_str(&format!(" rev {}", revisions.join(",")));
    }
    label
}

/// The SVG document comparing `phase_index`'s distributions.
pub fn compare_svg(
    answer: &CompareAnswer,
    phase_index: usize,
    baseline: &[(f64, u64)],
    candidate: &[(f64, u64)],
) -> Result<String, String> {
    let Some(phase) = answer.phases.get(phase_index) else {
        return Err("no phase to draw".into());
    };
    let max_seconds = baseline
        .iter()
        .chain(candidate)
        .map(|(seconds, _)| *seconds)
        .fold(0.0_f64, f64::max);
    let x_end = (max_seconds * 1.05).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 540)).into_drawing_area();
        let draw = |err: DrawingAreaErrorKind<_>| format!("drawing the comparison failed: {err:?}");
        root.fill(&WHITE).map_err(draw)?;
        let title = format!("{}: {}", phase.phase, phase.verdict);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_end, 0.0..1.0)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .x_desc(format!("{} (seconds)", phase.phase))
            .y_desc("share of tasks at or below")
            .draw()
            .map_err(draw)?;
        let sides = [
            (
                legend(&format!("baseline {}", side_label(&answer.baseline)), &phase.baseline),
                baseline,
                BLUE,
            ),
            (
                legend(
                    &format!("candidate {}", side_label(&answer.candidate)),
                    &phase.candidate,
                ),
                candidate,
                RED,
            ),
        ];
        for (label, distribution, color) in sides {
            chart
                .draw_series(LineSeries::new(ecdf_steps(distribution), color.stroke_width(2)))
                .map_err(draw)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ecdf_rises_by_each_values_share() {
        let steps = ecdf_steps(&[(1.0, 1), (2.0, 3)]);
        assert_eq!(steps, [(1.0, 0.0), (1.0, 0.25), (2.0, 0.25), (2.0, 1.0)]);
        assert!(ecdf_steps(&[]).is_empty());
    }
}
