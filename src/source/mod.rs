//! Sources of cluster objects. Each turns what it reads into [`crate::cluster::ClusterEvent`]s
//! carrying plain records, so the cluster state never knows where an object came from.

pub(crate) mod json;
pub(crate) mod kube;
pub mod manifests;
pub(crate) mod objects;
pub(crate) mod pod;
pub(crate) mod service_import;
pub(crate) mod stats;
pub(crate) mod yaml;
