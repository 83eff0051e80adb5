//! A Pod as DNS reads it. Only the fields DNS uses are built; serde skips the rest (container
//! specs, statuses, managed fields) without allocating them, which roughly halves the cost of
//! listing a large cluster. Both sources parse Pods into this type, and kube's watcher lists and
//! watches it like the full k8s-openapi `Pod`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DnsPod {
    #[serde(default, deserialize_with = "metadata")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<DnsPodSpec>,
    #[serde(default)]
    pub status: Option<DnsPodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DnsPodSpec {
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    pub containers: Option<Vec<DnsContainer>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DnsContainer {
    pub ports: Option<Vec<DnsContainerPort>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DnsContainerPort {
    pub name: Option<String>,
    pub container_port: i32,
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DnsPodStatus {
    pub phase: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<DnsPodIp>>,
    pub conditions: Option<Vec<DnsPodCondition>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DnsPodIp {
    pub ip: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DnsPodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

/// The metadata fields DNS and the watcher use; everything else is skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataFields {
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default, deserialize_with = "strict_labels")]
    labels: Option<BTreeMap<String, String>>,
    deletion_timestamp: Option<Time>,
    resource_version: Option<String>,
    owner_references: Option<Vec<OwnerFields>>,
}

/// What an `ownerReference` tells DNS: whether a StatefulSet controls the pod, and which.
#[derive(Deserialize)]
struct OwnerFields {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    controller: Option<bool>,
}

/// A mapping key given twice. kubectl refuses such a manifest; the YAML parser (and serde's maps)
/// would let the last one win.
pub(crate) struct DuplicateKey<'a>(pub &'a str);

impl std::fmt::Display for DuplicateKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "duplicate key {:?}", self.0)
    }
}

/// `metadata.labels`, refusing a key given twice.
fn strict_labels<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct LabelsVisitor;

    impl<'de> Visitor<'de> for LabelsVisitor {
        type Value = Option<BTreeMap<String, String>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of labels")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut labels = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, String>()? {
                if labels.contains_key(&key) {
                    return Err(de::Error::custom(DuplicateKey(&key)));
                }
                labels.insert(key, value);
            }
            Ok(Some(labels))
        }
    }

    deserializer.deserialize_option(LabelsVisitor)
}

pub(crate) fn metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    let fields = MetadataFields::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: fields.name,
        namespace: fields.namespace,
        labels: fields.labels,
        deletion_timestamp: fields.deletion_timestamp,
        resource_version: fields.resource_version,
        // Only the controlling StatefulSet is kept, without what identifies it in the API.
        owner_references: fields
            .owner_references
            .into_iter()
            .flatten()
            .find(|owner| owner.kind == "StatefulSet" && owner.controller == Some(true))
            .map(|owner| {
                vec![OwnerReference {
                    kind: owner.kind,
                    name: owner.name,
                    controller: Some(true),
                    ..OwnerReference::default()
                }]
            }),
        ..ObjectMeta::default()
    })
}

impl kube::Resource for DnsPod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
