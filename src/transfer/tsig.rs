//! TSIG (RFC 8945) with the one key of `--tsig-key`: checking signed requests, signing what
//! answers them (one response, or each message of a zone transfer) and the NOTIFYs we send.
//!
//! The MACs, the TSIG record's layout and the parsing of a signed request are hickory-proto's
//! (its `dnssec-ring` feature); what is ours is when to sign, what a bad signature gets
//! (§5.2: BADKEY and BADSIG unsigned, BADTIME signed) and the chaining of a transfer's messages
//! (§5.3.1: the first covers the request's MAC and all TSIG variables, each later one the
//! previous MAC, the message and the timers only).

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hickory_proto::op::{Message, MessageType, Metadata, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record, TSigVerifier, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// How far, in seconds, a signature's time may be from ours (RFC 8945 §10 recommends 300).
pub(crate) const FUDGE: u16 = 300;

/// The algorithms a key may use (those hickory-proto computes), with their MACs' length.
const ALGORITHMS: [(&str, TsigAlgorithm, usize); 3] = [
    ("hmac-sha256", TsigAlgorithm::HmacSha256, 32),
    ("hmac-sha384", TsigAlgorithm::HmacSha384, 48),
    ("hmac-sha512", TsigAlgorithm::HmacSha512, 64),
];

/// A shared secret and its name, as `--tsig-key NAME:ALGORITHM:BASE64` gives it.
#[derive(Clone)]
pub struct TsigKey {
    signer: TSigner,
}

impl fmt::Debug for TsigKey {
    // Never the secret: configurations are logged and printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TsigKey({} {})", self.name(), self.signer.algorithm())
    }
}

impl FromStr for TsigKey {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        const FORM: &str = "NAME:ALGORITHM:BASE64, e.g. transfer-key:hmac-sha256:<secret>";
        let mut fields = value.splitn(3, ':');
        let (Some(name), Some(algorithm), Some(secret)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("a TSIG key is {FORM}"));
        };
        let name = Name::from_ascii(name)
            .ok()
            .filter(|name| !name.is_root() && !name.to_string().is_empty())
            .ok_or_else(|| format!("{name:?} is not a key name: a key is {FORM}"))?;
        let known: Vec<&str> = ALGORITHMS.iter().map(|(text, ..)| *text).collect();
        let algorithm = ALGORITHMS
            .iter()
            .find(|(text, ..)| text.eq_ignore_ascii_case(algorithm))
            .map(|(_, algorithm, _)| algorithm.clone())
            .ok_or_else(|| {
                format!(
                    "{algorithm:?} is not a TSIG algorithm we sign with: {}",
                    known.join(", ")
                )
            })?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|e| format!("the key's secret is not base64 ({e}): a key is {FORM}"))?;
        if secret.is_empty() {
            return Err("the key's secret is empty".into());
        }
        let signer = TSigner::new(secret, algorithm, name, FUDGE).map_err(|e| e.to_string())?;
        Ok(Self { signer })
    }
}

/// What a request's signature says about it.
pub enum Signature {
    /// No TSIG record.
    Unsigned,
    /// Signed with our key, within the time allowed: the response is signed with this.
    Valid(ResponseSigner),
    /// Not acceptable: the response is NOTAUTH, its TSIG record from this (with the TSIG error).
    Rejected(ResponseSigner),
}

impl TsigKey {
    pub fn name(&self) -> &Name {
        self.signer.signer_name()
    }

