//! On-site inspection records (现场检查记录): what the inspectors found at the firm, point by
//! point of the checklist they were shown, with the firm's representative, where they stood,
//! and the photos, signatures and documents they took (named by content hash: the files
//! themselves are kept beside the log on a majority of the group's nodes, never in it).
//!
//! A record is evidence (执法全过程记录): once committed it is never changed. A correction is a
//! further record of the same task; the task keeps every one, numbered from 1, each with the
//! SHA-256 of its canonical encoding (`SiteRecord::digest`), which the printed document carries.
//!
//! The checklist lives in the programme's configuration, not here: the accepting node checks
//! each answer against the checklist it serves and copies the point's wording and legal basis
//! into the record (as a campaign copies its items), so a record always shows the list it was
//! made against, named by that list's hash (`checklist`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::campaign::is_hex_sha256;
use crate::command::Rejection;
use crate::task::wire_enum;

/// Records one task keeps: the first and a few corrections.
pub const SITE_RECORDS_PER_TASK_MAX: usize = 10;
/// Answers in one record: every check point of a handful of items.
pub const CHECK_ANSWERS_MAX: usize = 300;
/// Photos, signatures and documents named by one record.
pub const ATTACHMENTS_PER_RECORD_MAX: usize = 40;
/// What an inspector writes in the record's notes (检查情况).
pub const SITE_NOTES_CHARS_MAX: usize = 4_000;
/// A check point's wording, its legal basis, or a written answer.
pub const CHECK_TEXT_CHARS_MAX: usize = 1_000;
/// Item and check point codes (`B01`, `B01-03`).
pub const CHECK_CODE_CHARS_MAX: usize = 32;
/// Names and titles of people present.
pub const PERSON_TEXT_CHARS_MAX: usize = 64;
/// A number answered, as written: digits, a sign and a decimal point.
pub const NUMBER_CHARS_MAX: usize = 24;
/// Media types are short; only those of `MEDIA_TYPES` are taken.
pub const MEDIA_TYPES: [&str; 3] = ["image/jpeg", "image/png", "application/pdf"];

wire_enum! {
    /// How a check point is answered.
    pub enum AnswerKind {
        /// 符合 / 不符合 / 不适用.
        Conformity = "conformity",
        /// A measured or counted value.
        Number = "number",
        /// Free text.
        Text = "text",
    }
}

wire_enum! {
    /// A conformity answer.
    pub enum Conformity {
        Conforms = "conforms",
        DoesNotConform = "does_not_conform",
        NotApplicable = "not_applicable",
    }
}

wire_enum! {
    /// What an attachment is to the record.
    pub enum AttachmentKind {
        Photo = "photo",
        /// An inspector's signature (执法人员签名), drawn on the phone.
        InspectorSignature = "inspector_signature",
        /// The firm's representative's signature (当事人签名).
        RepresentativeSignature = "representative_signature",
        /// A document: a scanned licence, a notice served.
        Document = "document",
    }
}

/// An answer to one check point, in the form its kind takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Conformity(Conformity),
    /// As written (`-12.5`): kept exact, never a float.
    Number(String),
    Text(String),
}

impl Answer {
    pub fn kind(&self) -> AnswerKind {
        match self {
            Answer::Conformity(_) => AnswerKind::Conformity,
            Answer::Number(_) => AnswerKind::Number,
            Answer::Text(_) => AnswerKind::Text,
        }
    }
}

/// One check point answered, with the wording and basis the inspector was shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckAnswer {
    pub item: String,
    pub point: String,
    pub wording: String,
    pub basis: String,
    pub answer: Answer,
    /// What the inspector adds to this point (an unconformity's detail).
    pub remark: String,
}

/// The firm's representative present at the inspection (当事人或其代表).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Representative {
    pub name: String,
    /// 职务: legal representative, manager on duty, …
    pub title: String,
}

/// Where the record was made, as the phone's geolocation gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Degrees × 1,000,000 (about 0.1 m): integers, so the record's bytes are exact.
    pub latitude_micro: i32,
    pub longitude_micro: i32,
    pub accuracy_m: u32,
}

/// A file the record names, kept outside the log under its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub sha256: String,
    pub kind: AttachmentKind,
    pub media_type: String,
    pub bytes: u64,
    /// Whose signature, for a signature: an inspector's badge or the representative's name.
    pub signer: String,
}

/// A record as the inspector submits it (the accepting node has checked it against its
/// checklist and holds every file it names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSiteRecord {
    /// The SHA-256 of the checklist the form showed.
    pub checklist: String,
    pub answers: Vec<CheckAnswer>,
    pub notes: String,
    pub representative: Option<Representative>,
    pub position: Option<Position>,
    pub attachments: Vec<AttachmentRef>,
    /// When the inspector finished it, by the phone's clock (it may have waited offline).
    pub made_at_ms: u64,
}

