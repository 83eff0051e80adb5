//! Several clusters served by one process (`--cluster`): each under a zone of its own,
//! `<name>.<zone>`, with its own view; which cluster a question goes to, read from the
//! question's bytes without parsing the message.
//!
//! Every cluster answers the reverse zones for its own addresses; clusters made by the same
//! tool often share address ranges (kind gives every cluster 10.244.0.0/16), so a reverse
//! question is asked of each in turn ([`Route::Reverse`]) and the first that knows the address
//! answers.

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::dns::explain::{self, Report};
use crate::dns::view::SharedView;
use crate::dns::zone::{Apex, Zone};
use crate::message::rcode_name;

/// One cluster served: its name (`None` for the one source of a single-cluster server), its
/// zone and answer settings, and the view its writer publishes. With several clusters the
/// clusterset zone is served too, from its own view ([`Served::clusterset`]).
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub name: Option<Arc<str>>,
    pub zone: Arc<Zone>,
    pub view: SharedView,
    /// The zone it answers: a cluster's, or the clusterset zone.
    pub answers: Apex,
}

impl Served {
    pub(crate) fn cluster(name: Option<Arc<str>>, zone: Arc<Zone>, view: SharedView) -> Self {
        Self {
            name,
            zone,
            view,
            answers: Apex::Zone,
        }
    }

    /// The clusterset zone of several clusters, `zone`'s clusterset apex, answered from `view`.
    pub(crate) fn clusterset(zone: Arc<Zone>, view: SharedView) -> Self {
        Self {
            name: None,
            zone,
            view,
            answers: Apex::Clusterset,
        }
    }

    /// The apex of the zone it answers.
    pub(crate) fn apex(&self) -> &Name {
        self.zone.apex(self.answers)
    }
}

/// Where a question goes among the clusters served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Into this cluster's zone.
    Cluster(usize),
    /// Into a reverse zone: every cluster may hold the address.
    Reverse,
    /// Outside every zone (or no question to read): any cluster refuses it alike.
    Elsewhere,
}

/// The zones of the clusters served, as their names are spelled on the wire (lower case), to
/// route questions by.
#[derive(Clone, Debug)]
pub(crate) struct Routes {
    origins: Box<[Box<[u8]>]>,
    reverse: [Box<[u8]>; 2],
    /// The clusters a reverse question is put to: those answering a cluster's zone, in order
    /// (the clusterset zone holds no address).
    holders: Box<[usize]>,
}

impl Routes {
    pub(crate) fn new(clusters: &[Served]) -> Self {
        let wire = |name: &Name| -> Box<[u8]> {
            let mut bytes = Vec::with_capacity(64);
            for label in name.iter() {
                // Labels of a name hickory holds are at most 63 bytes.
                bytes.push(u8::try_from(label.len()).unwrap_or(63));
                bytes.extend(label.iter().map(u8::to_ascii_lowercase));
            }
            bytes.push(0);
            bytes.into_boxed_slice()
        };
        let zone = clusters.first().map(|c| c.zone.clone());
        let reverse = |apex| {
            zone.as_ref()
                .map_or_else(Box::default, |z| wire(z.apex(apex)))
        };
        Self {
            origins: clusters.iter().map(|c| wire(c.apex())).collect(),
            reverse: [reverse(Apex::InAddrArpa), reverse(Apex::Ip6Arpa)],
            holders: address_holders(clusters).collect(),
        }
    }

    /// The clusters a reverse question is put to, in order.
    pub(crate) fn address_holders(&self) -> &[usize] {
        &self.holders
    }

    /// Where the first question of `message` goes.
    pub(crate) fn route(&self, message: &[u8]) -> Route {
        if message.len() < 12 || u16::from_be_bytes([message[4], message[5]]) == 0 {
            return Route::Elsewhere;
        }
        let mut at = 12;
        // At each label boundary, is the rest of the name a zone's?
        loop {
            let Some(rest) = name_at(message, at) else {
                return Route::Elsewhere;
            };
            if let Some(index) = self.origins.iter().position(|o| same_name(o, rest)) {
                return Route::Cluster(index);
            }
            if self.reverse.iter().any(|r| same_name(r, rest)) {
                return Route::Reverse;
            }
            match rest.first() {
                Some(&length) if length != 0 => at += 1 + usize::from(length),
                _ => return Route::Elsewhere,
            }
        }
    }
}

/// The uncompressed name starting at `at` in `message`, through its root label; `None` when it
/// is cut short or compressed (no question of ours is).
fn name_at(message: &[u8], start: usize) -> Option<&[u8]> {
    let mut at = start;
    loop {
        let length = *message.get(at)?;
        match length {
            0 => return message.get(start..=at),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Whether two wire names are the same name: `zone` lower case, `asked` in any case.
fn same_name(zone: &[u8], asked: &[u8]) -> bool {
    zone.len() == asked.len() && zone.eq_ignore_ascii_case(asked)
}

/// The cluster whose zone holds `name`; `None` for a reverse name or one outside every zone.
pub(crate) fn cluster_of<'c>(clusters: &'c [Served], name: &Name) -> Option<&'c Served> {
    let name = name.to_lowercase();
    clusters.iter().find(|c| c.apex().zone_of(&name))
}

/// How much a cluster's answer to a reverse question says, least first: of the clusters' answers
/// the one that says most is given (the first cluster's among equals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Outcome {
    /// NXDOMAIN, or anything else that says nothing of the address.
    Missing,
    /// SERVFAIL: the cluster is not complete yet, and may hold the address.
    Unknown,
    /// NOERROR without records: the name exists there.
    Exists,
    Answered,
}

