//! Realistic "ECS Task State Change" streams: lifecycles PROVISIONING -> PENDING -> RUNNING ->
//! DEACTIVATING -> DEPROVISIONING -> STOPPED with plausible phase durations, failures to start,
//! Fargate Spot interruptions, duplicate deliveries and shuffles. Seeded, so every stream is reproducible.
//!
//! The generator samples each phase's duration first and derives timestamps from them, so its
//! [`TaskTruth`] is an independent oracle for what the system must compute.

use fastrand::Rng;
use serde_json::{Value, json};

/// How a task family behaves: median seconds and log-normal spread of each phase.
#[derive(Debug, Clone)]
pub struct Profile {
    pub family: String,
    pub revision: u32,
    /// The account and region the tasks run in (their ARNs' and their events').
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub launch_type: &'static str,
    pub image: String,
    pub provisioning: (f64, f64),
    pub image_pull: (f64, f64),
    pub container_start: (f64, f64),
    pub run: (f64, f64),
    pub shutdown: (f64, f64),
    pub failure_rate: f64,
    pub spot_interruption_rate: f64,
    /// The image has a SOCI index: its tasks lazy-load, except the `fallback_rate` share that pull it
    /// whole with overlayfs (lazy loading off for the account, an index of another digest, ...), whose
    /// pull then takes `whole_pull`.
    pub indexed: bool,
    pub fallback_rate: f64,
    pub whole_pull: (f64, f64),
    /// startedAt → ready when the image was pulled whole, and when it lazy-loads: the application then
    /// reads the parts of its image it needs over the network, so it warms up for longer.
    pub warm_up: (f64, f64),
    pub lazy_warm_up: (f64, f64),
}

impl Profile {
    /// A Fargate service whose image is pulled in full before start.
    pub fn without_index(family: &str, revision: u32) -> Profile {
        Profile {
            family: family.into(),
            revision,
            account: ACCOUNT.into(),
            region: REGION.into(),
            cluster: "shop-prod".into(),
            launch_type: "FARGATE",
            image: format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/{family}:2026.11"),
            provisioning: (11.0, 0.25),
            image_pull: (24.0, 0.30),
            container_start: (2.5, 0.30),
            run: (900.0, 0.8),
            shutdown: (31.0, 0.15),
            failure_rate: 0.04,
            spot_interruption_rate: 0.03,
            indexed: false,
            fallback_rate: 0.0,
            whole_pull: (24.0, 0.30),
            warm_up: (6.0, 0.25),
            lazy_warm_up: (22.0, 0.30),
        }
    }

    /// The same service with a SOCI index: lazy loading shortens the pull, start-up does a little more.
    pub fn with_index(family: &str, revision: u32) -> Profile {
        Profile {
            image_pull: (4.0, 0.35),
            container_start: (3.2, 0.30),
            indexed: true,
            ..Profile::without_index(family, revision)
        }
    }
}

/// What happened to a generated task, in whole milliseconds, straight from the sampled durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTruth {
    pub task_arn: String,
    pub family: String,
    pub provisioning: i64,
    pub image_pull: Option<i64>,
    pub container_start: Option<i64>,
    pub run: Option<i64>,
    pub shutdown: Option<i64>,
    pub failed_to_start: bool,
    pub spot_interrupted: bool,
    /// Version of the newest event.
    pub final_version: u64,
    /// What the task's containers were pulled with: `soci` or `overlayfs`.
    pub snapshotter: &'static str,
    /// startedAt → ready, for a task that started (its report's health check says when).
    pub warm_up: Option<i64>,
}

impl TaskTruth {
    pub fn startup(&self) -> Option<i64> {
        Some(self.provisioning + self.image_pull? + self.container_start?)
    }

    /// The phase's true duration, as the record must hold it.
    pub fn phase_millis(&self, phase: timing_domain::timing::Phase) -> Option<i64> {
        use timing_domain::timing::Phase;
        match phase {
            Phase::Provisioning => Some(self.provisioning),
            Phase::ImagePull => self.image_pull,
            Phase::ContainerStart => self.container_start,
            Phase::Startup => self.startup(),
            Phase::Run => self.run,
            Phase::Shutdown => self.shutdown,
            Phase::Lifetime => self.lifetime(),
            Phase::Ready => Some(self.startup()? + self.warm_up?),
            Phase::WarmUp => self.warm_up,
        }
    }

