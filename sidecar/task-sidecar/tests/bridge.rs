//! The CBOR bridge (tools/cloudwatch_bridge.py) between aws-sdk-cloudwatch and moto: what the SDK puts
//! comes back through GetMetricData with its values, units, dimensions and timestamps; errors keep
//! their codes; a body that is not CBOR is refused.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, StandardUnit};
use task_timing_tests::clock::cloudwatch_from_env;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// moto 5.2.5's GetMetricData ignores the namespace once dimensions are given, so each run's points
/// carry their own cluster name.
fn cluster() -> &'static str {
    static CLUSTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        format!(
            "bridge-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        )
    })
}

fn dimensions() -> Vec<Dimension> {
    vec![
        Dimension::builder().name("ClusterName").value(cluster()).build(),
        Dimension::builder().name("TaskFamily").value("probe").build(),
    ]
}

fn query(id: &str, namespace: &str, metric: &str, unit: StandardUnit) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(dimensions()))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(60)
                .stat("Maximum")
                .unit(unit)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn put_metric_data_comes_back_through_get_metric_data() {
    let client = cloudwatch_from_env().await.unwrap();
    let namespace = format!("Test/Bridge{}", std::process::id());
    let now = chrono::Utc::now().timestamp();
    // Minute-aligned, so moto's buckets (start + k × period) start exactly at the points.
    let t0 = now - now.rem_euclid(60) - 600;
    let datum = |metric: &str, unit: StandardUnit, value: f64, at: i64| {
        MetricDatum::builder()
            .metric_name(metric)
            .unit(unit)
            .value(value)
            .timestamp(DateTime::from_secs(at))
            .set_dimensions(Some(dimensions()))
            .build()
    };
    client
        .put_metric_data()
        .namespace(&namespace)
        .metric_data(datum("ClockErrorBound", StandardUnit::Milliseconds, 0.5, t0))
        .metric_data(datum("ClockErrorBound", StandardUnit::Milliseconds, 0.75, t0 + 60))
        .metric_data(datum("ReferenceAge", StandardUnit::Seconds, 12.5, t0))
        .send()
        .await
        .unwrap();
    let answer = client
        .get_metric_data()
        .start_time(DateTime::from_secs(t0 - 60))
        .end_time(DateTime::from_secs(t0 + 180))
        .metric_data_queries(query(
            "bound",
            &namespace,
            "ClockErrorBound",
            StandardUnit::Milliseconds,
        ))
        .metric_data_queries(query("age", &namespace, "ReferenceAge", StandardUnit::Seconds))
        .send()
        .await
        .unwrap();
    let results = answer.metric_data_results();
    let series = |id: &str| {
        let result = results.iter().find(|r| r.id() == Some(id)).unwrap();
        let times: Vec<i64> = result.timestamps().iter().map(|t| t.secs()).collect();
        let mut points: Vec<(i64, f64)> = times.into_iter().zip(result.values().iter().copied()).collect();
        points.sort_by_key(|(t, _)| *t);
        points
    };
    // Timestamps decoded from CBOR tag 1 are the points' own, values are doubles.
    assert_eq!(series("bound"), [(t0, 0.5), (t0 + 60, 0.75)]);
    assert_eq!(series("age"), [(t0, 12.5)]);
    let listed = client.list_metrics().namespace(&namespace).send().await.unwrap();
    let mut names: Vec<&str> = listed.metrics().iter().filter_map(|m| m.metric_name()).collect();
    names.sort();
    // moto lists a metric once per point; CloudWatch once per metric.
    names.dedup();
    assert_eq!(names, ["ClockErrorBound", "ReferenceAge"]);
    for metric in listed.metrics() {
        let dims: Vec<(&str, &str)> = metric
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap_or(""), d.value().unwrap_or("")))
            .collect();
        assert_eq!(dims, [("ClusterName", cluster()), ("TaskFamily", "probe")]);
    }
}

#[tokio::test]
async fn errors_keep_their_codes_and_bad_bodies_are_refused() {
    let client = cloudwatch_from_env().await.unwrap();
    // A query with neither MetricStat nor Expression: moto refuses it, as CloudWatch does.
    let err = client
        .get_metric_data()
        .start_time(DateTime::from_secs(1_795_000_000))
        .end_time(DateTime::from_secs(1_795_000_600))
        .metric_data_queries(MetricDataQuery::builder().id("empty").build())
        .send()
        .await
        .unwrap_err();
    let service = err
        .as_service_error()
        .unwrap_or_else(|| panic!("not a service error: {err:?}"));
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(service),
        Some("ValidationError")
    );

    let endpoint = std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH").unwrap();
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "POST /service/GraniteServiceVersion20100801/operation/PutMetricData HTTP/1.1\r\nHost: {address}\r\n\
         smithy-protocol: rpc-v2-cbor\r\nContent-Type: application/cbor\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    // A CBOR break code with nothing to break: not a CBOR data item.
    request.extend([0xff; 4]);
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("SerializationException"), "{text}");
}

#[tokio::test]
async fn large_put_metric_data_bodies_arrive_gzipped_and_whole() {
    let client = cloudwatch_from_env().await.unwrap();
    let namespace = format!("Test/BridgeGzip{}", std::process::id());
    let now = chrono::Utc::now().timestamp();
    let t0 = now - now.rem_euclid(60) - 3600;
    // 400 points of about 100 bytes each: past the SDK's 10 KiB threshold for compressing the body.
    let mut put = client.put_metric_data().namespace(&namespace);
    for i in 0..400 {
        put = put.metric_data(
            MetricDatum::builder()
                .metric_name("Gzipped")
                .unit(StandardUnit::Count)
                .value(f64::from(i))
                .timestamp(DateTime::from_secs(t0 + i64::from(i)))
                .set_dimensions(Some(dimensions()))
                .build(),
        );
    }
    put.send().await.unwrap();
    let metric = Metric::builder()
        .namespace(&namespace)
        .metric_name("Gzipped")
        .set_dimensions(Some(dimensions()))
        .build();
    let answer = client
        .get_metric_data()
        .start_time(DateTime::from_secs(t0))
        .end_time(DateTime::from_secs(t0 + 600))
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("all")
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(600)
                        .stat("Sum")
                        .unit(StandardUnit::Count)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    // 0 + 1 + … + 399.
    assert_eq!(answer.metric_data_results()[0].values(), [79_800.0]);
}