    /// What the TSIG record of `message` (its `signature`, as parsed) says, at `now` (seconds
    /// since the epoch). Without a key every signature is rejected as BADKEY (§5.2.1).
    pub fn check(
        key: Option<&Self>,
        message: &[u8],
        signature: Option<&Record<TSIG>>,
        now: u64,
    ) -> Signature {
        let Some(record) = signature else {
            return Signature::Unsigned;
        };
        let tsig = &record.data;
        let rejected = |signer: Option<TSigner>, error| ResponseSigner {
            signer,
            key_name: record.name.clone(),
            algorithm: tsig.algorithm.clone(),
            previous_mac: tsig.mac.clone(),
            original_id: tsig.oid,
            time: None,
            error: Some(error),
            other: Vec::new(),
            first: true,
        };
        let Some(key) = key
            .filter(|key| *key.name() == record.name && *key.signer.algorithm() == tsig.algorithm)
        else {
            return Signature::Rejected(rejected(None, TsigError::BadKey));
        };
        let Ok((mac, time, window)) = key.signer.verify_message_byte(message, None, true) else {
            return Signature::Rejected(rejected(None, TsigError::BadSig));
        };
        let mut signer = ResponseSigner {
            signer: Some(key.signer.clone()),
            key_name: key.name().clone(),
            algorithm: tsig.algorithm.clone(),
            previous_mac: mac,
            original_id: tsig.oid,
            time: None,
            error: None,
            other: Vec::new(),
            first: true,
        };
        if !(window.start..=window.end).contains(&now) {
            // §5.2.3: signed, with the request's time, and ours in Other Data for the client
            // to see the skew.
            signer.time = Some(time);
            signer.error = Some(TsigError::BadTime);
            signer.other = now.to_be_bytes()[2..].to_vec();
            return Signature::Rejected(signer);
        }
        Signature::Valid(signer)
    }

    /// Signs `message` (a request: our NOTIFY) at `now`; the verifier checks its response.
    pub fn sign_request(&self, message: &mut Message, now: u64) -> Option<TSigVerifier> {
        let (record, verifier) = self.signer.sign_message(message, now).ok()?;
        message.set_signature(record);
        verifier
    }
}

/// Signs the responses to one signed request: a single message, or each message of a
/// transfer in turn.
#[derive(Clone)]
pub struct ResponseSigner {
    /// `None`: the TSIG record goes without a MAC (BADKEY, BADSIG).
    signer: Option<TSigner>,
    key_name: Name,
    algorithm: TsigAlgorithm,
    /// The request's MAC, then each message's.
    previous_mac: Vec<u8>,
    original_id: u16,
    /// The Time Signed to use instead of now (BADTIME).
    time: Option<u64>,
    error: Option<TsigError>,
    other: Vec<u8>,
    first: bool,
}

impl ResponseSigner {
    /// The bytes the TSIG record adds to a message, to keep a UDP answer within the client's
    /// limit.
    pub fn record_len(&self) -> usize {
        // A rejected request's algorithm may be one we do not know: no MAC is sent then.
        let mac_len = ALGORITHMS
            .iter()
            .find(|(_, algorithm, _)| *algorithm == self.algorithm)
            .map_or(0, |(.., len)| *len);
        let name_len = |name: &Name| name.iter().map(|label| label.len() + 1).sum::<usize>() + 1;
        // Owner; type, class, TTL, RDLENGTH; algorithm; time, fudge, MAC size, MAC, original
        // ID, error, other length, other data.
        name_len(&self.key_name)
            + 10
            + name_len(&self.algorithm.to_name())
            + 10
            + mac_len
            + 6
            + self.other.len()
    }

    /// The TSIG error this response carries, if any.
    pub fn error(&self) -> Option<TsigError> {
        self.error
    }