    pub fn lifetime(&self) -> Option<i64> {
        match (self.failed_to_start, self.startup(), self.run, self.shutdown) {
            (false, Some(startup), Some(run), Some(shutdown)) => Some(startup + run + STOP_GAP_MILLIS + shutdown),
            (true, _, _, Some(shutdown)) => Some(self.provisioning + self.image_pull.unwrap_or(0) + shutdown),
            _ => None,
        }
    }
}

/// executionStoppedAt precedes stoppingAt by this much in generated tasks (containers exit, then ECS stops).
const STOP_GAP_MILLIS: i64 = 450;

/// One task's events in version order, its truth, and the report its sidecar sends once it runs (None
/// for a task that never started).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub truth: TaskTruth,
    pub events: Vec<Value>,
    pub report: Option<Value>,
}

/// The name of the reporting sidecar's container in generated tasks (left out of the task's snapshotter).
pub const SIDECAR_CONTAINER: &str = "task-sidecar";

/// A log-normal sample around `median` seconds, as whole milliseconds (at least 1).
fn sample_millis(rng: &mut Rng, (median, sigma): (f64, f64)) -> i64 {
    // Box-Muller: a standard normal from two uniforms.
    let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    ((median * (sigma * normal).exp()) * 1000.0).round().max(1.0) as i64
}

fn hex_id(rng: &mut Rng) -> String {
    (0..32)
        .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
        .collect()
}

/// ISO-8601 with 0 to 3 fractional digits, trailing zeros trimmed as ECS does (`...:44Z`, `...:44.98Z`).
pub fn iso(millis: i64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
    let base = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    let fraction = format!("{:03}", millis.rem_euclid(1000));
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{base}Z")
    } else {
        format!("{base}.{fraction}Z")
    }
}

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

