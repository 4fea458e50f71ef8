//! Summary requests: parsed strictly (unknown fields, wrong types and out-of-range values are refused
//! with the field's name) and validated into queries before any data is read.

use crate::arn::{is_ecs_name, parse_cluster_arn};
use crate::query::{MAX_REVISIONS, RecordQuery};
use crate::report::Snapshotter;
use crate::timestamp::Timestamp;
use crate::timing::Phase;
use serde::Deserialize;

use crate::token::{PageToken, TokenKey, request_fingerprint};

/// Launch types ECS reports; anything else would silently match nothing.
pub const LAUNCH_TYPES: [&str; 4] = ["FARGATE", "EC2", "EXTERNAL", "MANAGED_INSTANCES"];
const MILLIS_PER_HOUR: i64 = 3_600_000;
pub const DEFAULT_WINDOW_HOURS: i64 = 24;
pub const DEFAULT_TASKS_LIMIT: usize = 50;
/// The regression watch looks back a week by default: long enough that the revision before the newest
/// still has its tasks in the window for days after a deploy.
pub const REGRESSIONS_WINDOW_DAYS: i64 = 7;
/// Start-up values each revision needs before the test is run (documented in docs/regressions.md).
pub const DEFAULT_MIN_TASKS: u64 = 20;
pub const MIN_TASKS_RANGE: std::ops::RangeInclusive<u64> = 5..=100_000;
/// How much longer the newest revision's p50 must be, on top of significance, to be called a regression.
pub const DEFAULT_MIN_CHANGE: f64 = 0.10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(pub String);

fn invalid<T>(message: impl Into<String>) -> Result<T, RequestError> {
    Err(RequestError(message.into()))
}

/// Bounds on what one request may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_window_days: u32,
    pub max_rows: u64,
    pub max_tasks_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_window_days: 31,
            max_rows: 1_000_000,
            max_tasks_limit: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Table,
    /// Compare only: both sides' distributions as an SVG picture.
    Svg,
}

/// A dimension a summary can group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Family,
    Revision,
    Cluster,
    LaunchType,
    AvailabilityZone,
    ImageDigest,
    Snapshotter,
    Account,
    Region,
}

