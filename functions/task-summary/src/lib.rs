//! task-summary: answers `summary`, `compare`, `tasks` and `regressions` queries over the records task-events
//! writes (through the (family, createdAt) index) and their rollups, within set limits.

pub mod exact;
pub mod model;
pub mod regressions;
pub mod rollups;
pub mod svg;
pub mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lambda_runtime::Diagnostic;
use serde::Serialize;
use timing_domain::metrics::DEFAULT_NAMESPACE;
use timing_domain::query::RecordQuery;
use timing_domain::request;
use timing_domain::rollup::{COUNTS_SLOT, MILLIS_PER_DAY};
use timing_domain::timestamp::Timestamp;
use timing_domain::timing::Phase;
use timing_dynamodb::keys::{DEFAULT_ROLLUP_TABLE_NAME, DEFAULT_TABLE_NAME};
use timing_dynamodb::{ReadCount, StoreError, TaskStore};

use exact::{Accumulator, compare_phase, group_key, summary_answer};
use model::{
    CompareAnswer, GroupSummary, KeyPart, METHOD, Precision, QueryKind, ROLLUP_METHOD, ROLLUP_PERCENTILES, Side,
    Source, SummaryAnswer, TasksAnswer,
};
use regressions::{RegressionsAnswer, SIGNIFICANCE, Settings, WATCHED_PHASES, judge_recent, labels, regression_emf};
use rollups::{
    RollupAccumulator, RollupGroups, lone_origin, merge_older_into, rollup_compare_phase, rollup_group_key,
    rollup_phase_stats, split_by_origin,
};
use timing_domain::request::{
    CompareQuery, Format, Limits, Query, RegressionsQuery, RequestError, SummaryQuery, TasksQuery, parse_request,
};
use timing_domain::rollup::Counts;
use timing_domain::token::{PageToken, TokenKey};

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub rollup_table_name: String,
    pub limits: Limits,
    /// Items one Query call may evaluate (None: DynamoDB's 1 MB pages).
    pub query_page_size: Option<i32>,
    /// None: a random key per process (tokens then only work on the instance that issued them).
    pub token_key: Option<TokenKey>,
    /// Where `"publish": true` puts `StartupRegression` (task-events' METRICS_NAMESPACE).
    pub metrics_namespace: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    let Some(text) = lookup(name) else { return Ok(default) };
    match text.trim().parse::<T>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(ConfigError(format!(
            "{name} must be a whole number from {} to {}, got {text:?}",
            range.start(),
            range.end()
        ))),
    }
}

