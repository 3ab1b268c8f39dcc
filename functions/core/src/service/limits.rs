//! The per-project and per-tenant limits on unfinished exports.

use super::{ExportService, ServiceError};
use crate::error::chain;
use crate::job::{ActiveJob, JobError};
use std::time::Duration;

/// How long a caller refused for too many running exports waits before asking again.
pub const RETRY_AFTER_LIMIT: Duration = Duration::from_secs(60);

impl ExportService {
    /// Refuses a new export while the project has `max_active_per_project` unfinished,
    /// or its tenant `max_active_per_tenant` across its projects. Each marker's record is
    /// read, so a marker left behind by an ended job never counts (and is cleared);
    /// counting stops at the limit. Two requests at the same moment may both pass: the
    /// limits protect capacity, they are not quotas.
    pub(super) async fn within_limits(
        &self,
        project: &str,
        tenant: &str,
    ) -> Result<(), ServiceError> {
        let project_limit = self.settings.max_active_per_project;
        if project_limit > 0 {
            let active = self
                .jobs
                .active(Some(project))
                .await
                .map_err(|e| ServiceError::unavailable("counting the project's exports", e))?;
            if self.count_live(active, project_limit, None).await? >= project_limit {
                return Err(ServiceError::TooManyExports(format!("project {project} already has {project_limit} exports queued or running, the most it may have; try again when one has finished")));
            }
        }
        let tenant_limit = self.settings.max_active_per_tenant;
        if tenant_limit > 0 {
            let active = self
                .jobs
                .active_for_tenant(tenant)
                .await
                .map_err(|e| ServiceError::unavailable("counting the tenant's exports", e))?;
            if self.count_live(active, tenant_limit, Some(tenant)).await? >= tenant_limit {
                return Err(ServiceError::TooManyExports(format!("the projects of your organisation already have {tenant_limit} exports queued or running, the most they may have together; try again when one has finished")));
            }
        }
        Ok(())
    }

    /// How many of the marked jobs are unfinished, counting up to `limit`; the markers of
    /// ended jobs are cleared on the way (`tenant`'s markers, or the projects').
    async fn count_live(
        &self,
        marked: Vec<ActiveJob>,
        limit: u32,
        tenant: Option<&str>,
    ) -> Result<u32, ServiceError> {
        let mut unfinished = 0;
        for entry in marked {
            let live = match self.jobs.get(&entry.id).await {
                Ok(v) => !v.job.state.is_terminal(),
                // A request writing its record right now, or one that died doing so.
                Err(JobError::NotFound(_)) => entry.may_still_be_written(chrono::Utc::now()),
                Err(e) => return Err(ServiceError::unavailable("counting the running exports", e)),
            };
            if !live {
                let cleared = match tenant {
                    Some(tenant) => self.jobs.clear_tenant_marker(tenant, &entry).await,
                    None => self.jobs.clear_marker(&entry).await,
                };
                if let Err(e) = cleared {
                    tracing::warn!(export_id = %entry.id, error = %chain(&e), "could not clear an ended export's marker");
                }
                continue;
            }
            unfinished += 1;
            if unfinished >= limit {
                break;
            }
        }
        Ok(unfinished)
    }
}
