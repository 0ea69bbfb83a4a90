//! Shared access signatures signed with an account key: our own signer, because the GA
//! `azure_storage_*` 1.x crates have no shared-key support at all (docs/contracts.md, "Blob SDK
//! without shared key").
//!
//! Two kinds are needed:
//! * an **account SAS** on the service URL, which is how the SDK client itself is authorised
//!   when all we have is a key (the client is created with `credential = None`);
//! * a **service SAS** for one blob, read-only, which is the download link handed out.
//!
//! Both use `sv=2022-11-02`: current enough for every field we sign, and accepted by Azure and
//! by Azurite. The layouts (fields joined by `\n`), from the Storage REST documentation:
//! * service SAS, sv >= 2020-12-06, 16 fields: `sp st se canonicalizedResource si sip spr sv
//!   sr snapshotTime ses rscc rscd rsce rscl rsct`;
//! * account SAS, sv >= 2020-12-06: `account sp ss srt st se sip spr sv ses` **plus a
//!   trailing newline**.
//!
//! The user-delegation SAS (Entra credential, no key anywhere) is signed by the official
//! `azure_storage_sas` crate instead; see `links.rs`.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

/// The service version our key-based SAS tokens are signed for.
pub const KEY_SAS_VERSION: &str = "2022-11-02";

/// Which protocols a SAS allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    HttpsOnly,
    /// Only for an emulator on loopback, which speaks plain http.
    HttpsAndHttp,
}

impl Protocols {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocols::HttpsOnly => "https",
            Protocols::HttpsAndHttp => "https,http",
        }
    }
}

/// A service SAS for one blob.
#[derive(Debug, Clone)]
pub struct BlobSas<'a> {
    pub account: &'a str,
    pub container: &'a str,
    pub blob: &'a str,
    /// Permission letters in the documented order, e.g. `r`.
    pub permissions: &'a str,
    pub start: OffsetDateTime,
    pub expiry: OffsetDateTime,
    pub protocols: Protocols,
    /// `rscd`: the Content-Disposition the service answers with.
    pub content_disposition: Option<&'a str>,
    /// `rsct`: the Content-Type the service answers with.
    pub content_type: Option<&'a str>,
}

impl BlobSas<'_> {
    /// The string-to-sign (exposed for tests that check the layout).
    pub fn string_to_sign(&self) -> String {
        let canonical = format!("/blob/{}/{}/{}", self.account, self.container, self.blob);
        [
            self.permissions,
            &format_time(self.start),
            &format_time(self.expiry),
            &canonical,
            "", // si: no stored access policy
            "", // sip
            self.protocols.as_str(),
            KEY_SAS_VERSION,
            "b", // sr
            "",  // snapshot time
            "",  // ses
            "",  // rscc
            self.content_disposition.unwrap_or(""),
            "", // rsce
            "", // rscl
            self.content_type.unwrap_or(""),
        ]
        .join("\n")
    }

    /// The query string (without `?`), signed with the decoded account key.
    pub fn sign(&self, key: &[u8]) -> String {
        let sig = hmac_base64(key, &self.string_to_sign());
        let mut q = vec![
            ("sv", KEY_SAS_VERSION.to_owned()),
            ("sr", "b".to_owned()),
            ("sp", self.permissions.to_owned()),
            ("st", format_time(self.start)),
            ("se", format_time(self.expiry)),
            ("spr", self.protocols.as_str().to_owned()),
        ];
        if let Some(cd) = self.content_disposition {
            q.push(("rscd", cd.to_owned()));
        }
        if let Some(ct) = self.content_type {
            q.push(("rsct", ct.to_owned()));
        }
        q.push(("sig", sig));
        query(&q)
    }
}

/// An account SAS (used to authorise the SDK client on a service URL).
#[derive(Debug, Clone)]
pub struct AccountSas<'a> {
    pub account: &'a str,
    /// Services: `b` blob, `q` queue.
    pub services: &'a str,
    /// Resource types: `s` service, `c` container, `o` object.
    pub resource_types: &'a str,
    pub permissions: &'a str,
    pub start: OffsetDateTime,
    pub expiry: OffsetDateTime,
    pub protocols: Protocols,
}

