//! Work that runs on a clock rather than on a request: the sweeps that raise SLA
//! warnings and breaches, agent stress flags and overdue-promise alerts, and the
//! refresh of the reports' daily roll-ups.
//!
//! Several kefu processes may serve one database. Each tries for the `sweeps` lease
//! in the database every interval; the one holding it sweeps, the others wait, and if
//! the holder dies its lease runs out and another takes over.

use kefu_store::Store;
use std::time::Duration;

/// How often the sweeps run.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Runs the sweeps until the task is dropped or aborted.
pub async fn run_sweeps(store: Store, interval: Duration) {
    let holder = kefu_store::new_public_id();
    let lease_ms = i64::try_from(interval.as_millis() * 3).unwrap_or(i64::MAX);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match store.try_lock("sweeps", &holder, lease_ms).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot take the sweep lease");
                continue;
            }
        }
        match store.sweep_sla().await {
            Ok(report) if report.warned + report.breached > 0 => {
                tracing::info!(
                    warned = report.warned,
                    breached = report.breached,
                    "SLA sweep"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "SLA sweep failed"),
        }
        match store.sweep_stress().await {
            Ok(report) if report.raised > 0 => {
                tracing::info!(raised = report.raised, "agent stress flags raised");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "stress sweep failed"),
        }
        match store.sweep_promises().await {
            Ok(report) if report.alerted > 0 => {
                tracing::info!(alerted = report.alerted, "overdue promises alerted");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "promise sweep failed"),
        }
        // Roll-ups last, with what is left of a third of the interval: reports are exact
        // without them, only slower.
        match store.refresh_reports(interval / 3).await {
            Ok(report) if report.days > 0 => {
                tracing::debug!(
                    days = report.days,
                    remaining = report.remaining,
                    "report roll-ups refreshed"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "report roll-up refresh failed"),
        }
    }
}
