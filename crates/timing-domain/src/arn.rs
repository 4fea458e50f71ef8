//! The pieces of ECS ARNs the product needs: task id, cluster name, the account and region a task runs
//! in, task-definition family and revision.

/// `arn:<partition>:ecs:<region>:<account>:<resource>` -> (`<region>`, `<account>`, `<resource>`).
fn ecs_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (scheme, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    (scheme == "arn" && !partition.is_empty() && service == "ecs").then_some((region, account, resource))
}

fn ecs_resource(arn: &str) -> Option<&str> {
    ecs_parts(arn).map(|(_, _, resource)| resource)
}

/// Letters and digits only: published samples redact accounts as `XXXXXXXXXXXX`, and neither may hold
/// the `#` that separates the parts of a rollup key.
fn is_account(account: &str) -> bool {
    (1..=64).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_region(region: &str) -> bool {
    (1..=64).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: expected {expected}")]
pub struct ArnError {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl ArnError {
    fn new(field: &'static str, value: &str, expected: &'static str) -> Self {
        Self {
            field,
            value: value.chars().take(200).collect(),
            expected,
        }
    }
}

/// ECS's rule for cluster names (and what task ids are made of): 1 to 255 letters, digits, hyphens and
/// underscores. It also keeps a partition key far below DynamoDB's 2,048-byte limit.
pub fn is_ecs_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The account and region a task runs in, from its ARN. With the family and cluster names, it is what
/// tells two accounts' tasks apart: both may have a cluster `prod` and a family `web`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Origin {
    pub account: String,
    pub region: String,
}

impl Origin {
    pub fn of_task_arn(task_arn: &str) -> Option<Origin> {
        let task = parse_task_arn(task_arn).ok()?;
        Some(Origin {
            account: task.account.to_owned(),
            region: task.region.to_owned(),
        })
    }
}

/// A task ARN in the old (`task/<id>`) or new (`task/<cluster>/<id>`) format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskArn<'a> {
    pub task_id: &'a str,
    /// Only the new format names the cluster.
    pub cluster_name: Option<&'a str>,
    pub region: &'a str,
    pub account: &'a str,
}

pub fn parse_task_arn(arn: &str) -> Result<TaskArn<'_>, ArnError> {
    const EXPECTED: &str = "arn:aws:ecs:<region>:<account>:task/[<cluster>/]<id>";
    let (region, account, path) = ecs_parts(arn)
        .and_then(|(region, account, resource)| Some((region, account, resource.strip_prefix("task/")?)))
        .ok_or_else(|| ArnError::new("taskArn", arn, EXPECTED))?;
    let (task_id, cluster_name) = match path.split_once('/') {
        None => (path, None),
        Some((cluster, id)) => (id, Some(cluster)),
    };
    let parsed = TaskArn {
        task_id,
        cluster_name,
        region,
        account,
    };
    if is_ecs_name(parsed.task_id)
        && parsed.cluster_name.is_none_or(is_ecs_name)
        && is_region(region)
        && is_account(account)
    {
        Ok(parsed)
    } else {
        Err(ArnError::new("taskArn", arn, EXPECTED))
    }
}

/// `...:task-definition/<family>:<revision>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinition<'a> {
    pub family: &'a str,
    pub revision: u32,
}

pub fn parse_task_definition_arn(arn: &str) -> Result<TaskDefinition<'_>, ArnError> {
    let invalid = || {
        ArnError::new(
            "taskDefinitionArn",
            arn,
            "arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>",
        )
    };
    let (family, revision) = ecs_resource(arn)
        .and_then(|resource| resource.strip_prefix("task-definition/"))
        .and_then(|path| path.rsplit_once(':'))
        .ok_or_else(invalid)?;
    let family_ok = !family.is_empty()
        && family
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match revision.parse::<u32>() {
        Ok(revision) if family_ok && revision > 0 => Ok(TaskDefinition { family, revision }),
        _ => Err(invalid()),
    }
}