/// Generates one task's lifecycle starting at `created_at_millis`.
pub fn lifecycle(rng: &mut Rng, profile: &Profile, created_at_millis: i64) -> Lifecycle {
    let task_id = hex_id(rng);
    let (account, region) = (profile.account.as_str(), profile.region.as_str());
    let task_arn = format!("arn:aws:ecs:{region}:{account}:task/{}/{task_id}", profile.cluster);
    let failed = rng.f64() < profile.failure_rate;
    let spot = !failed && rng.f64() < profile.spot_interruption_rate;
    // Drawn only when it can matter, so the streams of profiles without fallbacks stay as they were.
    let fell_back = profile.indexed && profile.fallback_rate > 0.0 && rng.f64() < profile.fallback_rate;
    let lazy = profile.indexed && !fell_back;
    let provisioning = sample_millis(rng, profile.provisioning);
    let image_pull = sample_millis(
        rng,
        if profile.indexed && !lazy {
            profile.whole_pull
        } else {
            profile.image_pull
        },
    );
    let container_start = sample_millis(rng, profile.container_start);
    let run = sample_millis(rng, profile.run);
    let shutdown = sample_millis(rng, profile.shutdown);
    // From a generator of its own, seeded by the task: the streams drawn before warm-up existed stay the same.
    let warm_up = sample_millis(
        &mut Rng::with_seed(u64::from_str_radix(&task_id[..16], 16).unwrap_or(0)),
        if lazy { profile.lazy_warm_up } else { profile.warm_up },
    );

    let created = created_at_millis;
    let connectivity = created + provisioning / 3;
    let pull_started = created + provisioning;
    let pull_stopped = pull_started + image_pull;
    let started = pull_stopped + container_start;
    let execution_stopped = started + run;
    let stopping = execution_stopped + STOP_GAP_MILLIS;
    let stopped = stopping + shutdown;

    let base = json!({
        "taskArn": task_arn,
        "clusterArn": format!("arn:aws:ecs:{region}:{account}:cluster/{}", profile.cluster),
        "taskDefinitionArn": format!("arn:aws:ecs:{region}:{account}:task-definition/{}:{}", profile.family, profile.revision),
        "launchType": profile.launch_type,
        "capacityProviderName": if spot { "FARGATE_SPOT" } else { "FARGATE" },
        "platformVersion": "1.4.0", "platformFamily": "Linux",
        "availabilityZone": format!("{region}{}", ['a', 'b', 'c'][rng.usize(0..3)]),
        "group": format!("service:{}", profile.family), "startedBy": "ecs-svc/7429873205419384310",
        "cpu": "1024", "memory": "2048", "connectivity": "CONNECTED",
        "overrides": {"containerOverrides": [{"name": "app"}]},
        "createdAt": iso(created),
    });
    let container = |status: &str, exit_code: Option<i64>| {
        let mut container = json!({"name": "app", "image": profile.image, "lastStatus": status,
            "imageDigest": format!("sha256:{:064x}", u128::from(profile.revision) * 0x9e37_79b9_7f4a_7c15)});
        if let Some(code) = exit_code {
            container["exitCode"] = json!(code);
        }
        container
    };
    let mut details: Vec<(i64, Value)> = Vec::new();
    let mut state = base;
    let mut push = |time: i64, changes: Value, state: &mut Value| {
        if let (Some(state), Some(changes)) = (state.as_object_mut(), changes.as_object()) {
            for (key, value) in changes {
                state.insert(key.clone(), value.clone());
            }
            state.insert("updatedAt".into(), json!(iso(time)));
        }
        details.push((time, state.clone()));
    };
    push(
        created,
        json!({"lastStatus": "PROVISIONING", "desiredStatus": "RUNNING", "containers": [container("PENDING", None)]}),
        &mut state,
    );
    push(
        connectivity,
        json!({"lastStatus": "PENDING", "connectivityAt": iso(connectivity)}),
        &mut state,
    );
    let (truth_image_pull, truth_container_start, truth_run, truth_shutdown);
    if failed {
        // The image pull fails: STOPPED without startedAt.
        let gave_up = pull_started + image_pull;
        push(
            gave_up,
            json!({"lastStatus": "STOPPED", "desiredStatus": "STOPPED", "pullStartedAt": iso(pull_started),
            "pullStoppedAt": iso(gave_up), "stoppingAt": iso(gave_up), "stoppedAt": iso(gave_up + shutdown),
            "stopCode": "TaskFailedToStart", "stoppedReason": "CannotPullContainerError: pull rate limit exceeded",
            "containers": [container("STOPPED", None)]}),
            &mut state,
        );
        (truth_image_pull, truth_container_start, truth_run, truth_shutdown) =
            (Some(image_pull), None, None, Some(shutdown));
    } else {
        push(
            started,
            json!({"lastStatus": "RUNNING", "pullStartedAt": iso(pull_started), "pullStoppedAt": iso(pull_stopped),
            "startedAt": iso(started), "containers": [container("RUNNING", None)]}),
            &mut state,
        );
        let (stop_code, reason, exit_code) = if spot {
            push(
                (execution_stopped - 90_000).max(started),
                json!({"desiredStatus": "STOPPED", "stopCode": "TerminationNotice",
                "stoppedReason": "Your Spot Task was interrupted."}),
                &mut state,
            );
            ("SpotInterruption", "Your Spot Task was interrupted.", 143)
        } else {
            (
                "ServiceSchedulerInitiated",
                "Scaling activity initiated by (deployment ecs-svc/7429873205419384310)",
                0,
            )
        };
        push(
            stopping,
            json!({"lastStatus": "DEACTIVATING", "desiredStatus": "STOPPED", "stoppingAt": iso(stopping),
            "executionStoppedAt": iso(execution_stopped), "stopCode": stop_code, "stoppedReason": reason,
            "containers": [container("STOPPED", Some(exit_code))]}),
            &mut state,
        );
        push(
            stopping + shutdown / 2,
            json!({"lastStatus": "DEPROVISIONING"}),
            &mut state,
        );
        push(
            stopped,
            json!({"lastStatus": "STOPPED", "stoppedAt": iso(stopped)}),
            &mut state,
        );
        (truth_image_pull, truth_container_start, truth_run, truth_shutdown) =
            (Some(image_pull), Some(container_start), Some(run), Some(shutdown));
    }
    let events: Vec<Value> = details
        .into_iter()
        .enumerate()
        .map(|(index, (time, mut detail))| {
            detail["version"] = json!(index as u64 + 1);
            json!({"version": "0", "id": format!("{task_id}-{index}"), "detail-type": "ECS Task State Change",
                "source": "aws.ecs", "account": account, "time": iso(time - time.rem_euclid(1000)),
                "region": region, "resources": [task_arn], "detail": detail})
        })
        .collect();
    let truth = TaskTruth {
        task_arn: task_arn.clone(),
        family: profile.family.clone(),
        provisioning,
        image_pull: truth_image_pull,
        container_start: truth_container_start,
        run: truth_run,
        shutdown: truth_shutdown,
        failed_to_start: failed,
        spot_interrupted: spot,
        final_version: events.len() as u64,
        snapshotter: if lazy { "soci" } else { "overlayfs" },
        warm_up: (!failed).then_some(warm_up),
    };
    // The sidecar holds its report back until the app's health check passes.
    let ready = started + warm_up;
    let report = (!failed).then(|| {
        let image_id = format!("sha256:{:064x}", u128::from(profile.revision) * 0x51_7cc1_b727_220a);
        json!({"version": "0", "id": format!("{task_id}-report"), "detail-type": "ECS Task Image Report",
        "source": "ecs-task-timing.sidecar", "account": account, "time": iso(ready + 1_000 - ready.rem_euclid(1000)),
        "region": region, "resources": [task_arn], "detail": {
            "schemaVersion": 2, "taskArn": task_arn,
            "clusterArn": format!("arn:aws:ecs:{region}:{account}:cluster/{}", profile.cluster),
            "family": profile.family, "revision": profile.revision,
            "pullStartedAt": iso(pull_started), "pullStoppedAt": iso(pull_stopped),
            "containers": [
                {"name": "app", "image": profile.image, "imageId": image_id, "snapshotter": truth.snapshotter,
                 "createdAt": iso(started - 40), "startedAt": iso(started)},
                {"name": SIDECAR_CONTAINER, "image": "public.ecr.aws/example/task-sidecar:1",
                 "snapshotter": "overlayfs", "createdAt": iso(started - 40), "startedAt": iso(started)}
            ],
            "excludedContainers": [SIDECAR_CONTAINER],
            "readiness": {"signal": "healthCheck", "readyAt": iso(ready)}
        }})
    });
    Lifecycle { truth, events, report }
}

