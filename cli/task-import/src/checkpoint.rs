//! Where an interrupted import resumes: the log group, the window and FilterLogEvents' next token, saved
//! after every page. The token is CloudWatch Logs' own (it expires after 24 hours); a page read again is
//! harmless, since the record write is idempotent.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ImportError;
use crate::progress::Counts;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub log_group: String,
    /// The window, epoch milliseconds, as FilterLogEvents takes it.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The page to read next.
    pub next_token: Option<String>,
    /// What the import had done by then.
    pub counts: Counts,
}

fn failed(path: &Path, message: impl std::fmt::Display) -> ImportError {
    ImportError::Checkpoint {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl Checkpoint {
    /// The checkpoint at `path`, or None when there is none.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, ImportError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| failed(path, err)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(failed(path, err)),
        }
    }

    /// Written beside and renamed over, so an import killed mid-write leaves the previous checkpoint whole.
    pub fn save(&self, path: &Path) -> Result<(), ImportError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|err| failed(path, err))?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes).map_err(|err| failed(path, err))?;
        std::fs::rename(&partial, path).map_err(|err| failed(path, err))
    }

    /// Whether it is a checkpoint of this import (same group and window).
    pub fn is_for(&self, log_group: &str, from: Option<i64>, to: Option<i64>) -> bool {
        self.log_group == log_group && self.from == from && self.to == to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_loads_back_and_knows_its_import() {
        let dir = std::env::temp_dir().join(format!("task-import-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint.json");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let checkpoint = Checkpoint {
            log_group: "/ecs/cluster/events/prod".into(),
            from: Some(1_700_000_000_000),
            to: None,
            next_token: Some("token-3".into()),
            counts: Counts {
                pages: 3,
                read: 30,
                ..Counts::default()
            },
        };
        checkpoint.save(&path).unwrap();
        let loaded = Checkpoint::load(&path).unwrap().unwrap();
        assert_eq!(loaded, checkpoint);
        assert!(loaded.is_for("/ecs/cluster/events/prod", Some(1_700_000_000_000), None));
        assert!(!loaded.is_for("/ecs/cluster/events/prod", None, None));
        std::fs::write(&path, b"not json").unwrap();
        assert!(
            Checkpoint::load(&path)
                .unwrap_err()
                .to_string()
                .contains("checkpoint.json")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
