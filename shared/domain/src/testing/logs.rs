//! The log sink read back, as the log table's indexes answer: by integration and time, by
//! trace, by error code and time; newest first, a page at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{lock, page_of, MemoryLogSink};
use crate::error::PortError;
use crate::log::{Integration, LogRecord};
use crate::page::{Page, PageRequest};
use crate::ports::LogReader;
use crate::tenant::TenantId;

impl MemoryLogSink {
    fn matching(&self, keep: impl Fn(&LogRecord) -> bool, page: &PageRequest) -> Page<LogRecord> {
        let mut found: Vec<LogRecord> = lock(&self.0).iter().filter(|r| keep(r)).cloned().collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.occurred_at));
        page_of(found, page)
    }
}

#[async_trait]
impl LogReader for MemoryLogSink {
    async fn by_integration(
        &self,
        tenant: &TenantId,
        integration: Integration,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        let keep = |r: &LogRecord| {
            &r.tenant_id == tenant
                && r.integration == integration
                && r.occurred_at >= from
                && r.occurred_at < to
        };
        Ok(self.matching(keep, &page))
    }

    async fn by_trace(
        &self,
        tenant: &TenantId,
        trace_id: &str,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        let keep = |r: &LogRecord| &r.tenant_id == tenant && r.trace_id.as_str() == trace_id;
        Ok(self.matching(keep, &page))
    }

    async fn by_error_code(
        &self,
        tenant: &TenantId,
        code: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        let keep = |r: &LogRecord| {
            &r.tenant_id == tenant
                && r.error_code.as_deref() == Some(code)
                && r.occurred_at >= from
                && r.occurred_at < to
        };
        Ok(self.matching(keep, &page))
    }
}