/// `...:cluster/<name>` -> `<name>`.
pub fn parse_cluster_arn(arn: &str) -> Result<&str, ArnError> {
    ecs_resource(arn)
        .and_then(|resource| resource.strip_prefix("cluster/"))
        .filter(|name| is_ecs_name(name))
        .ok_or_else(|| ArnError::new("clusterArn", arn, "arn:aws:ecs:<region>:<account>:cluster/<name>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_arn_in_both_formats() {
        let new =
            parse_task_arn("arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad")
                .unwrap();
        assert_eq!(
            new,
            TaskArn {
                task_id: "c13b4cb40f1f4fe4a2971f76ae5a47ad",
                cluster_name: Some("FargateCluster"),
                region: "us-west-2",
                account: "111122223333",
            }
        );
        let old =
            parse_task_arn("arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef").unwrap();
        assert_eq!(
            old,
            TaskArn {
                task_id: "b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
                cluster_name: None,
                region: "us-east-1",
                account: "111122223333",
            }
        );
        let china = parse_task_arn("arn:aws-cn:ecs:cn-north-1:111122223333:task/c/abc").unwrap();
        assert_eq!(china.task_id, "abc");
    }

    #[test]
    fn task_arn_rejections_name_the_field() {
        for bad in [
            "",
            "task/abc",
            "arn:aws:ec2:us-east-1:1:task/abc",
            "arn:aws:ecs:us-east-1:1:task/",
            "arn:aws:ecs:us-east-1:1:task/a/b/c",
            "arn:aws:ecs:us-east-1:1:service/abc",
            "arn:aws:ecs:us-east-1:1:task/c/t OR 1=1",
            // No region or account, or one that could break a rollup key apart.
            "arn:aws:ecs:::task/c/t",
            "arn:aws:ecs:us-east-1:1#2:task/c/t",
            "arn:aws:ecs:US-EAST-1:1:task/c/t",
        ] {
            let err = parse_task_arn(bad).unwrap_err();
            assert_eq!(err.field, "taskArn", "{bad}");
        }
        // A task id longer than ECS's 255 characters (a partition key must stay under 2,048 bytes).
        let long = format!("arn:aws:ecs:us-east-1:1:task/c/{}", "a".repeat(256));
        assert_eq!(parse_task_arn(&long).unwrap_err().value.len(), 200);
        assert!(parse_task_arn(&format!("arn:aws:ecs:us-east-1:1:task/c/{}", "a".repeat(255))).is_ok());
    }

    #[test]
    fn family_and_revision() {
        let def = parse_task_definition_arn(
            "arn:aws:ecs:us-east-2:XXXXXXXXXXXX:task-definition/DemoTrafficGen01TaskDef59B414B2:10",
        )
        .unwrap();
        assert_eq!(
            def,
            TaskDefinition {
                family: "DemoTrafficGen01TaskDef59B414B2",
                revision: 10
            }
        );
        let def =
            parse_task_definition_arn("arn:aws:ecs:eu-west-1:715329755018:task-definition/engine_v2-arm:51").unwrap();
        assert_eq!((def.family, def.revision), ("engine_v2-arm", 51));
    }

    #[test]
    fn task_definition_rejections() {
        for bad in [
            "arn:aws:ecs:r:a:task-definition/web",
            "arn:aws:ecs:r:a:task-definition/web:x",
            "arn:aws:ecs:r:a:task-definition/:3",
            "arn:aws:ecs:r:a:task-definition/we b:3",
            "arn:aws:ecs:r:a:task-definition/web:0",
            "web:3",
        ] {
            let err = parse_task_definition_arn(bad).unwrap_err();
            assert_eq!(err.field, "taskDefinitionArn", "{bad}");
            assert!(err.to_string().contains("<family>:<revision>"), "{err}");
        }
    }

    #[test]
    fn cluster_name() {
        assert_eq!(
            parse_cluster_arn("arn:aws:ecs:us-east-1:1:cluster/default").unwrap(),
            "default"
        );
        assert!(parse_cluster_arn("arn:aws:ecs:us-east-1:1:cluster/").is_err());
        assert!(parse_cluster_arn("default").is_err());
    }
}
