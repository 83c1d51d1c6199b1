//! Tasks for CRM users ("new WhatsApp lead: call back").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    pub card_id: String,
    pub owner: String,
    pub title: String,
    pub status: TaskStatus,
    pub due_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}