impl GroupBy {
    pub const ALL: [GroupBy; 9] = [
        GroupBy::Family,
        GroupBy::Revision,
        GroupBy::Cluster,
        GroupBy::LaunchType,
        GroupBy::AvailabilityZone,
        GroupBy::ImageDigest,
        GroupBy::Snapshotter,
        GroupBy::Account,
        GroupBy::Region,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            GroupBy::Family => "family",
            GroupBy::Revision => "revision",
            GroupBy::Cluster => "cluster",
            GroupBy::LaunchType => "launchType",
            GroupBy::AvailabilityZone => "availabilityZone",
            GroupBy::ImageDigest => "imageDigest",
            GroupBy::Snapshotter => "snapshotter",
            GroupBy::Account => "account",
            GroupBy::Region => "region",
        }
    }

    /// Whether the rollups keep this dimension (their series key).
    pub fn in_rollups(self) -> bool {
        matches!(
            self,
            GroupBy::Family
                | GroupBy::Revision
                | GroupBy::Cluster
                | GroupBy::LaunchType
                | GroupBy::Snapshotter
                | GroupBy::Account
                | GroupBy::Region
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SummaryQuery {
    pub filters: RecordQuery,
    pub phases: Vec<Phase>,
    pub group_by: Vec<GroupBy>,
    /// Read every record instead of the rollups.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompareQuery {
    pub baseline: RecordQuery,
    pub candidate: RecordQuery,
    pub phases: Vec<Phase>,
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TasksQuery {
    pub filters: RecordQuery,
    pub limit: usize,
    /// Where this page starts (None: the newest task).
    pub after: Option<crate::query::PageKey>,
    /// Binds tokens to the filters as the caller wrote them.
    pub fingerprint: String,
}

/// Every family's newest revision against the one before it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionsQuery {
    /// None: every family the family index lists for the window's days.
    pub family: Option<String>,
    /// The window and the filters each family's read applies; its `family` is set per family.
    pub filters: RecordQuery,
    pub min_tasks: u64,
    /// A share: 0.10 is "p50 at least 10 % longer".
    pub min_change: f64,
    /// Print a `StartupRegression` EMF document per family (the hourly schedule sets it).
    pub publish: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Summary(SummaryQuery),
    Compare(CompareQuery),
    Tasks(TasksQuery),
    Regressions(RegressionsQuery),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub query: Query,
    pub format: Format,
}

/// Every field any request may carry. `baseline` and `candidate` use the same shape, restricted to
/// the filter fields, so the filters are declared once.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRequest {
    query: Option<String>,
    account: Option<String>,
    region: Option<String>,
    cluster: Option<String>,
    family: Option<String>,
    revisions: Option<Vec<u32>>,
    launch_type: Option<String>,
    snapshotter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    phases: Option<Vec<String>>,
    group_by: Option<Vec<String>>,
    baseline: Option<Box<RawRequest>>,
    candidate: Option<Box<RawRequest>>,
    limit: Option<u64>,
    next_token: Option<String>,
    format: Option<String>,
    exact: Option<bool>,
    min_tasks: Option<u64>,
    min_change: Option<f64>,
    publish: Option<bool>,
}

const FILTER_FIELDS: [&str; 9] = [
    "account",
    "region",
    "cluster",
    "family",
    "revisions",
    "launchType",
    "snapshotter",
    "from",
    "to",
];

impl RawRequest {
    fn given_fields(&self) -> Vec<&'static str> {
        let flags = [
            ("query", self.query.is_some()),
            ("account", self.account.is_some()),
            ("region", self.region.is_some()),
            ("cluster", self.cluster.is_some()),
            ("family", self.family.is_some()),
            ("revisions", self.revisions.is_some()),
            ("launchType", self.launch_type.is_some()),
            ("snapshotter", self.snapshotter.is_some()),
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("phases", self.phases.is_some()),
            ("groupBy", self.group_by.is_some()),
            ("baseline", self.baseline.is_some()),
            ("candidate", self.candidate.is_some()),
            ("limit", self.limit.is_some()),
            ("nextToken", self.next_token.is_some()),
            ("format", self.format.is_some()),
            ("exact", self.exact.is_some()),
            ("minTasks", self.min_tasks.is_some()),
            ("minChange", self.min_change.is_some()),
            ("publish", self.publish.is_some()),
        ];
        flags
            .into_iter()
            .filter(|(_, given)| *given)
            .map(|(name, _)| name)
            .collect()
    }

    fn allow_only(&self, context: &str, allowed: &[&str]) -> Result<(), RequestError> {
        match self.given_fields().into_iter().find(|field| !allowed.contains(field)) {
            None => Ok(()),
            Some(field) => invalid(format!(
                "field `{field}` does not apply to {context}; it accepts {}",
                allowed.join(", ")
            )),
        }
    }
}