impl AccountSas<'_> {
    pub fn string_to_sign(&self) -> String {
        // Nine fields and an empty encryption scope, each followed by a newline.
        let fields = [
            self.account,
            self.permissions,
            self.services,
            self.resource_types,
            &format_time(self.start),
            &format_time(self.expiry),
            "", // sip
            self.protocols.as_str(),
            KEY_SAS_VERSION,
            "", // ses
        ];
        let mut sts = fields.join("\n");
        sts.push('\n');
        sts
    }

    pub fn sign(&self, key: &[u8]) -> String {
        let sig = hmac_base64(key, &self.string_to_sign());
        query(&[
            ("sv", KEY_SAS_VERSION.to_owned()),
            ("ss", self.services.to_owned()),
            ("srt", self.resource_types.to_owned()),
            ("sp", self.permissions.to_owned()),
            ("st", format_time(self.start)),
            ("se", format_time(self.expiry)),
            ("spr", self.protocols.as_str().to_owned()),
            ("sig", sig),
        ])
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the only time form SAS fields use.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Percent-encode a query value: everything but RFC 3986 unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// base64(HMAC-SHA256(key, message)).
pub fn hmac_base64(key: &[u8], message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; stay total anyway.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Replace the value of every `sig=` in `text` (a URL, an error message) with `REDACTED`.
///
/// Applied to anything that might carry a SAS before it is logged or put in an answer, as a
/// second line of defence behind building such texts without URLs in the first place.
pub fn redact_sas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_sig(rest) {
        let (head, tail) = rest.split_at(pos + 4);
        out.push_str(head);
        out.push_str("REDACTED");
        let end = tail
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c == ')' || c.is_whitespace())
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn find_sig(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("sig=") {
        let at = from + i;
        let boundary = at == 0 || matches!(lower.as_bytes()[at - 1], b'?' | b'&' | b';' | b' ');
        if boundary {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn blob_sas() -> BlobSas<'static> {
        BlobSas {
            account: "devstoreaccount1",
            container: "reports",
            blob: "fabrikam/2026/11/24/patreport-fabrikam-20261124-090503.xlsx",
            permissions: "r",
            start: datetime!(2026-11-24 08:55:03 UTC),
            expiry: datetime!(2026-11-24 10:05:03 UTC),
            protocols: Protocols::HttpsOnly,
            content_disposition: Some(
                "attachment; filename=\"patreport-fabrikam-20261124-090503.xlsx\"",
            ),
            content_type: None,
        }
    }

    #[test]
    fn service_sas_string_to_sign_has_the_sixteen_documented_fields() {
        let sts = blob_sas().string_to_sign();
        let fields: Vec<&str> = sts.split('\n').collect();
        assert_eq!(fields.len(), 16);
        assert_eq!(fields[0], "r");
        assert_eq!(fields[1], "2026-11-24T08:55:03Z");
        assert_eq!(
            fields[3],
            "/blob/devstoreaccount1/reports/fabrikam/2026/11/24/patreport-fabrikam-20261124-090503.xlsx"
        );
        assert_eq!(fields[6], "https");
        assert_eq!(fields[7], "2022-11-02");
        assert_eq!(fields[8], "b");
        assert!(fields[12].starts_with("attachment;"));
    }

    #[test]
    fn signed_query_encodes_values_and_ends_with_the_signature() {
        let q = blob_sas().sign(b"key");
        assert!(
            q.starts_with("sv=2022-11-02&sr=b&sp=r&st=2026-11-24T08%3A55%3A03Z&"),
            "{q}"
        );
        assert!(q.contains("spr=https&"));
        assert!(q.contains(
            "rscd=attachment%3B%20filename%3D%22patreport-fabrikam-20261124-090503.xlsx%22"
        ));
        let sig = q.rsplit_once("&sig=").unwrap().1;
        assert_eq!(
            sig,
            encode(&hmac_base64(b"key", &blob_sas().string_to_sign()))
        );
    }

    #[test]
    fn account_sas_string_to_sign_ends_with_a_newline() {
        let sas = AccountSas {
            account: "acct",
            services: "b",
            resource_types: "sco",
            permissions: "rwcl",
            start: datetime!(2026-01-01 00:00:00 UTC),
            expiry: datetime!(2026-01-01 01:00:00 UTC),
            protocols: Protocols::HttpsAndHttp,
        };
        assert_eq!(
            sas.string_to_sign(),
            "acct\nrwcl\nb\nsco\n2026-01-01T00:00:00Z\n2026-01-01T01:00:00Z\n\nhttps,http\n2022-11-02\n\n"
        );
    }

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2.
        let expected = base64::engine::general_purpose::STANDARD.encode(hex(
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ));
        assert_eq!(
            hmac_base64(b"Jefe", "what do ya want for nothing?"),
            expected
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn signatures_are_redacted_wherever_they_appear() {
        let text =
            "error sending request for url (http://h/c/b?sv=2022&sig=abc%2Bdef&se=x): refused";
        assert_eq!(
            redact_sas(text),
            "error sending request for url (http://h/c/b?sv=2022&sig=REDACTED&se=x): refused"
        );
        assert_eq!(redact_sas("sig=zzz"), "sig=REDACTED");
        assert_eq!(
            redact_sas("no secret, design=fine"),
            "no secret, design=fine"
        );
        assert_eq!(redact_sas("a?SIG=x y"), "a?SIG=REDACTED y");
    }
}
