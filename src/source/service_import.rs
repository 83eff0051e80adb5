//! A ServiceImport and a ServiceExport (`multicluster.x-k8s.io`, the Multi-Cluster Services API:
//! CRDs, so not in k8s-openapi) as DNS reads them: only the fields its names use.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// The API group of the Multi-Cluster Services kinds.
pub(crate) const GROUP: &str = "multicluster.x-k8s.io";

/// The versions of ServiceImport read; their fields are the same (v1beta1 renamed none).
pub(crate) const VERSIONS: [&str; 2] = ["v1alpha1", "v1beta1"];

/// Whether `api_version` is one of [`VERSIONS`] of [`GROUP`].
pub(crate) fn read_version(api_version: &str) -> bool {
    api_version
        .strip_prefix(GROUP)
        .and_then(|v| v.strip_prefix('/'))
        .is_some_and(|v| VERSIONS.contains(&v))
}

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

/// `kube::Resource` for a Multi-Cluster Services kind of ours: its kind and plural, in
/// [`GROUP`] at the first of [`VERSIONS`].
macro_rules! mcs_resource {
    ($type:ty, $kind:literal, $plural:literal) => {
        impl kube::Resource for $type {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }

            fn group(_: &()) -> Cow<'_, str> {
                GROUP.into()
            }

            fn version(_: &()) -> Cow<'_, str> {
                VERSIONS[0].into()
            }

            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

mcs_resource!(ServiceImport, "ServiceImport", "serviceimports");

/// A ServiceExport: the Service of the same name and namespace is exported to the clusterset.
/// Its name is all DNS reads (with several clusters and no MCS controller, the clusterset zone
/// is made from them).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ServiceExport {
    #[serde(default)]
    pub metadata: ObjectMeta,
}

mcs_resource!(ServiceExport, "ServiceExport", "serviceexports");
