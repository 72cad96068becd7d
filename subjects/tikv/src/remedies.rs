//! What TiKV's actions do: each request parsed once, done through PD (operators, evict-leader
//! schedulers recorded in the ledger before they exist) or the deployment target, and verified
//! against PD before it is called done.

use std::collections::BTreeSet;

use operator_protocol::*;

use crate::actions::TikvAction;
use crate::facts::*;
use crate::subject::*;

/// How long PD's balance-leader may go without shrinking the spread before a rebalance
/// moves leaders itself, and how long it waits on PD at most.
pub(crate) const PD_STALL: std::time::Duration = std::time::Duration::from_secs(3);
pub(crate) const PD_BALANCE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) enum PdBalance {
    /// PD evened the leaders out; what to say.
    Done(String),
    /// PD stopped making progress; what it did.
    Stalled(String),
}

/// What PD runs while operator-tui evicts a store's leaders, as the ledger names it.
pub(crate) const PD_SCHEDULER: &str = "pd_scheduler";

pub(crate) fn eviction(store: u64) -> Residue {
    Residue::new(
        PD_SCHEDULER,
        &format!("evict-leader-scheduler-{store}"),
        &format!("PD evicts store-{store}'s leaders"),
    )
}

impl TikvSubject {
    /// Asks PD to evict the store's leaders, recorded first (in the ledger, so that a crash
    /// cannot leave it behind unknown, and here, so that it is not taken for someone else's).
    pub(crate) async fn evict_leaders(&self, store: u64) -> ContractResult<String> {
        if let Some(ledger) = self.ledger.get() {
            ledger.left(&eviction(store))?;
        }
        self.own_evictions_mut().insert(store);
        self.pd.add_evict_leader(store).await.map_err(pd_error)
    }

    /// Lets the store lead again; an eviction already gone counts as removed.
    pub(crate) async fn stop_evicting(&self, store: u64) -> ContractResult<String> {
        let said = match self.pd.remove_evict_leader(store).await {
            Ok(said) => said,
            Err(crate::pd::PdError {
                status: Some(404), ..
            }) => "it was not there (any more)".into(),
            Err(e) => return Err(pd_error(e)),
        };
        self.own_evictions_mut().remove(&store);
        if let Some(ledger) = self.ledger.get() {
            ledger.removed(&eviction(store));
        }
        Ok(said)
    }