impl Config {
    /// Reads TABLE_NAME, ROLLUP_TABLE_NAME, MAX_WINDOW_DAYS, MAX_ROWS, MAX_TASKS_LIMIT, QUERY_PAGE_SIZE,
    /// TOKEN_SECRET and METRICS_NAMESPACE.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let defaults = Limits::default();
        let limits = Limits {
            max_window_days: number(&lookup, "MAX_WINDOW_DAYS", defaults.max_window_days, 1..=3660)?,
            max_rows: number(&lookup, "MAX_ROWS", defaults.max_rows, 1..=100_000_000)?,
            max_tasks_limit: number(&lookup, "MAX_TASKS_LIMIT", defaults.max_tasks_limit, 1..=10_000)?,
        };
        let query_page_size = match lookup("QUERY_PAGE_SIZE") {
            None => None,
            Some(_) => Some(number(&lookup, "QUERY_PAGE_SIZE", 0, 1..=100_000)?),
        };
        let token_key = lookup("TOKEN_SECRET")
            .map(|secret| TokenKey::from_secret(&secret))
            .transpose()
            .map_err(ConfigError)?;
        let metrics_namespace = lookup("METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if metrics_namespace.is_empty() || metrics_namespace.starts_with("AWS/") {
            return Err(ConfigError(format!(
                "METRICS_NAMESPACE must be non-empty and outside AWS/, got {metrics_namespace:?}"
            )));
        }
        Ok(Config {
            metrics_namespace,
            table_name: lookup("TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned()),
            rollup_table_name: lookup("ROLLUP_TABLE_NAME").unwrap_or_else(|| DEFAULT_ROLLUP_TABLE_NAME.to_owned()),
            limits,
            query_page_size,
            token_key,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    InvalidRequest(#[from] RequestError),
    #[error("{0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Drawing(String),
}

impl From<StoreError> for HandlerError {
    fn from(err: StoreError) -> HandlerError {
        match err {
            StoreError::RowLimit { .. } => HandlerError::LimitExceeded(err.to_string()),
            other => HandlerError::Store(other),
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(err: HandlerError) -> Diagnostic {
        let error_type = match err {
            HandlerError::InvalidRequest(_) => "InvalidRequest",
            HandlerError::LimitExceeded(_) => "LimitExceeded",
            HandlerError::Store(_) => "StoreUnavailable",
            HandlerError::Drawing(_) => "DrawingFailed",
        };
        Diagnostic {
            error_type: error_type.into(),
            // With the SDK's error chain: "DynamoDB Query on table … failed: service error: …".
            error_message: timing_dynamodb::error::error_chain(&err),
        }
    }
}

/// Where published EMF documents go: stdout in Lambda (CloudWatch Logs extracts the metrics).
pub type MetricsSink = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Handler {
    store: TaskStore,
    config: Config,
    token_key: TokenKey,
    metrics_sink: MetricsSink,
}

impl Handler {
    pub fn new(store: TaskStore, config: Config, token_key: TokenKey) -> Handler {
        Handler {
            store,
            config,
            token_key,
            metrics_sink: Arc::new(|line: &str| {
                // One line per document: CloudWatch Logs reads EMF from single log events.
                use std::io::Write;
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }),
        }
    }

    /// Sends published documents to `sink` instead of stdout (tests).
    pub fn with_metrics_sink(self, sink: MetricsSink) -> Handler {
        Handler {
            metrics_sink: sink,
            ..self
        }
    }

    pub async fn handle(&self, payload: &[u8]) -> Result<Answer, HandlerError> {
        let now = Timestamp::from_millis(chrono::Utc::now().timestamp_millis());
        self.handle_at(payload, now).await
    }

    /// Answers the request as if the time were `now` (which resolves the default window).
    pub async fn handle_at(&self, payload: &[u8], now: Timestamp) -> Result<Answer, HandlerError> {
        let request = parse_request(payload, &self.config.limits, now, &self.token_key)?;
        let table = request.format == Format::Table;
        let svg = request.format == Format::Svg;
        let answer = match request.query {
            Query::Summary(query) => {
                // Boxed: the nested SDK futures of both paths otherwise make one type too deep for
                // rustc's layout computation in release builds ("queries overflow the depth limit").
                let answer = Box::pin(self.summary(query)).await?;
                tracing::info!(query = "summary", items_read = answer.read.items_read, "answered");
                match table {
                    true => Answer::table(table::summary_table(&answer), None),
                    false => Answer::Summary(answer),
                }
            }
            Query::Compare(query) => {
                let plotted = plotted_phase(&query.phases);
                let (answer, [baseline, candidate]) = Box::pin(self.compare(query, plotted)).await?;
                let items_read = answer.baseline.read.items_read + answer.candidate.read.items_read;
                tracing::info!(query = "compare", items_read, "answered");
                match (table, svg) {
                    (true, _) => Answer::table(table::compare_table(&answer), None),
                    (_, true) => Answer::Svg(SvgAnswer {
                        format: "svg",
                        phase: answer.phases.get(plotted).map_or("", |p| p.phase),
                        svg: svg::compare_svg(&answer, plotted, &baseline, &candidate)
                            .map_err(HandlerError::Drawing)?,
                    }),
                    _ => Answer::Compare(Box::new(answer)),
                }
            }
            Query::Regressions(query) => {
                let answer = Box::pin(self.regressions(query, now)).await?;
                tracing::info!(
                    query = "regressions",
                    families = answer.families.len(),
                    startup_regressions = answer.startup_regressions.len(),
                    items_read = answer.read.items_read,
                    "answered"
                );
                match table {
                    true => Answer::table(table::regressions_table(&answer), None),
                    false => Answer::Regressions(Box::new(answer)),
                }
            }
            Query::Tasks(query) => {
                let answer = self.tasks(query).await?;
                tracing::info!(query = "tasks", items_read = answer.read.items_read, "answered");
                match table {
                    true => Answer::table(table::tasks_table(&answer), answer.next_token.clone()),
                    false => Answer::Tasks(answer),
                }
            }
        };
        Ok(answer)
    }

    async fn read_groups(
        &self,
        filters: &RecordQuery,
        phases: &[Phase],
        group_by: &[request::GroupBy],
        max_rows: u64,
    ) -> Result<(BTreeMap<Vec<KeyPart>, Accumulator>, ReadCount), StoreError> {
        let mut groups: BTreeMap<Vec<KeyPart>, Accumulator> = BTreeMap::new();
        let read = self
            .store
            .for_each_timing_row(filters, self.config.query_page_size, max_rows, |row| {
                groups.entry(group_key(&row, group_by)).or_default().add(&row, phases);
            })
            .await?;
        Ok((groups, read))
    }

    /// The rollup items of the query's hour window, folded by group. Returns the filters with the
    /// window widened to the whole hours the rollups answered for.
    async fn read_rollup_groups(
        &self,
        filters: &RecordQuery,
        phases: &[Phase],
        group_by: &[request::GroupBy],
        max_items: u64,
    ) -> Result<(RecordQuery, RollupGroups, ReadCount), StoreError> {
        let mut slots: Vec<&str> = phases.iter().map(|phase| phase.name()).collect();
        slots.push(COUNTS_SLOT);
        let mut groups = RollupGroups::new();
        let read = self
            .store
            .for_each_rollup_item(filters, &slots, self.config.query_page_size, max_items, |item| {
                groups
                    .entry(rollup_group_key(&item, group_by))
                    .or_default()
                    .add(&item, phases);
            })
            .await?;
        // A series its tasks all left (for their snapshotter's, when their reports came) keeps items
        // summing to zero: no group.
        groups.retain(|_, accumulator| accumulator.counts.tasks > 0);
        let (from, to) = filters.hour_window();
        let widened = RecordQuery {
            from,
            to,
            ..filters.clone()
        };
        Ok((widened, groups, read))
    }

    async fn summary(&self, query: SummaryQuery) -> Result<SummaryAnswer, HandlerError> {
        let max_rows = self.config.limits.max_rows;
        if query.exact {
            let (groups, read) = self
                .read_groups(&query.filters, &query.phases, &query.group_by, max_rows)
                .await?;
            return Ok(summary_answer(
                query.filters,
                &query.group_by,
                &query.phases,
                groups,
                read,
            ));
        }
        let (filters, groups, read) = self
            .read_rollup_groups(&query.filters, &query.phases, &query.group_by, max_rows)
            .await?;
        let groups = groups
            .into_iter()
            .map(|(key, accumulator)| GroupSummary {
                key: query.group_by.iter().map(|d| d.name()).zip(key).collect(),
                counts: accumulator.counts,
                phases: query
                    .phases
                    .iter()
                    .zip(accumulator.phases.iter().chain(std::iter::repeat(&Default::default())))
                    .map(|(phase, rollup)| rollup_phase_stats(*phase, rollup))
                    .collect(),
            })
            .collect();
        Ok(SummaryAnswer {
            query: QueryKind::Summary,
            filters,
            group_by: query.group_by.iter().map(|d| d.name()).collect(),
            source: Source::Rollups,
            precision: Precision(Source::Rollups),
            percentiles: ROLLUP_PERCENTILES,
            read,
            groups,
        })
    }

    /// The comparison, and both sides' distributions of the `plotted` phase (for `"format": "svg"`).
    async fn compare(
        &self,
        query: CompareQuery,
        plotted: usize,
    ) -> Result<(CompareAnswer, [svg::Distribution; 2]), HandlerError> {
        if query.exact {
            return self.exact_compare(query, plotted).await;
        }
        let max_rows = self.config.limits.max_rows;
        let (baseline_filters, baseline, baseline_read) = self
            .read_rollup_groups(&query.baseline, &query.phases, &[], max_rows)
            .await?;
        let remaining = max_rows.saturating_sub(baseline_read.items_read);
        let (candidate_filters, candidate, candidate_read) = self
            .read_rollup_groups(&query.candidate, &query.phases, &[], remaining)
            .await?;
        let side = |groups: RollupGroups| groups.into_values().next().unwrap_or_default();
        let (baseline, candidate): (RollupAccumulator, RollupAccumulator) = (side(baseline), side(candidate));
        let distribution = |side: &RollupAccumulator| -> svg::Distribution {
            side.phases.get(plotted).map_or_else(Vec::new, |rollup| {
                let buckets = rollup.histogram.buckets();
                buckets
                    .map(|(bucket, count)| (bucket.value_millis() / 1000.0, count))
                    .collect()
            })
        };
        let distributions = [distribution(&baseline), distribution(&candidate)];
        let empty = Default::default();
        let phases = query
            .phases
            .iter()
            .enumerate()
            .map(|(i, phase)| {
                rollup_compare_phase(
                    *phase,
                    baseline.phases.get(i).unwrap_or(&empty),
                    candidate.phases.get(i).unwrap_or(&empty),
                )
            })
            .collect();
        let answer = CompareAnswer {
            query: QueryKind::Compare,
            baseline: Side {
                filters: baseline_filters,
                counts: baseline.counts,
                read: baseline_read,
            },
            candidate: Side {
                filters: candidate_filters,
                counts: candidate.counts,
                read: candidate_read,
            },
            source: Source::Rollups,
            precision: Precision(Source::Rollups),
            method: ROLLUP_METHOD,
            phases,
        };
        Ok((answer, distributions))
    }

    async fn exact_compare(
        &self,
        query: CompareQuery,
        plotted: usize,
    ) -> Result<(CompareAnswer, [svg::Distribution; 2]), HandlerError> {
        // One group per side; the row limit bounds both reads together.
        let (baseline, baseline_read) = self
            .read_groups(&query.baseline, &query.phases, &[], self.config.limits.max_rows)
            .await?;
        let remaining = self.config.limits.max_rows.saturating_sub(baseline_read.items_read);
        let (candidate, candidate_read) = self
            .read_groups(&query.candidate, &query.phases, &[], remaining)
            .await?;
        let (baseline, candidate) = (
            baseline.into_values().next().unwrap_or_default(),
            candidate.into_values().next().unwrap_or_default(),
        );
        let values = |side: &Accumulator, i: usize| side.values.get(i).cloned().unwrap_or_default();
        let phases = query
            .phases
            .iter()
            .enumerate()
            .map(|(i, phase)| compare_phase(*phase, &values(&baseline, i), &values(&candidate, i)))
            .collect();
        let side = |filters: RecordQuery, counts: Counts, read: ReadCount| Side { filters, counts, read };
        let distribution = |side: &Accumulator| -> svg::Distribution {
            let mut values = values(side, plotted);
            values.sort_by(f64::total_cmp);
            let mut distribution: svg::Distribution = Vec::new();
            for value in values {
                match distribution.last_mut() {
                    Some((last, count)) if *last == value => *count += 1,
                    _ => distribution.push((value, 1)),
                }
            }
            distribution
        };
        let distributions = [distribution(&baseline), distribution(&candidate)];
        let answer = CompareAnswer {
            query: QueryKind::Compare,
            baseline: side(query.baseline, baseline.counts, baseline_read),
            candidate: side(query.candidate, candidate.counts, candidate_read),
            source: Source::Records,
            precision: Precision(Source::Records),
            method: METHOD,
            phases,
        };
        Ok((answer, distributions))
    }

    /// Every family's newest revision against the one before, from the rollups; with `publish`, one
    /// `StartupRegression` EMF document per family judged.
    async fn regressions(&self, query: RegressionsQuery, now: Timestamp) -> Result<RegressionsAnswer, HandlerError> {
        let max_rows = self.config.limits.max_rows;
        let mut read = ReadCount::default();
        let families = match &query.family {
            Some(family) => BTreeSet::from([family.clone()]),
            None => {
                self.store
                    .families_between(query.filters.from, query.filters.to, max_rows, &mut read)
                    .await?
            }
        };
        let settings = Settings {
            min_tasks: query.min_tasks,
            min_change: query.min_change,
        };
        let mut judged = Vec::with_capacity(families.len());
        for family in families {
            let filters = RecordQuery {
                family,
                ..query.filters.clone()
            };
            // Each account and region's tasks of the family are judged apart: two accounts' revision 15
            // are different releases.
            use request::GroupBy::{Account, Region, Revision};
            let by_origin_revision = [Account, Region, Revision];
            let remaining = max_rows.saturating_sub(read.items_read);
            let (_, groups, family_read) = self
                .read_rollup_groups(&filters, &WATCHED_PHASES, &by_origin_revision, remaining)
                .await?;
            read.add(&family_read);
            let mut origins = split_by_origin(groups);
            // Decided once, from the window, and applied to the last day's read too.
            let lone = lone_origin(&origins);
            if let Some(origin) = &lone {
                merge_older_into(&mut origins, origin);
            }
            // A family the index lists whose tasks the filters leave out has nothing to judge; one asked
            // for by name is answered either way.
            if origins.is_empty() {
                match query.family {
                    None => continue,
                    Some(_) => origins.insert(None, RollupGroups::new()),
                };
            }
            // Which revisions ran in the last day (the counts only): the newest of them is judged.
            let last_day = RecordQuery {
                from: Timestamp::from_millis((filters.to.millis() - MILLIS_PER_DAY).max(filters.from.millis())),
                ..filters.clone()
            };
            let remaining = max_rows.saturating_sub(read.items_read);
            let (_, recent, recent_read) = self
                .read_rollup_groups(&last_day, &[], &by_origin_revision, remaining)
                .await?;
            read.add(&recent_read);
            let mut recent = split_by_origin(recent);
            if let Some(origin) = &lone {
                merge_older_into(&mut recent, origin);
            }
            for (origin, groups) in origins {
                let revisions = by_revision_number(groups);
                let recent: BTreeSet<u32> = by_revision_number(recent.remove(&origin).unwrap_or_default())
                    .into_keys()
                    .collect();
                judged.push(judge_recent(&filters.family, &revisions, &recent, settings).in_origin(origin));
            }
        }
        let published = query.publish.then(|| {
            for family in &judged {
                (self.metrics_sink)(&regression_emf(&self.config.metrics_namespace, family, now.millis()));
            }
            judged.len()
        });
        let (from, to) = query.filters.hour_window();
        Ok(RegressionsAnswer {
            query: QueryKind::Regressions,
            from,
            to,
            family: query.family,
            account: query.filters.account,
            region: query.filters.region,
            cluster: query.filters.cluster,
            launch_type: query.filters.launch_type,
            snapshotter: query.filters.snapshotter,
            significance: SIGNIFICANCE,
            min_tasks: query.min_tasks,
            min_change: query.min_change,
            method: regressions::METHOD,
            source: Source::Rollups,
            precision: Precision(Source::Rollups),
            startup_regressions: judged
                .iter()
                .zip(labels(&judged))
                .filter(|(family, _)| family.startup_regression)
                .map(|(_, label)| label)
                .collect(),
            published,
            read,
            families: judged,
        })
    }

    async fn tasks(&self, query: TasksQuery) -> Result<TasksAnswer, HandlerError> {
        let page = self
            .store
            .newest_first(
                &query.filters,
                query.limit,
                query.after.as_ref(),
                self.config.limits.max_rows,
            )
            .await?;
        let next_token = page.next.map(|after| {
            PageToken {
                after,
                window: (query.filters.from.millis(), query.filters.to.millis()),
                fingerprint: query.fingerprint.clone(),
            }
            .seal(&self.token_key)
        });
        Ok(TasksAnswer {
            query: QueryKind::Tasks,
            filters: query.filters,
            count: page.records.len(),
            tasks: page.records.into_iter().map(Into::into).collect(),
            next_token,
            read: page.read,
        })
    }
}

/// Rollup groups keyed by revision alone, by revision number.
fn by_revision_number(groups: RollupGroups) -> BTreeMap<u32, RollupAccumulator> {
    groups
        .into_iter()
        .filter_map(|(key, side)| match key.first() {
            Some(KeyPart::Number(revision)) => Some((*revision, side)),
            _ => None,
        })
        .collect()
}

/// What the function returns: the answer in the order its fields are declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Summary(SummaryAnswer),
    Compare(Box<CompareAnswer>),
    Tasks(TasksAnswer),
    Regressions(Box<RegressionsAnswer>),
    Table(TableAnswer),
    Svg(SvgAnswer),
}

/// `"format": "svg"` (compare only): the plotted phase's distributions as an SVG document.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SvgAnswer {
    pub format: &'static str,
    pub phase: &'static str,
    pub svg: String,
}

/// The phase an SVG comparison draws: start-up when asked for (the headline), else the first.
fn plotted_phase(phases: &[Phase]) -> usize {
    phases.iter().position(|phase| *phase == Phase::Startup).unwrap_or(0)
}

/// `"format": "table"`: the same answer as Markdown text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableAnswer {
    pub format: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl Answer {
    fn table(text: String, next_token: Option<String>) -> Answer {
        Answer::Table(TableAnswer {
            format: "table",
            text,
            next_token,
        })
    }
}
