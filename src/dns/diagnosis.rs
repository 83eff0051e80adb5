//! What the view keeps to say why a name is missing: for a Service that lists endpoints, the
//! selected pods it holds back and the ones it names by address though they asked for a
//! hostname ([`ServiceDiagnosis`], only when there are any); per namespace, the pods whose
//! `spec.subdomain` no Service answers for ([`Stray`]). Facts, written by the writer
//! ([`crate::dns::backing`]) and read by the reasons ([`crate::dns::explain`]).

use std::sync::Arc;

use crate::records::{Addresses, CompactName};

/// Why a pod a Service selects is not one of its endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldBack {
    NotReady,
    Terminating,
    NoAddress,
    /// Phase Succeeded or Failed.
    Finished,
}

impl HeldBack {
    pub fn says(self) -> &'static str {
        match self {
            HeldBack::NotReady => "is not Ready",
            HeldBack::Terminating => "is terminating",
            HeldBack::NoAddress => "has no IP address yet",
            HeldBack::Finished => "has finished (Succeeded or Failed)",
        }
    }

    pub fn adjective(self) -> &'static str {
        match self {
            HeldBack::NotReady => "not Ready",
            HeldBack::Terminating => "terminating",
            HeldBack::NoAddress => "without an IP",
            HeldBack::Finished => "finished",
        }
    }
}

/// A pod the Service selects but does not list, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBackPod {
    pub pod: CompactName,
    pub hostname: Option<CompactName>,
    pub ips: Addresses,
    pub why: HeldBack,
}

/// A backing pod with a hostname or a subdomain naming the Service, which is named by address
/// all the same (it lacks the other half, or its subdomain names another Service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MisnamedPod {
    pub pod: CompactName,
    pub hostname: Option<CompactName>,
    pub subdomain: Option<Arc<str>>,
    /// The StatefulSet whose `spec.serviceName` set the subdomain.
    pub statefulset: Option<Arc<str>>,
}

/// Why a Service that lists endpoints has fewer than it might: present only when it has none,
/// holds some selected pods back, or names some by address that asked for a hostname.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDiagnosis {
    /// `key=value,...`; empty for a Service without a selector.
    pub selector: Box<str>,
    pub held_back: Box<[HeldBackPod]>,
    pub misnamed: Box<[MisnamedPod]>,
    /// Endpoints of its EndpointSlices that are not ready (a Service without a selector).
    pub slice_endpoints_not_ready: u32,
}

/// Why no Service answers for a pod's `spec.subdomain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrayWhy {
    NoService,
    /// The Service's selector (given) does not match the pod.
    NotSelected(Box<str>),
    NoSelector,
    ExternalName,
}

/// A pod whose `spec.subdomain` no Service of that name answers for by selecting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stray {
    pub hostname: Option<CompactName>,
    pub subdomain: Arc<str>,
    /// The StatefulSet whose `spec.serviceName` set the subdomain.
    pub statefulset: Option<Arc<str>>,
    pub why: StrayWhy,
}

/// A Service's diagnosis from what the cluster knows; `None` when there is nothing to say
/// (then its selector is not even written out).
pub(crate) fn diagnose(
    selector: impl FnOnce() -> Option<String>,
    endpoints_empty: bool,
    held_back: Vec<HeldBackPod>,
    misnamed: Vec<MisnamedPod>,
    slice_endpoints_not_ready: u32,
) -> Option<Box<ServiceDiagnosis>> {
    if !endpoints_empty && held_back.is_empty() && misnamed.is_empty() {
        return None;
    }
    Some(Box::new(ServiceDiagnosis {
        selector: selector().unwrap_or_default().into(),
        held_back: held_back.into(),
        misnamed: misnamed.into(),
        slice_endpoints_not_ready,
    }))
}