    pub(crate) fn own_evictions_mut(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.own_evictions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up stores' leader counts, from PD.
    pub(crate) async fn up_leader_counts(&self) -> Result<Vec<(u64, u64)>, crate::pd::PdError> {
        let stores = self.pd.stores().await?;
        Ok(stores
            .stores
            .iter()
            .filter(|s| s.store.state_name == StoreState::Up)
            .map(|s| (s.store.id, s.status.leader_count))
            .collect())
    }

    /// Leaves the leaders to PD's balance-leader-scheduler while it makes progress, and
    /// evens them out itself when PD does not run it or stops gaining.
    pub(crate) async fn rebalance_leaders(&self, first: u64) -> ContractResult<String> {
        // PD's balance-leader-scheduler does this work itself: while it makes progress,
        // moving leaders as well would fight it.
        let pd_balances = self
            .pd
            .schedulers()
            .await
            .map_err(pd_error)?
            .iter()
            .any(|n| n == "balance-leader-scheduler");
        let mut said = String::new();
        if pd_balances {
            match self.wait_while_pd_balances().await? {
                PdBalance::Done(done) => return Ok(done),
                PdBalance::Stalled(why) => said = format!("{why}; "),
            }
        }
        self.evict_until_balanced(first)
            .await
            .map(|done| format!("{said}{done}"))
    }

    /// The spread of the Up stores' leader counts, and half what the invariant allows: the
    /// balance a rebalance aims for.
    pub(crate) async fn leader_spread(&self) -> ContractResult<(u64, f64)> {
        let counts = self.up_leader_counts().await.map_err(pd_error)?;
        let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let least = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
        let mean = counts.iter().map(|(_, n)| n).sum::<u64>() as f64 / counts.len().max(1) as f64;
        let target = (self.thresholds.leader_spread as f64)
            .max(mean * self.thresholds.leader_spread_ratio)
            / 2.0;
        Ok((most - least, target))
    }

    /// Watches PD's balance-leader-scheduler even the leaders out: done when the spread is
    /// within the target, stalled when it has not shrunk for `PD_STALL`, and never past
    /// `PD_BALANCE_WAIT`.
    pub(crate) async fn wait_while_pd_balances(&self) -> ContractResult<PdBalance> {
        let started = tokio::time::Instant::now();
        let (first, target) = self.leader_spread().await?;
        let (mut best, mut improved) = (first, started);
        loop {
            let (spread, _) = self.leader_spread().await?;
            if (spread as f64) <= target {
                return Ok(PdBalance::Done(format!(
                    "PD's balance-leader-scheduler evened the leaders out (spread {first} → {spread} in {:.1} s): moved nothing",
                    started.elapsed().as_secs_f64()
                )));
            }
            if spread < best {
                (best, improved) = (spread, tokio::time::Instant::now());
            }
            if improved.elapsed() > PD_STALL || started.elapsed() > PD_BALANCE_WAIT {
                return Ok(PdBalance::Stalled(format!(
                    "PD's balance-leader-scheduler brought the spread from {first} to {spread} in {:.1} s and then stopped gaining",
                    started.elapsed().as_secs_f64()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Evicts leaders from the hottest store (first the named one) until it leads no more
    /// than its share, lets it lead again, and repeats with the next hottest until the spread
    /// is within half what the invariant allows. Evicting from one store alone is not enough:
    /// its leaders may land on a store that was already warm.
    pub(crate) async fn evict_until_balanced(&self, first: u64) -> ContractResult<String> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut hottest = first;
        let mut rounds = 0;
        loop {
            self.evict_leaders(hottest).await?;
            let drained = loop {
                let counts = self.up_leader_counts().await;
                let Ok(counts) = counts else {
                    break counts.map(|_| ());
                };
                let share = counts.iter().map(|(_, n)| n).sum::<u64>() / counts.len().max(1) as u64;
                let mine = counts
                    .iter()
                    .find(|(id, _)| *id == hottest)
                    .map_or(0, |(_, n)| *n);
                if mine <= share || tokio::time::Instant::now() > deadline {
                    break Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            };
            // Always let the store lead again, even when reading PD failed.
            self.stop_evicting(hottest).await?;
            drained.map_err(pd_error)?;
            rounds += 1;
            let counts = self.up_leader_counts().await.map_err(pd_error)?;
            let (Some(most), Some(least)) = (
                counts.iter().max_by_key(|(_, n)| *n),
                counts.iter().min_by_key(|(_, n)| *n),
            ) else {
                return Ok("no Up stores to balance".into());
            };
            let mean = counts.iter().map(|(_, n)| n).sum::<u64>() as f64 / counts.len() as f64;
            let allowed = (self.thresholds.leader_spread as f64)
                .max(mean * self.thresholds.leader_spread_ratio)
                / 2.0;
            let spread = (most.1 - least.1) as f64;
            if spread <= allowed
                || rounds >= counts.len() * 2
                || tokio::time::Instant::now() > deadline
            {
                let summary: Vec<String> = counts
                    .iter()
                    .map(|(id, n)| format!("store-{id} {n}"))
                    .collect();
                return Ok(format!(
                    "leaders after {rounds} round(s): {}",
                    summary.join(", ")
                ));
            }
            hottest = most.0;
        }
    }

    /// Waits until PD shows `what` (the check answers true), so that an action's outcome is
    /// what PD reports afterwards, not only that PD accepted the request.
    pub(crate) async fn verify<F, Fut>(&self, what: &str, check: F) -> ContractResult<String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, crate::pd::PdError>>,
    {
        let deadline = tokio::time::Instant::now() + self.verify_timeout;
        let mut last_error = None;
        loop {
            match check().await {
                Ok(true) => return Ok(format!("verified through PD: {what}")),
                Ok(false) => {}
                Err(e) => last_error = Some(e.to_string()),
            }
            if tokio::time::Instant::now() > deadline {
                let why = last_error
                    .map(|e| format!(" (last PD error: {e})"))
                    .unwrap_or_default();
                return Err(ContractError::Refused(format!(
                    "PD does not show {what} after {} s{why}",
                    self.verify_timeout.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn execute_action(
        &self,
        request: &ActionRequest,
        target: &dyn DeploymentTarget,
    ) -> ContractResult<ActionOutcome> {
        let summary = match TikvAction::parse(request)? {
            TikvAction::TransferLeader { region, to } => {
                let accepted = self
                    .pd
                    .transfer_leader(region, to)
                    .await
                    .map_err(pd_error)?;
                let verified = self
                    .verify(&format!("region {region} led from store-{to}"), || async {
                        let r = self.pd.region(region).await?;
                        Ok(r.is_some_and(|r| r.leader.store_id == to))
                    })
                    .await?;
                format!("{accepted}; {verified}")
            }
            TikvAction::TransferPeer { region, from, to } => {
                let accepted = self
                    .pd
                    .transfer_peer(region, from, to)
                    .await
                    .map_err(pd_error)?;
                let verified = self
                    .verify(
                        &format!("region {region}'s replica on store-{to}, none on store-{from}"),
                        || async {
                            let r = self.pd.region(region).await?;
                            Ok(r.is_some_and(|r| {
                                let on = |store| r.peers.iter().any(|p| p.store_id == store);
                                on(to) && !on(from)
                            }))
                        },
                    )
                    .await?;
                format!("{accepted}; {verified}")
            }
            TikvAction::RebalanceLeaders { store } => self.rebalance_leaders(store).await?,
            TikvAction::DrainStore { store } => {
                self.evict_leaders(store).await?;
                self.verify(&format!("store-{store} leading no region"), || async {
                    Ok(self.pd.store(store).await?.status.leader_count == 0)
                })
                .await?;
                let max = self.pd.max_replicas().await.map_err(pd_error)?;
                let up = self
                    .pd
                    .stores()
                    .await
                    .map_err(pd_error)?
                    .stores
                    .iter()
                    .filter(|s| s.store.state_name == StoreState::Up)
                    .count() as u64;
                if up <= max {
                    format!(
                        "leaders evicted from store-{store}; not taken offline: {} Up stores would remain while max-replicas is {max}",
                        up.saturating_sub(1)
                    )
                } else {
                    let accepted = self.pd.delete_store(store).await.map_err(pd_error)?;
                    let verified = self
                        .verify(&format!("store-{store} Offline"), || async {
                            Ok(self.pd.store(store).await?.store.state_name == StoreState::Offline)
                        })
                        .await?;
                    format!("leaders evicted from store-{store}; {accepted}; {verified}")
                }
            }
            TikvAction::UndrainStore { store } => {
                // Not evicting already is fine: the store may lead either way.
                self.stop_evicting(store).await?;
                let state = self
                    .pd
                    .store(store)
                    .await
                    .map_err(pd_error)?
                    .store
                    .state_name;
                if state == StoreState::Offline {
                    let accepted = self.pd.set_store_up(store).await.map_err(pd_error)?;
                    let verified = self
                        .verify(&format!("store-{store} Up"), || async {
                            Ok(self.pd.store(store).await?.store.state_name == StoreState::Up)
                        })
                        .await?;
                    format!("leaders may return to store-{store}; {accepted}; {verified}")
                } else {
                    format!("leaders may return to store-{store}")
                }
            }
            TikvAction::RestartNode { node } => {
                target.start(&node).await?;
                // Back means PD hears from it again: a store heartbeating (Up), a PD
                // member healthy.
                let verified = match store_id(&node.0) {
                    Some(id) => {
                        self.verify(&format!("{node} Up, heartbeating"), || async {
                            Ok(self.pd.store(id).await?.store.state_name == StoreState::Up)
                        })
                        .await?
                    }
                    None => {
                        self.verify(&format!("{node} healthy"), || async {
                            let health = self.pd.health().await?;
                            Ok(health.iter().any(|m| m.name == node.0 && m.health))
                        })
                        .await?
                    }
                };
                format!("{node} restarted; {verified}")
            }
        };
        Ok(ActionOutcome { summary })
    }
}