    /// Appends the TSIG record to the message in `out` (complete, without it) at `now`,
    /// counting it in the header.
    pub fn sign(&mut self, out: &mut Vec<u8>, now: u64) {
        if out.len() < 12 {
            return;
        }
        let mut tsig = TSIG::new(
            self.algorithm.clone(),
            self.time.unwrap_or(now),
            FUDGE,
            Vec::new(),
            self.original_id,
            self.error,
            self.other.clone(),
        );
        if let Some(signer) = &self.signer {
            let mut covered = Vec::with_capacity(out.len() + self.previous_mac.len() + 128);
            let mut encoder = BinEncoder::new(&mut covered);
            let emitted = encoder
                .emit_u16(self.previous_mac.len() as u16)
                .and_then(|()| encoder.emit_vec(&self.previous_mac))
                .and_then(|()| encoder.emit_vec(out))
                .and_then(|()| {
                    if self.first {
                        tsig.emit_tsig_for_mac(&mut encoder, &self.key_name)
                    } else {
                        encoder.emit_u16((tsig.time >> 32) as u16)?;
                        encoder.emit_u32(tsig.time as u32)?;
                        encoder.emit_u16(tsig.fudge)
                    }
                });
            let Ok(mac) = emitted
                .map_err(|_| ())
                .and_then(|()| signer.sign(&covered).map_err(|_| ()))
            else {
                return;
            };
            self.previous_mac.clone_from(&mac);
            tsig = tsig.set_mac(mac);
        }
        self.first = false;
        let record = make_tsig_record(self.key_name.clone(), tsig);
        let mut bytes = Vec::with_capacity(self.record_len());
        if record.emit(&mut BinEncoder::new(&mut bytes)).is_err() {
            return;
        }
        out.extend_from_slice(&bytes);
        let additionals = u16::from_be_bytes([out[10], out[11]]).wrapping_add(1);
        out[10..12].copy_from_slice(&additionals.to_be_bytes());
    }

    /// Writes the error response to a rejected request (its header's `metadata`, its
    /// question) into `out`, within `limit` bytes: NOTAUTH, with the TSIG record saying why.
    /// The key and algorithm names of a BADKEY come from the request and may be long: what
    /// does not fit goes, the question first, then the TSIG record.
    pub fn reject(
        &mut self,
        metadata: &Metadata,
        query: Option<&Query>,
        limit: u16,
        out: &mut Vec<u8>,
        now: u64,
    ) -> bool {
        let limit = usize::from(limit);
        let mut response = Message::new(metadata.id, MessageType::Response, metadata.op_code);
        response.metadata.response_code = ResponseCode::NotAuth;
        response.metadata.recursion_desired = metadata.recursion_desired;
        let without_question = response.clone();
        if let Some(query) = query {
            response.add_query(query.clone());
        }
        for (message, signed) in [
            (&response, true),
            (&without_question, true),
            (&without_question, false),
        ] {
            let Ok(bytes) = message.to_vec() else {
                return false;
            };
            out.clear();
            out.extend_from_slice(&bytes);
            // Signing moves the chain on: only the attempt that is sent may.
            let mut signer = self.clone();
            if signed {
                signer.sign(out, now);
            }
            if out.len() <= limit {
                *self = signer;
                return true;
            }
        }
        false
    }
}

