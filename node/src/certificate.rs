//! What a served TLS certificate must be, and when it ends: a certificate is taken into service
//! (at start, or on SIGHUP) only if it chains to the CA the group trusts and is valid now, and
//! its end (`notAfter`) is exported so that an alert fires weeks before it
//! (`XietongCertificateExpiring`).
//!
//! The end is read by a walk over the certificate's DER to `tbsCertificate.validity.notAfter`
//! (RFC 5280 §4.1): a few dozen bounds-checked lines instead of an X.509 parser dependency.
//! rustls's verifier (the one peers use) does the checking.

use std::sync::Arc;

use anyhow::Context;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// The name a served certificate is checked against at load. No certificate names it, so the
/// verifier's name check always fails after the chain and the validity passed; that failure is
/// expected and ignored. A peer checks the name it dialled at every connection.
const NO_NAME: &str = "certificate-check.xietong.invalid";

/// Refuses `chain` unless its first certificate chains (through the rest) to one of `roots`
/// and is valid at `now`; names the reason.
pub fn check_chain(
    chain: &[CertificateDer<'static>],
    roots: &Arc<rustls::RootCertStore>,
    now: UnixTime,
) -> anyhow::Result<()> {
    let (leaf, intermediates) = chain.split_first().context("no certificate")?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), crate::transport::provider())
            .build()
            .context("a verifier for the CA")?;
    let name = ServerName::try_from(NO_NAME).expect("a valid DNS name");
    match verifier.verify_server_cert(leaf, intermediates, &name, &[], now) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
        )) => Ok(()),
        Err(rustls::Error::InvalidCertificate(reason)) => {
            use rustls::CertificateError as Why;
            let why = match &reason {
                Why::Expired | Why::ExpiredContext { .. } => "it has expired",
                Why::NotValidYet | Why::NotValidYetContext { .. } => "it is not valid yet",
                Why::UnknownIssuer | Why::BadSignature => "it was not issued by the CA the group trusts",
                _ => "it does not verify",
            };
            let ends = not_after(leaf).map(|end| format!(", valid until {}", describe(end))).unwrap_or_default();
            Err(anyhow::anyhow!("the certificate is refused: {why} ({reason:?}{ends})"))
        }
        Err(other) => Err(anyhow::anyhow!("the certificate is refused: {other}")),
    }
}

/// The metric of when the served certificate ends, in Prometheus text, for the node's and the
/// gateway's `/metrics`; nothing without TLS (a zero would read as long expired).
pub fn expiry_metric(expires_at: Option<i64>) -> String {
    const NAME: &str = "xietong_tls_certificate_expires_at_timestamp_seconds";
    match expires_at {
        Some(at) => format!(
            "# HELP {NAME} When the TLS certificate served now ends (notAfter), as a Unix time.\n# TYPE {NAME} gauge\n{NAME} {at}\n"
        ),
        None => String::new(),
    }
}

fn describe(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// The end of a certificate's validity as a Unix time, or `None` when its DER is not a
/// certificate this walk can read.
pub fn not_after(certificate: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const VERSION: u8 = 0xa0;
    let (SEQUENCE, certificate, _) = tlv(certificate)? else { return None };
    let (SEQUENCE, mut tbs, _) = tlv(certificate)? else { return None };
    if tbs.first() == Some(&VERSION) {
        tbs = tlv(tbs)?.2;
    }
    let (INTEGER, _, rest) = tlv(tbs)? else { return None }; // serialNumber
    let (SEQUENCE, _, rest) = tlv(rest)? else { return None }; // signature
    let (SEQUENCE, _, rest) = tlv(rest)? else { return None }; // issuer
    let (SEQUENCE, validity, _) = tlv(rest)? else { return None };
    let (_, _, rest) = tlv(validity)?; // notBefore
    let (tag, end, _) = tlv(rest)?;
    asn1_time(tag, end)
}

/// One DER element at the start of `der`: its tag, its contents and what follows it.
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: 1 to 4 length bytes are plenty for a certificate.
        let count = usize::from(first & 0x7f);
        if !(1..=4).contains(&count) || rest.len() < count {
            return None;
        }
        let length = rest[..count].iter().fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// An ASN.1 UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`),
/// the two forms RFC 5280 allows in a validity, as a Unix time.
fn asn1_time(tag: u8, text: &[u8]) -> Option<i64> {
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    let digits = std::str::from_utf8(text.strip_suffix(b"Z")?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<i32>().ok();
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = number(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (number(0..4)?, 4),
        _ => return None,
    };
    let field = |at: usize| number(rest + at..rest + at + 2).and_then(|n| u8::try_from(n).ok());
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let clock = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_time_forms_are_read_and_damage_is_none() {
        assert_eq!(asn1_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(asn1_time(0x17, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(asn1_time(0x18, b"40960101000000Z"), Some(67_090_118_400));
        for (tag, text) in [
            (0x17, &b"491231235959"[..]),
            (0x17, b"491331235959Z"),
            (0x18, b"4096010100000Z"),
            (0x13, b"491231235959Z"),
            (0x17, b"4912312359+9Z"),
        ] {
            assert_eq!(asn1_time(tag, text), None, "{text:?}");
        }
        // A cut or nonsense certificate is no panic.
        for damaged in [&[][..], &[0x30], &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], &[0x30, 0x03, 0x30, 0x01]] {
            assert_eq!(not_after(damaged), None);
        }
    }
}