impl Outcome {
    pub(crate) fn of(rcode: ResponseCode, answers: usize) -> Self {
        match rcode {
            ResponseCode::NoError if answers > 0 => Self::Answered,
            ResponseCode::NoError => Self::Exists,
            ResponseCode::ServFail => Self::Unknown,
            _ => Self::Missing,
        }
    }
}

/// The indices of `clusters` that may hold an address: those answering a cluster's zone.
fn address_holders(clusters: &[Served]) -> impl Iterator<Item = usize> + '_ {
    (0..clusters.len()).filter(|&index| clusters[index].answers == Apex::Zone)
}

/// What `name` gets and why, for a question asked outside DNS (`/explain`, `headless-dns
/// explain`): from the cluster whose zone holds it; a reverse name from the cluster whose
/// answer says most, as DNS answers it; any other from the first cluster, which refuses it.
pub(crate) fn report(clusters: &[Served], name: &Name, qtype: RecordType) -> Option<Report> {
    let ask = |cluster: &Served| explain::report(&cluster.view.load(), &cluster.zone, name, qtype);
    if let Some(cluster) = cluster_of(clusters, name) {
        return Some(ask(cluster));
    }
    let first = clusters.first()?;
    let reverse = [Apex::InAddrArpa, Apex::Ip6Arpa]
        .iter()
        .any(|&apex| first.zone.apex(apex).zone_of(&name.to_lowercase()));
    if !reverse {
        return Some(ask(first));
    }
    let mut best: Option<(Outcome, Report)> = None;
    for cluster in address_holders(clusters).map(|index| &clusters[index]) {
        let report = ask(cluster);
        let rcode = [ResponseCode::NoError, ResponseCode::ServFail]
            .into_iter()
            .find(|rcode| report.rcode == rcode_name(u16::from(*rcode)))
            .unwrap_or(ResponseCode::NXDomain);
        let outcome = Outcome::of(rcode, report.answers.len());
        if best.as_ref().is_none_or(|(b, _)| outcome > *b) {
            best = Some((outcome, report));
        }
    }
    best.map(|(_, report)| report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::view::View;
    use crate::dns::zone::PodRecords;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::RecordType;

    fn served(origin: &str) -> Served {
        Served::cluster(
            None,
            Arc::new(Zone::new(origin, 5, PodRecords::Verified, None).unwrap()),
            SharedView::new(View::new(1)),
        )
    }

    fn question(name: &str) -> Vec<u8> {
        let mut message = Message::new(1, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        message.to_vec().unwrap()
    }

    #[test]
    fn questions_go_to_the_cluster_whose_zone_holds_them() {
        let clusters = [served("east.cluster.local."), served("west.cluster.local.")];
        let routes = Routes::new(&clusters);
        for (name, route) in [
            (
                "web-0.nginx.default.svc.east.cluster.local.",
                Route::Cluster(0),
            ),
            ("NGINX.Default.SVC.West.Cluster.Local.", Route::Cluster(1)),
            ("east.cluster.local.", Route::Cluster(0)),
            ("west.cluster.local.", Route::Cluster(1)),
            ("5.1.244.10.in-addr.arpa.", Route::Reverse),
            ("IN-ADDR.ARPA.", Route::Reverse),
            (
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
                Route::Reverse,
            ),
            // The suffix the clusters' zones share is none of them.
            ("nginx.default.svc.cluster.local.", Route::Elsewhere),
            ("cluster.local.", Route::Elsewhere),
            ("xeast.cluster.local.", Route::Elsewhere),
            ("example.com.", Route::Elsewhere),
            (".", Route::Elsewhere),
        ] {
            assert_eq!(routes.route(&question(name)), route, "{name}");
        }
        // Cut short, no question, compressed: nothing to route by.
        let whole = question("nginx.default.svc.east.cluster.local.");
        assert_eq!(routes.route(&whole[..20]), Route::Elsewhere);
        let mut none = whole.clone();
        none[5] = 0;
        assert_eq!(routes.route(&none), Route::Elsewhere);
        let mut pointer = whole[..12].to_vec();
        pointer.extend([0xc0, 0x0c, 0, 1, 0, 1]);
        assert_eq!(routes.route(&pointer), Route::Elsewhere);

        let name = |n: &str| Name::from_ascii(n).unwrap();
        let of = |n: &str| cluster_of(&clusters, &name(n)).map(|c| c.zone.origin.to_string());
        assert_eq!(
            of("a.b.svc.West.cluster.local."),
            Some("west.cluster.local.".into())
        );
        assert_eq!(of("a.b.svc.cluster.local."), None);
    }
}
