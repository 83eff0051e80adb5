//! Sources of cluster objects. Each turns what it reads into [`crate::cluster::ClusterEvent`]s
//! carrying plain records, so the cluster state never knows where an object came from.

pub mod kube;
pub mod manifests;
pub mod objects;
pub mod pod;
pub mod stats;
pub mod yaml;
