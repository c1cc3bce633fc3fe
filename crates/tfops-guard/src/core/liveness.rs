//! `liveness` — whether tofu-controller is running, from positive evidence only (pure).
//!
//! tofu-controller v0.16.5 runs with leader election (`LeaderElectionID:
//! "1953de50.contrib.fluxcd.io"`, `cmd/manager/main.go` line 174; fluxcd/pkg
//! `runtime/leaderelection` defaults: lease duration 35 s, renew deadline 30 s, retry period
//! 5 s). The leader renews `spec.renewTime` of that `coordination.k8s.io` Lease in the
//! controller's namespace every retry period; a controller that is not running stops renewing
//! it (or releases it: empty `holderIdentity`).
//!
//! The guard samples the Lease now and then and judges on what it saw change, in its OWN clock,
//! so that clock skew between the guard and the controller does not matter:
//! - **Present**: `renewTime` changed between two samples less than twice the lease duration
//!   ago, or the first sample's `renewTime` is within the lease duration of the guard's now.
//! - **Missing**: the same `renewTime` (or an empty holder) was seen for longer than twice the
//!   lease duration of guard time — no leader, so no reconcile of any `Terraform` runs.
//! - **Unknown**: no Lease readable (not found: leader election off, another namespace; or no
//!   permission), or not watched long enough. Unknown is never treated as absent: silence
//!   alone never leads the guard to force-remove.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::core::machine::Presence;

/// tofu-controller's leader-election Lease name (`cmd/manager/main.go` v0.16.5 line 174).
pub const CONTROLLER_LEASE_NAME: &str = tfops_api::names::TF_LEADER_LEASE;
/// Namespace tofu-controller is installed in by default (its Helm chart / Flux bootstrap).
pub const CONTROLLER_NAMESPACE: &str = "flux-system";
/// fluxcd/pkg `runtime/leaderelection` default lease duration, used when the Lease says none.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(35);

/// One read of the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSample {
    /// `spec.holderIdentity` (empty or absent: released).
    pub holder: Option<String>,
    /// `spec.renewTime` as written (the controller's clock).
    pub renew_time: Option<DateTime<Utc>>,
    /// `spec.leaseDurationSeconds`.
    pub lease_duration: Option<Duration>,
}

/// What the guard has seen of the Lease so far (its own clock for every time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseTrack {
    /// The last sample and when it was taken; `None` while the Lease was not readable.
    last: Option<(LeaseSample, DateTime<Utc>)>,
    /// When the current `(holder, renewTime)` was first seen.
    unchanged_since: Option<DateTime<Utc>>,
    /// When a change of `renewTime` was last seen.
    renewed_at: Option<DateTime<Utc>>,
}

impl LeaseTrack {
    /// Record a read at guard time `now`; `None` = not readable (404 / 403).
    pub fn observe(&mut self, sample: Option<LeaseSample>, now: DateTime<Utc>) {
        let Some(sample) = sample else {
            *self = LeaseTrack::default();
            return;
        };
        let same = self.last.as_ref().is_some_and(|(prev, _)| {
            prev.renew_time == sample.renew_time && prev.holder == sample.holder
        });
        if !same {
            if self.last.is_some() {
                self.renewed_at = Some(now);
            }
            self.unchanged_since = Some(now);
        }
        self.last = Some((sample, now));
    }

    fn lease_duration(&self) -> Duration {
        self.last
            .as_ref()
            .and_then(|(s, _)| s.lease_duration)
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_LEASE_DURATION)
    }

    /// The controller's presence at guard time `now`.
    pub fn presence(&self, now: DateTime<Utc>) -> Presence {
        let Some((sample, _)) = &self.last else {
            return Presence::Unknown;
        };
        let dur = self.lease_duration();
        let twice = chrono::TimeDelta::from_std(dur * 2).unwrap_or(chrono::TimeDelta::MAX);
        let once = chrono::TimeDelta::from_std(dur).unwrap_or(chrono::TimeDelta::MAX);
        let released = sample.holder.as_deref().is_none_or(str::is_empty);
        if !released && self.renewed_at.is_some_and(|r| now - r < twice) {
            return Presence::Present;
        }
        if self.unchanged_since.is_some_and(|s| now - s > twice) {
            return Presence::Missing;
        }
        let fresh = sample.renew_time.is_some_and(|r| (now - r).abs() < once);
        if !released && fresh {
            return Presence::Present;
        }
        Presence::Unknown
    }

    /// One line for logs and `doctor`.
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        match (&self.last, self.presence(now)) {
            (None, _) => format!(
                "no leader-election Lease {CONTROLLER_LEASE_NAME} readable: liveness unknown"
            ),
            (Some((s, _)), Presence::Present) => format!(
                "leader-election Lease renewed (holder {})",
                s.holder.as_deref().unwrap_or("-")
            ),
            (Some((s, _)), Presence::Missing) => format!(
                "leader-election Lease not renewed since {} (holder {}): tofu-controller is not running",
                s.renew_time.map_or("-".to_owned(), |t| t.to_rfc3339()),
                s.holder.as_deref().filter(|h| !h.is_empty()).unwrap_or("none")
            ),
            (Some(_), Presence::Unknown) => {
                "leader-election Lease seen, not watched long enough to tell".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn lease(renew: i64) -> Option<LeaseSample> {
        Some(LeaseSample {
            holder: Some("tofu-controller-7d9f_1".into()),
            renew_time: Some(t(renew)),
            lease_duration: Some(Duration::from_secs(35)),
        })
    }

    #[test]
    fn nothing_readable_is_unknown_never_missing() {
        let mut tr = LeaseTrack::default();
        assert_eq!(tr.presence(t(0)), Presence::Unknown);
        tr.observe(None, t(0));
        tr.observe(None, t(500));
        assert_eq!(tr.presence(t(1000)), Presence::Unknown);
    }

    #[test]
    fn a_renewal_seen_is_present() {
        let mut tr = LeaseTrack::default();
        // Skewed clocks: the controller's renewTime is 10 minutes behind the guard's.
        tr.observe(lease(-600), t(0));
        assert_eq!(tr.presence(t(0)), Presence::Unknown);
        tr.observe(lease(-595), t(5));
        assert_eq!(tr.presence(t(5)), Presence::Present);
        assert_eq!(tr.presence(t(60)), Presence::Present);
    }

    #[test]
    fn a_fresh_first_sample_is_present() {
        let mut tr = LeaseTrack::default();
        tr.observe(lease(-2), t(0));
        assert_eq!(tr.presence(t(0)), Presence::Present);
    }

    #[test]
    fn no_renewal_for_twice_the_lease_duration_is_missing() {
        let mut tr = LeaseTrack::default();
        tr.observe(lease(-5), t(0));
        tr.observe(lease(-5), t(40));
        assert_ne!(tr.presence(t(40)), Presence::Missing);
        tr.observe(lease(-5), t(71));
        assert_eq!(tr.presence(t(71)), Presence::Missing);
        // The controller comes back: renewed again.
        tr.observe(lease(75), t(76));
        assert_eq!(tr.presence(t(76)), Presence::Present);
    }

    #[test]
    fn a_released_lease_is_not_present() {
        let mut tr = LeaseTrack::default();
        let released = Some(LeaseSample {
            holder: Some(String::new()),
            renew_time: Some(t(0)),
            lease_duration: Some(Duration::from_secs(35)),
        });
        tr.observe(released.clone(), t(0));
        assert_eq!(tr.presence(t(1)), Presence::Unknown);
        tr.observe(released, t(80));
        assert_eq!(tr.presence(t(80)), Presence::Missing);
    }
}