/// Every event of the lifecycles delivered 1 to `max_copies` times, then shuffled when `shuffle` is set.
pub fn deliveries(rng: &mut Rng, lifecycles: &[Lifecycle], max_copies: usize, shuffle: bool) -> Vec<Value> {
    let mut stream = Vec::new();
    for event in lifecycles.iter().flat_map(|lifecycle| &lifecycle.events) {
        for _ in 0..rng.usize(1..=max_copies.max(1)) {
            stream.push(event.clone());
        }
    }
    if shuffle {
        rng.shuffle(&mut stream);
    }
    stream
}

/// Gives every event of the lifecycle, and its truth, a new task id.
pub fn rename_task(task: &mut Lifecycle, new_id: &str) {
    let Some((prefix, _)) = task.truth.task_arn.rsplit_once('/') else {
        return;
    };
    let renamed = format!("{prefix}/{new_id}");
    for event in task.events.iter_mut().chain(task.report.as_mut()) {
        event["detail"]["taskArn"] = json!(renamed);
        event["resources"] = json!([renamed]);
    }
    task.truth.task_arn = renamed;
}

/// The demo's stream: `count` tasks of each profile spread over the hour before `now_millis`, delivered in
/// time order except that every fourth task's RUNNING event arrives after its STOPPED event, and every
/// fifth event arrives twice. Image reports: every sixth task's arrives before its first state change,
/// the next one's twice, and one in six never comes (its `report` is then None).
pub fn demo_stream(seed: u64, profiles: &[(Profile, usize)], now_millis: i64) -> (Vec<Lifecycle>, Vec<Value>) {
    let mut rng = Rng::with_seed(seed);
    let mut ids = Rng::with_seed(now_millis.unsigned_abs() ^ seed.rotate_left(32));
    let mut tasks = Vec::new();
    for (profile, count) in profiles {
        for _ in 0..*count {
            // Created 50 to 100 minutes ago, with short runs so that every task has stopped by now.
            let created = now_millis - rng.i64(3_000_000..6_000_000);
            let profile = Profile {
                run: (600.0, 0.4),
                failure_rate: 0.08,
                spot_interruption_rate: 0.08,
                ..profile.clone()
            };
            let mut task = lifecycle(&mut rng, &profile, created);
            // Durations follow the seed; ids follow the clock (and the seed), so a second demo on a running
            // stack adds new tasks.
            rename_task(&mut task, &format!("{:016x}{:016x}", ids.u64(..), ids.u64(..)));
            tasks.push(task);
        }
    }
    let event_time = |event: &Value| {
        event["detail"]["updatedAt"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let mut timed: Vec<(String, Value)> = Vec::new();
    for (index, task) in tasks.iter_mut().enumerate() {
        for event in &task.events {
            let mut key = event_time(event);
            if index % 4 == 3 && event["detail"]["lastStatus"] == "RUNNING" {
                key = event_time(task.events.last().unwrap_or(event)) + "~late";
            }
            timed.push((key, event.clone()));
        }
        if index % 6 == 5 {
            task.report = None;
        }
        if let Some(report) = &task.report {
            let running = task.events.iter().find(|e| e["detail"]["lastStatus"] == "RUNNING");
            let after_running = running.map(|e| event_time(e) + "~report").unwrap_or_default();
            let key = match index % 6 {
                0 => task
                    .events
                    .first()
                    .map(|e| event_time(e) + "~early")
                    .unwrap_or_default(),
                _ => after_running.clone(),
            };
            timed.push((key, report.clone()));
            if index % 6 == 1 {
                timed.push((after_running + "~again", report.clone()));
            }
        }
    }
    timed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut stream = Vec::new();
    for (index, (_, event)) in timed.into_iter().enumerate() {
        if index % 5 == 4 {
            stream.push(event.clone());
        }
        stream.push(event);
    }
    (tasks, stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_trims_trailing_zeros() {
        // 2020-10-08T14:26:44Z = 1602167204 s (date -u -d ... +%s)
        assert_eq!(iso(1_602_167_204_000), "2020-10-08T14:26:44Z");
        assert_eq!(iso(1_602_167_204_980), "2020-10-08T14:26:44.98Z");
        assert_eq!(iso(1_602_167_204_402), "2020-10-08T14:26:44.402Z");
    }

    #[test]
    fn lifecycles_are_reproducible_and_ordered() {
        let profile = Profile::without_index("web", 3);
        let first = lifecycle(&mut Rng::with_seed(7), &profile, 1_700_000_000_000);
        let again = lifecycle(&mut Rng::with_seed(7), &profile, 1_700_000_000_000);
        assert_eq!(first.events, again.events);
        let versions: Vec<u64> = first
            .events
            .iter()
            .map(|e| e["detail"]["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, (1..=first.events.len() as u64).collect::<Vec<_>>());
        assert_eq!(first.truth.final_version, first.events.len() as u64);
    }

    #[test]
    fn failures_and_interruptions_occur() {
        let mut profile = Profile::with_index("web", 4);
        (profile.failure_rate, profile.spot_interruption_rate) = (0.3, 0.3);
        let mut rng = Rng::with_seed(11);
        let tasks: Vec<Lifecycle> = (0..200)
            .map(|i| lifecycle(&mut rng, &profile, 1_700_000_000_000 + i * 1000))
            .collect();
        let failed: Vec<&Lifecycle> = tasks.iter().filter(|t| t.truth.failed_to_start).collect();
        assert!(!failed.is_empty() && tasks.iter().any(|t| t.truth.spot_interrupted));
        for task in failed {
            let last = &task.events.last().unwrap()["detail"];
            assert_eq!(last["lastStatus"], "STOPPED");
            assert!(last.get("startedAt").is_none());
        }
    }

    #[test]
    fn deliveries_repeat_every_event_at_least_once() {
        let mut rng = Rng::with_seed(3);
        let task = lifecycle(&mut rng, &Profile::without_index("web", 1), 1_700_000_000_000);
        let stream = deliveries(&mut rng, std::slice::from_ref(&task), 3, true);
        assert!(stream.len() >= task.events.len() && stream.len() <= 3 * task.events.len());
        for event in &task.events {
            assert!(stream.contains(event));
        }
    }
}
