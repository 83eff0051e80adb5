//! A ServiceImport (`multicluster.x-k8s.io`, the Multi-Cluster Services API: a CRD, so not in
//! k8s-openapi) as DNS reads it: only the fields its names use.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// The API group of the Multi-Cluster Services kinds.
pub(crate) const GROUP: &str = "multicluster.x-k8s.io";

/// The versions of ServiceImport read; their fields are the same (v1beta1 renamed none).
pub(crate) const VERSIONS: [&str; 2] = ["v1alpha1", "v1beta1"];

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ServiceImport {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<ServiceImportSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ServiceImportSpec {
    /// `ClusterSetIP` or `Headless`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub ips: Option<Vec<String>>,
    pub ports: Option<Vec<ImportPort>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ImportPort {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub port: i32,
}

impl kube::Resource for ServiceImport {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ServiceImport".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        VERSIONS[0].into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "serviceimports".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
