//! Deployment targets: where a subject's processes run, and the means to disturb them.

pub mod docker;
pub mod listener;
pub mod local;
pub mod watch_only;

use operator_protocol::{ChaosSpec, DeploymentTarget};

/// The faults of a subject's catalog this target can inject (a partition needs a target that
/// can isolate a node): what the chaos menu offers.
pub fn injectable(chaos: Vec<ChaosSpec>, target: &dyn DeploymentTarget) -> Vec<ChaosSpec> {
    chaos
        .into_iter()
        .filter(|c| c.needs.iter().all(|d| target.can(*d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use operator_protocol::NodeId;

    use super::*;
    use crate::deploy::{SubjectName, chaos_catalog};

    fn names(chaos: Vec<ChaosSpec>) -> Vec<String> {
        chaos.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn only_what_the_target_can_do_is_offered() {
        let catalog = chaos_catalog(SubjectName::Ratelimiter).unwrap();
        assert!(names(catalog.clone()).contains(&"partition_node".to_string()));
        let watching = watch_only::WatchOnly::new(vec![NodeId::from("node-1")]);
        // Watching only: the faults the service's own admin API injects, none of the target's.
        assert_eq!(
            names(injectable(catalog.clone(), &watching)),
            ["node_latency", "counter_drift", "ghost_allow"]
        );
        let docker_like = crate::testing::FakeTarget(vec![]);
        assert_eq!(
            injectable(catalog.clone(), &docker_like).len(),
            catalog.len()
        );
    }
}