/// A committed record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRecord {
    /// 1 for the task's first record, then each correction.
    pub number: u32,
    pub record: NewSiteRecord,
    /// Who submitted it (`person:<id>:<name>`) and when it was committed.
    pub recorded_by: String,
    pub recorded_at_ms: u64,
    /// The SHA-256 of everything above, in the ledger's encoding: printed on the document.
    pub digest: String,
}

impl SiteRecord {
    /// The record of `new`, numbered and sealed with its digest.
    pub fn seal(number: u32, record: NewSiteRecord, recorded_by: String, recorded_at_ms: u64) -> SiteRecord {
        let mut sealed = SiteRecord { number, record, recorded_by, recorded_at_ms, digest: String::new() };
        sealed.digest = sealed.computed_digest();
        sealed
    }

    /// What the digest of this record must be.
    pub fn computed_digest(&self) -> String {
        let unsealed = (self.number, &self.record, &self.recorded_by, self.recorded_at_ms);
        let bytes = crate::codec::encode(&unsealed).expect("a record encodes");
        hex(&Sha256::digest(&bytes))
    }

    pub fn photos(&self) -> usize {
        self.record.attachments.iter().filter(|a| a.kind == AttachmentKind::Photo).count()
    }

    /// Complete as evidence: a photo, a signature of each of `inspectors_min` inspectors and
    /// one of the firm's representative (who was named).
    pub fn is_complete(&self, inspectors_min: usize) -> bool {
        let signed = |kind: AttachmentKind| self.record.attachments.iter().filter(|a| a.kind == kind).count();
        self.photos() > 0
            && signed(AttachmentKind::InspectorSignature) >= inspectors_min.max(1)
            && self.record.representative.is_some()
            && signed(AttachmentKind::RepresentativeSignature) > 0
    }
}