/// Seconds since the epoch, the clock TSIG times are on.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;

    const KEY: &str = "transfer-key:hmac-sha256:3Ghb0oP7sA8yNq2xv1Kj5mWcT9uRzE4dLfYiX6nHgQs=";

    fn key() -> TsigKey {
        KEY.parse().unwrap()
    }

    /// A transfer request signed with `key` at `time`, and the verifier of its responses.
    fn signed_request(key: &TsigKey, time: u64) -> (Vec<u8>, Message, TSigVerifier) {
        let mut request = Message::new(4321, MessageType::Query, OpCode::Query);
        request.add_query(Query::query(
            Name::from_ascii("cluster.local.").unwrap(),
            RecordType::AXFR,
        ));
        let verifier = key.sign_request(&mut request, time).unwrap();
        let bytes = request.to_vec().unwrap();
        let parsed = Message::from_vec(&bytes).unwrap();
        (bytes, parsed, verifier)
    }

    fn response(records: u8) -> Vec<u8> {
        let mut message = Message::new(4321, MessageType::Response, OpCode::Query);
        for i in 0..records {
            let name = Name::from_ascii(format!("pod-{i}.cluster.local.")).unwrap();
            message.add_answer(Record::from_rdata(name, 5, RData::A(A::new(10, 0, 0, i))));
        }
        message.to_vec().unwrap()
    }

    #[test]
    fn keys_parse_or_say_why_not() {
        let parsed = key();
        assert_eq!(parsed.name().to_string(), "transfer-key.");
        assert_eq!(
            format!("{parsed:?}"),
            "TsigKey(transfer-key. hmac-sha256)",
            "never the secret"
        );
        assert!("k:HMAC-SHA512:c2VjcmV0".parse::<TsigKey>().is_ok());
        for (bad, why) in [
            ("k:hmac-md5:c2VjcmV0", "not a TSIG algorithm"),
            ("k:hmac-sha256:???", "not base64"),
            ("k:hmac-sha256:", "empty"),
            ("k:hmac-sha256", "NAME:ALGORITHM:BASE64"),
            (":hmac-sha256:c2VjcmV0", "not a key name"),
        ] {
            let error = bad.parse::<TsigKey>().unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    /// A transfer's messages signed in a chain verify, one by one, with hickory's client-side
    /// verifier (the first over the request's MAC and all variables, the rest over the MAC
    /// before them and the timers); a message out of order does not.
    #[test]
    fn a_signed_request_gets_a_chain_of_signed_messages() {
        let key = key();
        let now = now();
        let (bytes, request, mut verifier) = signed_request(&key, now);
        let Signature::Valid(mut signer) =
            TsigKey::check(Some(&key), &bytes, request.signature.as_deref(), now)
        else {
            panic!("the request verifies");
        };
        let mut messages = Vec::new();
        for records in [3, 40, 1] {
            let mut message = response(records);
            let unsigned = message.len();
            signer.sign(&mut message, now);
            assert_eq!(message.len() - unsigned, signer.record_len());
            messages.push(message);
        }
        for message in &messages {
            let verified = verifier.verify(message).unwrap();
            assert_eq!(verified.metadata.id, 4321);
        }
        // Out of order: the second message first.
        let (_, _, mut verifier) = signed_request(&key, now);
        assert!(verifier.verify(&messages[1]).is_err());
        // For another request (signed a second earlier, so with another MAC).
        let (_, _, mut verifier) = signed_request(&key, now - 1);
        assert!(verifier.verify(&messages[0]).is_err());
    }

    #[test]
    fn bad_signatures_are_rejected_with_their_tsig_error() {
        let key = key();
        let now = now();
        let check = |bytes: &[u8], key: Option<&TsigKey>, at: u64| {
            let message = Message::from_vec(bytes).unwrap();
            match TsigKey::check(key, bytes, message.signature.as_deref(), at) {
                Signature::Unsigned => "unsigned".to_owned(),
                Signature::Valid(_) => "valid".to_owned(),
                Signature::Rejected(signer) => format!("{:?}", signer.error().unwrap()),
            }
        };
        let (bytes, _, _) = signed_request(&key, now);
        assert_eq!(check(&bytes, Some(&key), now), "valid");
        assert_eq!(check(&bytes, None, now), "BadKey");
        let other: TsigKey = "other-key:hmac-sha256:c2VjcmV0".parse().unwrap();
        assert_eq!(check(&bytes, Some(&other), now), "BadKey");
        let same_name: TsigKey = "transfer-key:hmac-sha256:c2VjcmV0".parse().unwrap();
        assert_eq!(check(&bytes, Some(&same_name), now), "BadSig");
        let same_name_sha512: TsigKey = "transfer-key:hmac-sha512:c2VjcmV0".parse().unwrap();
        assert_eq!(check(&bytes, Some(&same_name_sha512), now), "BadKey");
        assert_eq!(check(&bytes, Some(&key), now + 301), "BadTime");
        assert_eq!(check(&bytes, Some(&key), now - 301), "BadTime");
        assert_eq!(check(&bytes, Some(&key), now + 300), "valid");
        // A letter changed in the question: "cluster" becomes "bluster".
        let mut tampered = bytes.clone();
        tampered[13] ^= 0x01;
        assert_eq!(check(&tampered, Some(&key), now), "BadSig");
        assert_eq!(check(&response(1), Some(&key), now), "unsigned");
    }

    /// BADKEY and BADSIG are answered with a TSIG record without a MAC; BADTIME with one the
    /// client can verify, its own time signed and ours in Other Data.
    #[test]
    fn rejections_are_notauth_with_the_error() {
        let key = key();
        let now = now();
        let (bytes, request, mut verifier) = signed_request(&key, now - 1000);
        let Signature::Rejected(mut signer) =
            TsigKey::check(Some(&key), &bytes, request.signature.as_deref(), now)
        else {
            panic!("too old");
        };
        let mut out = Vec::new();
        let question = request.queries.first();
        assert!(signer.reject(&request.metadata, question, 512, &mut out, now));
        let response = Message::from_vec(&out).unwrap();
        assert_eq!(response.metadata.response_code, ResponseCode::NotAuth);
        assert_eq!(response.queries, request.queries);
        let tsig = &response.signature.as_ref().unwrap().data;
        assert_eq!(tsig.error, Some(TsigError::BadTime));
        assert_eq!(tsig.time, now - 1000);
        assert_eq!(tsig.other, now.to_be_bytes()[2..]);
        verifier.verify(&out).expect("a BADTIME response is signed");

        let (bytes, request, _) = signed_request(&key, now);
        let other: TsigKey = "other-key:hmac-sha256:c2VjcmV0".parse().unwrap();
        let Signature::Rejected(mut signer) =
            TsigKey::check(Some(&other), &bytes, request.signature.as_deref(), now)
        else {
            panic!("unknown key");
        };
        let question = request.queries.first();
        assert!(signer.reject(&request.metadata, question, 512, &mut out, now));
        let response = Message::from_vec(&out).unwrap();
        let tsig = response.signature.as_ref().unwrap();
        assert_eq!(
            tsig.name.to_string(),
            "transfer-key.",
            "the request's key name"
        );
        assert_eq!(tsig.data.error, Some(TsigError::BadKey));
        assert!(tsig.data.mac.is_empty());
    }

    /// A BADKEY repeats the request's key and algorithm names, which may be as long as names
    /// go: the answer still fits 512 bytes, without its question or, if need be, the record.
    #[test]
    fn long_unknown_names_still_fit() {
        let long = |first: &str| {
            let label = "a".repeat(60);
            Name::from_ascii(format!("{first}.{label}.{label}.{label}.{label}.")).unwrap()
        };
        let mut request = Message::new(7, MessageType::Query, OpCode::Query);
        request.add_query(Query::query(long("question"), RecordType::AXFR));
        let tsig = TSIG::new(
            TsigAlgorithm::Unknown(long("algorithm")),
            now(),
            300,
            vec![1; 32],
            7,
            None,
            Vec::new(),
        );
        request.set_signature(Box::new(make_tsig_record(long("key"), tsig)));
        let bytes = request.to_vec().unwrap();
        let parsed = Message::from_vec(&bytes).unwrap();
        let Signature::Rejected(mut signer) =
            TsigKey::check(Some(&key()), &bytes, parsed.signature.as_deref(), now())
        else {
            panic!("an unknown key");
        };
        for (limit, whole) in [(512, false), (1232, true)] {
            let mut out = Vec::new();
            assert!(signer.reject(
                &parsed.metadata,
                parsed.queries.first(),
                limit,
                &mut out,
                now()
            ));
            assert!(out.len() <= usize::from(limit), "{} > {limit}", out.len());
            let response = Message::from_vec(&out).unwrap();
            assert_eq!(response.metadata.response_code, ResponseCode::NotAuth);
            assert_eq!(!response.queries.is_empty(), whole, "{limit}");
            assert_eq!(response.signature.is_some(), whole, "{limit}");
        }
    }
}
