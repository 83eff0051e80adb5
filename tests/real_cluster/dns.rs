//! Asking the DNS servers under test, and reducing each reply to what two servers must agree on:
//! the rcode, AA, the answer section as a set (TTLs aside, and SOA serials, which each server
//! keeps its own way), and whether the authority section carries an SOA.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::DnsHandle;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{DnsRequestOptions, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What a reply says, for comparing two servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: BTreeSet<String>,
    pub soa: bool,
    pub truncated: bool,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.rcode,
            if self.authoritative { " aa" } else { "" },
            if self.soa { " +SOA" } else { "" }
        )?;
        for answer in &self.answers {
            write!(f, " [{answer}]")?;
        }
        Ok(())
    }
}

pub fn reduce(message: &Message) -> Reply {
    let answers = message
        .answers
        .iter()
        .map(|r| {
            let data = match &r.data {
                RData::SOA(soa) => format!(
                    "{} {} (serial) {} {} {} {}",
                    soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
                ),
                other => other.to_string(),
            };
            format!("{} {} {}", r.name.to_lowercase(), r.record_type(), data)
        })
        .collect();
    Reply {
        rcode: message.metadata.response_code,
        authoritative: message.metadata.authoritative,
        answers,
        soa: message
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA),
        truncated: message.metadata.truncation,
    }
}

/// Whether two SRV replies differ only where `unweighted` looks past (their records'
/// weights): the same rcode, AA and SOA, the same records as `unweighted` gives them.
pub fn weights_alone_differ(
    qtype: RecordType,
    ours: &Reply,
    theirs: &Reply,
    unweighted: fn(&Reply) -> BTreeSet<String>,
) -> bool {
    qtype == RecordType::SRV
        && (ours.rcode, ours.authoritative, ours.soa)
            == (theirs.rcode, theirs.authoritative, theirs.soa)
        && unweighted(ours) == unweighted(theirs)
}

/// A reply's answers with each SRV record's weight set aside.
pub fn unweighted(reply: &Reply) -> BTreeSet<String> {
    reply
        .answers
        .iter()
        .map(|a| {
            let mut words: Vec<&str> = a.split(' ').collect();
            if words.get(1) == Some(&"SRV") && words.len() > 3 {
                words[3] = "(weight)";
            }
            words.join(" ")
        })
        .collect()
}

/// The text of the Extended DNS Error (RFC 8914) in `message`, if it has one.
pub fn ede_text(message: &Message) -> Option<String> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    match message.edns.as_ref()?.options().get(EdnsCode::from(15))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => {
            Some(String::from_utf8_lossy(&data[2..]).into_owned())
        }
        _ => None,
    }
}

/// A client of one server over one transport.
pub struct Asker {
    client: Client<TokioRuntimeProvider>,
}

impl Asker {
    pub async fn new(server: SocketAddr, transport: Transport) -> Result<Self, String> {
        let client = match transport {
            Transport::Udp => {
                let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default())
                    .with_timeout(Some(Duration::from_secs(3)))
                    .build();
                let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
                tokio::spawn(background);
                client
            }
            Transport::Tcp => {
                let (connect, handle) = TcpClientStream::new(
                    server,
                    None,
                    Some(Duration::from_secs(3)),
                    TokioRuntimeProvider::new(),
                );
                let stream = connect.await.map_err(|e| format!("TCP to {server}: {e}"))?;
                let (client, background) = Client::<TokioRuntimeProvider>::new(stream, handle);
                tokio::spawn(background);
                client
            }
        };
        Ok(Self { client })
    }

    pub async fn ask(&self, name: &str, qtype: RecordType) -> Result<Message, String> {
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_payload_len = 1232;
        let name = Name::from_ascii(name).map_err(|e| e.to_string())?;
        let query = Query::query(name, qtype);
        match self.client.lookup(query.clone(), options).next().await {
            Some(Ok(response)) => Ok(response.into_message()),
            Some(Err(e)) => Err(format!("{query}: {e}")),
            None => Err(format!("{query}: no response")),
        }
    }

    pub async fn reply(&self, name: &str, qtype: RecordType) -> Result<Reply, String> {
        Ok(reduce(&self.ask(name, qtype).await?))
    }

    /// The A and AAAA addresses `name` answers with (empty for NXDOMAIN or NODATA).
    pub async fn addresses(&self, name: &str) -> Result<BTreeSet<String>, String> {
        let mut addresses = BTreeSet::new();
        for qtype in [RecordType::A, RecordType::AAAA] {
            for record in self.ask(name, qtype).await?.answers {
                match record.data {
                    RData::A(a) => addresses.insert(a.0.to_string()),
                    RData::AAAA(aaaa) => addresses.insert(aaaa.0.to_string()),
                    _ => false,
                };
            }
        }
        Ok(addresses)
    }
}