/// The inspectors' signatures a record of `task` needs to be complete: one per drawn
/// inspector, two at most (the rules' least team); one on a task that is no drawn inspection.
pub fn inspector_signatures_needed(task: &crate::task::Task) -> usize {
    let team = task.inspection.as_ref().map_or(1, |inspection| inspection.inspectors.len());
    team.clamp(1, crate::campaign::TEAM_SIZE_MIN as usize)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn invalid(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection::Invalid { field: field.into(), reason: reason.into() }
}

/// Whether a number answer is written as one: an optional sign, digits, an optional fraction.
fn is_number(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    text.chars().count() <= NUMBER_CHARS_MAX
        && !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// The checks the ledger makes of a record, whoever proposed it: its sizes and forms, and that
/// it answers only the inspection's items (`items`; none on a task that is no inspection).
pub fn check(record: &NewSiteRecord, items: &[&str]) -> Result<(), Rejection> {
    use crate::validate::text;
    if !is_hex_sha256(&record.checklist) {
        return Err(invalid("checklist", "the checklist is named by its SHA-256 (64 lower-case hex digits)"));
    }
    if record.answers.len() > CHECK_ANSWERS_MAX {
        return Err(invalid("answers", format!("at most {CHECK_ANSWERS_MAX} answers")));
    }
    let mut answered = std::collections::BTreeSet::new();
    for answer in &record.answers {
        text("answers.item", &answer.item, CHECK_CODE_CHARS_MAX, true, false)?;
        text("answers.point", &answer.point, CHECK_CODE_CHARS_MAX, true, false)?;
        text("answers.wording", &answer.wording, CHECK_TEXT_CHARS_MAX, true, true)?;
        text("answers.basis", &answer.basis, CHECK_TEXT_CHARS_MAX, false, true)?;
        text("answers.remark", &answer.remark, CHECK_TEXT_CHARS_MAX, false, true)?;
        if !items.contains(&answer.item.as_str()) {
            return Err(invalid("answers.item", format!("{} is not an item of this inspection", answer.item)));
        }
        if !answered.insert((&answer.item, &answer.point)) {
            return Err(invalid("answers", format!("{} {} is answered twice", answer.item, answer.point)));
        }
        match &answer.answer {
            Answer::Conformity(_) => {}
            Answer::Number(number) if !is_number(number) => {
                return Err(invalid("answers.answer", format!("{number:?} is not a number")))
            }
            Answer::Number(_) => {}
            Answer::Text(written) => text("answers.answer", written, CHECK_TEXT_CHARS_MAX, true, true)?,
        }
    }
    text("notes", &record.notes, SITE_NOTES_CHARS_MAX, false, true)?;
    if let Some(representative) = &record.representative {
        text("representative.name", &representative.name, PERSON_TEXT_CHARS_MAX, true, false)?;
        text("representative.title", &representative.title, PERSON_TEXT_CHARS_MAX, false, false)?;
    }
    if let Some(position) = record.position {
        let latitude = (-90_000_000..=90_000_000).contains(&position.latitude_micro);
        let longitude = (-180_000_000..=180_000_000).contains(&position.longitude_micro);
        if !latitude || !longitude {
            return Err(invalid("position", "a latitude within ±90° and a longitude within ±180°"));
        }
    }
    if record.attachments.len() > ATTACHMENTS_PER_RECORD_MAX {
        return Err(invalid("attachments", format!("at most {ATTACHMENTS_PER_RECORD_MAX} attachments")));
    }
    let mut named = std::collections::BTreeSet::new();
    for attachment in &record.attachments {
        if !is_hex_sha256(&attachment.sha256) {
            return Err(invalid("attachments.sha256", "an attachment is named by its SHA-256"));
        }
        if !named.insert(&attachment.sha256) {
            return Err(invalid("attachments", format!("{} is named twice", attachment.sha256)));
        }
        if !MEDIA_TYPES.contains(&attachment.media_type.as_str()) {
            return Err(invalid("attachments.media_type", format!("one of {}", MEDIA_TYPES.join(", "))));
        }
        if attachment.bytes == 0 {
            return Err(invalid("attachments.bytes", "an attachment is not empty"));
        }
        let signature =
            matches!(attachment.kind, AttachmentKind::InspectorSignature | AttachmentKind::RepresentativeSignature);
        text("attachments.signer", &attachment.signer, PERSON_TEXT_CHARS_MAX, signature, false)?;
        if !signature && !attachment.signer.is_empty() {
            return Err(invalid("attachments.signer", "only a signature has a signer"));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> NewSiteRecord {
        NewSiteRecord {
            checklist: "a".repeat(64),
            answers: vec![CheckAnswer {
                item: "B01".into(),
                point: "B01-01".into(),
                wording: "是否持有有效食品经营许可证".into(),
                basis: "《食品安全法》第三十五条".into(),
                answer: Answer::Conformity(Conformity::Conforms),
                remark: String::new(),
            }],
            notes: "现场检查未发现问题。".into(),
            representative: Some(Representative { name: "陈老板".into(), title: "负责人".into() }),
            position: Some(Position { latitude_micro: 23_129_100, longitude_micro: 113_264_400, accuracy_m: 12 }),
            attachments: vec![AttachmentRef {
                sha256: "b".repeat(64),
                kind: AttachmentKind::Photo,
                media_type: "image/jpeg".into(),
                bytes: 1_024,
                signer: String::new(),
            }],
            made_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_record_is_checked_for_its_forms_and_its_inspection_items() {
        let record = sample();
        assert!(check(&record, &["B01"]).is_ok());
        assert!(check(&record, &["A01"]).is_err(), "an item not of the inspection");
        let mut twice = sample();
        twice.answers.push(twice.answers[0].clone());
        assert!(check(&twice, &["B01"]).is_err());
        for number in ["12", "-3.25", "0.5"] {
            assert!(is_number(number), "{number}");
        }
        for number in ["", "-", "1.", ".5", "1e3", "１２", "1.2.3"] {
            assert!(!is_number(number), "{number}");
        }
        let mut unsigned = sample();
        unsigned.attachments[0].kind = AttachmentKind::RepresentativeSignature;
        assert!(check(&unsigned, &["B01"]).is_err(), "a signature names its signer");
        let mut gif = sample();
        gif.attachments[0].media_type = "image/gif".into();
        assert!(check(&gif, &["B01"]).is_err());
        let mut far = sample();
        far.position = Some(Position { latitude_micro: 91_000_000, longitude_micro: 0, accuracy_m: 1 });
        assert!(check(&far, &["B01"]).is_err());
    }

    #[test]
    fn the_digest_covers_the_whole_record_and_completeness_needs_photo_and_signatures() {
        let sealed = SiteRecord::seal(1, sample(), "person:2:李明".into(), 1_700_000_100_000);
        assert_eq!(sealed.digest, sealed.computed_digest());
        assert!(is_hex_sha256(&sealed.digest));
        let mut bent = sealed.clone();
        bent.record.notes.push('。');
        assert_ne!(bent.computed_digest(), sealed.digest, "any change shows");
        assert!(!sealed.is_complete(2), "no signatures yet");
        let mut signed = sample();
        for (n, (kind, signer)) in [
            (AttachmentKind::InspectorSignature, "44010600001"),
            (AttachmentKind::InspectorSignature, "44010600002"),
            (AttachmentKind::RepresentativeSignature, "陈老板"),
        ]
        .into_iter()
        .enumerate()
        {
            signed.attachments.push(AttachmentRef {
                sha256: format!("{n}").repeat(64),
                kind,
                media_type: "image/png".into(),
                bytes: 900,
                signer: signer.into(),
            });
        }
        assert!(check(&signed, &["B01"]).is_ok());
        assert!(SiteRecord::seal(1, signed, "person:2:李明".into(), 1).is_complete(2));
    }
}