/// The largest request accepted: far above any valid one (a few hundred bytes), far below Lambda's 6 MB.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Parses and validates a request. `now` resolves the default window; `key` checks `nextToken`.
pub fn parse_request(payload: &[u8], limits: &Limits, now: Timestamp, key: &TokenKey) -> Result<Request, RequestError> {
    if payload.len() > MAX_REQUEST_BYTES {
        return invalid(format!(
            "request of {} bytes is larger than the {MAX_REQUEST_BYTES}-byte limit",
            payload.len()
        ));
    }
    if payload.trim_ascii().is_empty() {
        return invalid("empty request: expected one JSON object such as {\"query\":\"summary\",\"family\":\"web\"}");
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(payload);
    let raw: RawRequest = serde_path_to_error::deserialize(&mut *deserializer).map_err(|err| {
        let mut path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if inner.starts_with("unknown field") {
            // The path ends with the unknown field itself, which the message already names.
            path = path
                .rsplit_once('.')
                .map_or_else(String::new, |(parent, _)| parent.to_owned());
        }
        match path.as_str() {
            "." | "" if inner.starts_with("unknown field") => RequestError(inner),
            "." | "" => RequestError(format!("request is not a valid JSON object: {inner}")),
            _ => RequestError(format!("{path}: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|err| RequestError(format!("request has bytes after its JSON object: {err}")))?;
    let format = match raw.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("table") => Format::Table,
        Some("svg") if raw.query.as_deref() == Some("compare") => Format::Svg,
        Some("svg") => return invalid("format: \"svg\" draws a comparison; it applies to query \"compare\" only"),
        Some(other) => {
            return invalid(format!(
                "format: expected \"json\", \"table\" or (for compare) \"svg\", got {other:?}"
            ));
        }
    };
    let common = ["query", "format"];
    let with = |extra: &[&'static str], filters: bool| -> Vec<&'static str> {
        let mut allowed = common.to_vec();
        if filters {
            allowed.extend(FILTER_FIELDS);
        }
        allowed.extend(extra);
        allowed
    };
    let query = match raw.query.as_deref() {
        Some("summary") => {
            raw.allow_only("query \"summary\"", &with(&["phases", "groupBy", "exact"], true))?;
            let exact = raw.exact.unwrap_or(false);
            let group_by = group_by(raw.group_by.as_deref())?;
            if let Some(dimension) = group_by.iter().find(|d| !exact && !d.in_rollups()) {
                return invalid(format!(
                    "groupBy: {:?} needs \"exact\": true (the rollups are kept by family, revision, cluster, launchType, snapshotter, account and region)",
                    dimension.name()
                ));
            }
            Query::Summary(SummaryQuery {
                filters: filters(&raw, "", limits, now)?,
                phases: phases(raw.phases.as_deref())?,
                group_by,
                exact,
            })
        }
        Some("compare") => {
            raw.allow_only(
                "query \"compare\"",
                &with(&["baseline", "candidate", "phases", "exact"], false),
            )?;
            let side = |side: &Option<Box<RawRequest>>, name: &str| -> Result<RecordQuery, RequestError> {
                let Some(side) = side else {
                    return invalid(format!("{name}: required for query \"compare\" (an object of filters)"));
                };
                side.allow_only(&format!("{name} (filters)"), &FILTER_FIELDS)?;
                filters(side, &format!("{name}."), limits, now)
            };
            Query::Compare(CompareQuery {
                baseline: side(&raw.baseline, "baseline")?,
                candidate: side(&raw.candidate, "candidate")?,
                phases: phases(raw.phases.as_deref())?,
                exact: raw.exact.unwrap_or(false),
            })
        }
        Some("tasks") => {
            raw.allow_only("query \"tasks\"", &with(&["limit", "nextToken"], true))?;
            Query::Tasks(tasks(&raw, limits, now, key)?)
        }
        Some("regressions") => {
            let mut allowed = with(&["minTasks", "minChange", "publish"], true);
            allowed.retain(|field| *field != "revisions");
            raw.allow_only("query \"regressions\" (it picks the revisions)", &allowed)?;
            Query::Regressions(regressions(&raw, limits, now)?)
        }
        Some(other) => {
            return invalid(format!(
                "query: expected \"summary\", \"compare\", \"tasks\" or \"regressions\", got {other:?}"
            ));
        }
        None => return invalid("query: required (\"summary\", \"compare\", \"tasks\" or \"regressions\")"),
    };
    Ok(Request { query, format })
}

fn tasks(raw: &RawRequest, limits: &Limits, now: Timestamp, key: &TokenKey) -> Result<TasksQuery, RequestError> {
    let limit = match raw.limit {
        None => DEFAULT_TASKS_LIMIT.min(limits.max_tasks_limit),
        Some(limit) if limit >= 1 && limit <= limits.max_tasks_limit as u64 => limit as usize,
        Some(limit) => {
            return invalid(format!(
                "limit: must be from 1 to {} (the page size limit), got {limit}",
                limits.max_tasks_limit
            ));
        }
    };
    let mut filters = filters(raw, "", limits, now)?;
    let revisions = format!("{:?}", raw.revisions);
    let mut fingerprinted = vec![
        raw.family.as_deref(),
        raw.cluster.as_deref(),
        raw.launch_type.as_deref(),
        raw.from.as_deref(),
        raw.to.as_deref(),
        Some(revisions.as_str()),
    ];
    // Only when given, so tokens issued before the filter existed still resume.
    if raw.snapshotter.is_some() {
        fingerprinted.push(raw.snapshotter.as_deref());
    }
    if raw.account.is_some() || raw.region.is_some() {
        fingerprinted.extend([raw.account.as_deref(), raw.region.as_deref()]);
    }
    let fingerprint = request_fingerprint(&fingerprinted);
    let after = match &raw.next_token {
        None => None,
        Some(text) => {
            let token =
                PageToken::open(text, key, &fingerprint).map_err(|err| RequestError(format!("nextToken: {err}")))?;
            // The window the first page resolved, so "the last 24 h" does not move between pages.
            filters.from = Timestamp::from_millis(token.window.0);
            filters.to = Timestamp::from_millis(token.window.1);
            Some(token.after)
        }
    };
    Ok(TasksQuery {
        filters,
        limit,
        after,
        fingerprint,
    })
}

fn regressions(raw: &RawRequest, limits: &Limits, now: Timestamp) -> Result<RegressionsQuery, RequestError> {
    let min_tasks = match raw.min_tasks {
        None => DEFAULT_MIN_TASKS,
        Some(n) if MIN_TASKS_RANGE.contains(&n) => n,
        Some(n) => {
            return invalid(format!(
                "minTasks: must be from {} to {} (start-up values each revision needs), got {n}",
                MIN_TASKS_RANGE.start(),
                MIN_TASKS_RANGE.end()
            ));
        }
    };
    let min_change = match raw.min_change {
        None => DEFAULT_MIN_CHANGE,
        Some(share) if (0.0..=10.0).contains(&share) => share,
        Some(share) => {
            return invalid(format!(
                "minChange: a share from 0 to 10 (0.1 is \"p50 at least 10 % longer\"), got {share}"
            ));
        }
    };
    // The published metric is the schedule's judgement: filters or settings of one caller's choosing would
    // raise or clear the one alarm for everyone.
    if raw.publish == Some(true)
        && let Some(field) = raw
            .given_fields()
            .into_iter()
            .find(|field| !["query", "format", "publish"].contains(field))
    {
        return invalid(format!(
            "publish: the published StartupRegression is the schedule's judgement of every family with the \
             defaults; `{field}` would change it for everyone (ask without \"publish\" instead)"
        ));
    }
    // At most the window limit, so a lowered MAX_WINDOW_DAYS does not refuse the schedule's request.
    let window =
        (REGRESSIONS_WINDOW_DAYS * 24 * MILLIS_PER_HOUR).min(i64::from(limits.max_window_days) * 24 * MILLIS_PER_HOUR);
    let family = raw.family.as_deref().map(|name| family_name(name, "")).transpose()?;
    Ok(RegressionsQuery {
        filters: filters_of(raw, "", limits, now, family.clone().unwrap_or_default(), window)?,
        family,
        min_tasks,
        min_change,
        publish: raw.publish.unwrap_or(false),
    })
}

fn family_name(family: &str, prefix: &str) -> Result<String, RequestError> {
    match family {
        "" => invalid(format!("{prefix}family: must not be empty")),
        family
            if family.len() > 255
                || !family
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            invalid(format!(
                "{prefix}family: a task definition family is 1 to 255 letters, digits, hyphens and underscores, got {:?}",
                family.chars().take(80).collect::<String>()
            ))
        }
        family => Ok(family.to_owned()),
    }
}

fn filters(raw: &RawRequest, prefix: &str, limits: &Limits, now: Timestamp) -> Result<RecordQuery, RequestError> {
    let family = match raw.family.as_deref() {
        None => return invalid(format!("{prefix}family: required (a task definition family)")),
        Some(family) => family_name(family, prefix)?,
    };
    filters_of(raw, prefix, limits, now, family, DEFAULT_WINDOW_HOURS * MILLIS_PER_HOUR)
}

/// The filters other than the family; `default_window` (ms) is how far back a window without `from` reaches.
fn filters_of(
    raw: &RawRequest,
    prefix: &str,
    limits: &Limits,
    now: Timestamp,
    family: String,
    default_window: i64,
) -> Result<RecordQuery, RequestError> {
    let cluster = match raw.cluster.as_deref() {
        None => None,
        Some("") => {
            return invalid(format!(
                "{prefix}cluster: must not be empty (omit it for every cluster)"
            ));
        }
        Some(arn) if arn.starts_with("arn:") => Some(
            parse_cluster_arn(arn)
                .map_err(|err| RequestError(format!("{prefix}cluster: {err}")))?
                .to_owned(),
        ),
        Some(name) if is_ecs_name(name) => Some(name.to_owned()),
        Some(other) => {
            return invalid(format!(
                "{prefix}cluster: a cluster name is 1 to 255 letters, digits, hyphens and underscores (or give the cluster's ARN), got {:?}",
                other.chars().take(80).collect::<String>()
            ));
        }
    };
    let account = match raw.account.as_deref() {
        None => None,
        Some(id) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => Some(id.to_owned()),
        Some(other) => {
            return invalid(format!(
                "{prefix}account: an AWS account id is 12 digits, got {:?}",
                other.chars().take(80).collect::<String>()
            ));
        }
    };
    let region = match raw.region.as_deref() {
        None => None,
        Some(name) if is_region_name(name) => Some(name.to_owned()),
        Some(other) => {
            return invalid(format!(
                "{prefix}region: an AWS region name such as \"eu-west-1\", got {:?}",
                other.chars().take(80).collect::<String>()
            ));
        }
    };
    let launch_type = match raw.launch_type.as_deref() {
        None => None,
        Some(kind) if LAUNCH_TYPES.contains(&kind) => Some(kind.to_owned()),
        Some(other) => {
            return invalid(format!(
                "{prefix}launchType: expected one of {}, got {other:?}",
                LAUNCH_TYPES.join(", ")
            ));
        }
    };
    let snapshotter = match raw.snapshotter.as_deref() {
        None => None,
        Some(name) if name == Snapshotter::UNREPORTED || Snapshotter::from_name(name).is_some() => {
            Some(name.to_owned())
        }
        Some(other) => {
            let known: Vec<&str> = Snapshotter::ALL.iter().map(|s| s.name()).collect();
            return invalid(format!(
                "{prefix}snapshotter: expected one of {}, {} (no image report), got {other:?}",
                known.join(", "),
                Snapshotter::UNREPORTED
            ));
        }
    };
    let mut revisions = raw.revisions.clone().unwrap_or_default();
    if raw.revisions.as_ref().is_some_and(Vec::is_empty) {
        return invalid(format!(
            "{prefix}revisions: list at least one revision, or omit it for all"
        ));
    }
    revisions.sort_unstable();
    revisions.dedup();
    if revisions.len() > MAX_REVISIONS {
        return invalid(format!(
            "{prefix}revisions: at most {MAX_REVISIONS} revisions per request"
        ));
    }
    if revisions.first() == Some(&0) {
        return invalid(format!("{prefix}revisions: revisions start at 1"));
    }
    let timestamp = |field: &str, text: &Option<String>| -> Result<Option<Timestamp>, RequestError> {
        text.as_deref()
            .map(|text| Timestamp::parse(text).map_err(|err| RequestError(format!("{prefix}{field}: {err}"))))
            .transpose()
    };
    let window = default_window;
    let (from, to) = match (timestamp("from", &raw.from)?, timestamp("to", &raw.to)?) {
        (Some(from), Some(to)) => (from, to),
        (Some(from), None) => (from, now),
        (None, Some(to)) => (Timestamp::from_millis(to.millis() - window), to),
        (None, None) => (Timestamp::from_millis(now.millis() - window), now),
    };
    if from >= to {
        return invalid(format!("{prefix}from ({from}) must be before {prefix}to ({to})"));
    }
    let max_window_millis = i64::from(limits.max_window_days) * 24 * MILLIS_PER_HOUR;
    if from.millis_until(to) > max_window_millis {
        return invalid(format!(
            "{prefix}from..{prefix}to spans {:.1} days, more than the {}-day limit (MAX_WINDOW_DAYS); split the window",
            from.millis_until(to) as f64 / (24 * MILLIS_PER_HOUR) as f64,
            limits.max_window_days
        ));
    }
    Ok(RecordQuery {
        family,
        from,
        to,
        account,
        region,
        cluster,
        revisions,
        launch_type,
        snapshotter,
    })
}

/// `<area>-<place>-<number>`, with more parts in some partitions (`us-gov-west-1`, `us-isob-east-1`).
fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    name.len() <= 32
        && parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
}

fn phases(names: Option<&[String]>) -> Result<Vec<Phase>, RequestError> {
    let Some(names) = names else {
        return Ok(Phase::ALL.to_vec());
    };
    if names.is_empty() {
        return invalid("phases: list at least one phase, or omit it for all nine");
    }
    let mut phases = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let Some(phase) = Phase::from_name(name) else {
            let known: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
            return invalid(format!(
                "phases[{index}]: unknown phase {name:?}; expected one of {}",
                known.join(", ")
            ));
        };
        if phases.contains(&phase) {
            return invalid(format!("phases[{index}]: {name:?} is listed twice"));
        }
        phases.push(phase);
    }
    Ok(phases)
}

fn group_by(names: Option<&[String]>) -> Result<Vec<GroupBy>, RequestError> {
    let Some(names) = names else {
        return Ok(vec![GroupBy::Family, GroupBy::Revision]);
    };
    let mut dimensions = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let Some(dimension) = GroupBy::ALL.into_iter().find(|d| d.name() == name) else {
            let known: Vec<&str> = GroupBy::ALL.iter().map(|d| d.name()).collect();
            return invalid(format!(
                "groupBy[{index}]: unknown dimension {name:?}; expected any of {}",
                known.join(", ")
            ));
        };
        if dimensions.contains(&dimension) {
            return invalid(format!("groupBy[{index}]: {name:?} is listed twice"));
        }
        dimensions.push(dimension);
    }
    Ok(dimensions)
}
