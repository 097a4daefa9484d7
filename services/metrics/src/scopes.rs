//! Keeps the chain's and regions' own sums (store/scopes.rs) up: at start, brings them in
//! line with the configured chain (retried until the database answers: the service starts
//! without it; until then GetKpis sums the properties' rows, which is slower but the same
//! answer), then folds the queued deltas every `kpis.scope_fold_interval` until stopped.

use crate::state::State;
use crate::store::scopes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

pub async fn run(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let members: Vec<(String, String)> = state
        .chain
        .properties
        .iter()
        .map(|p| (p.id.clone(), p.region.clone()))
        .collect();
    loop {
        let started = std::time::Instant::now();
        match scopes::sync(&state.pool, &members).await {
            Ok(rebuilt) => {
                if rebuilt {
                    tracing::info!(
                        properties = members.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "chain and region sums rebuilt from the rollups"
                    );
                }
                state.scopes_ready.store(true, Ordering::Release);
                break;
            }
            Err(e) => tracing::warn!(error = %e, "summing the chain and regions; retrying"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
    let every = state.kpis.scope_fold_interval.as_duration();
    loop {
        match scopes::fold(&state.pool).await {
            Ok(n) => metrics::counter!("metrics_scope_deltas_folded_total").increment(n),
            Err(e) => tracing::warn!(error = %e, "folding the chain and region sums"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
