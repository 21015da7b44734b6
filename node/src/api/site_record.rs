//! The JSON of on-site records (`ledger::site_record`): the checklist a form shows
//! (`GET /api/v1/tasks/{id}/checklist`), the record an inspector submits (the `record` of
//! `POST /api/v1/tasks/{id}/record_on_site`), and a committed record as a task shows it.
//!
//! A submitted record names check points by code and answers them as written; the accepting
//! node copies each point's wording and basis from the checklist it serves (refusing a record
//! made against another version of it: 409 `checklist_changed`), and each attachment's media
//! type and size from the file it holds (`crate::attachments`).

use ledger::site_record::{
    Answer, AnswerKind, AttachmentKind, AttachmentRef, CheckAnswer, Conformity, NewSiteRecord, Position,
    Representative, SiteRecord,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{time, ApiError};

/// One check point as the form shows it.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckPointJson {
    pub code: String,
    pub wording: String,
    /// `conformity` (符合/不符合/不适用), `number` or `text`.
    pub answer: String,
    pub basis: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChecklistItemJson {
    pub code: String,
    pub name: String,
    pub check_points: Vec<CheckPointJson>,
}

/// The checklist of one task: its inspection's items with their check points, and the SHA-256
/// that names this version of it (a record made against it sends it back).
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChecklistJson {
    pub checklist: String,
    pub items: Vec<ChecklistItemJson>,
}

impl ChecklistJson {
    /// The checklist of `items`, named by the SHA-256 of their JSON.
    pub fn of(items: Vec<ChecklistItemJson>) -> ChecklistJson {
        let bytes = serde_json::to_vec(&items).expect("a checklist serialises");
        let checklist = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        ChecklistJson { checklist, items }
    }

    fn point(&self, item: &str, point: &str) -> Option<&CheckPointJson> {
        let item = self.items.iter().find(|candidate| candidate.code == item)?;
        item.check_points.iter().find(|candidate| candidate.code == point)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub item: String,
    pub point: String,
    /// `conforms`, `does_not_conform` or `not_applicable` for a conformity point; the number as
    /// written (`-12.5`) for a number point; the text for a text point.
    pub answer: String,
    #[serde(default)]
    pub remark: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepresentativeJson {
    pub name: String,
    #[serde(default)]
    pub title: String,
}

/// Where the record was made, from the browser's geolocation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionJson {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRequest {
    pub sha256: String,
    /// `photo`, `inspector_signature`, `representative_signature` or `document`.
    pub kind: String,
    /// Whose signature (an inspector's badge number, the representative's name); empty otherwise.
    #[serde(default)]
    pub signer: String,
}

/// An on-site record as an inspector submits it.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteRecordRequest {
    /// The `checklist` of the checklist the form showed.
    pub checklist: String,
    #[serde(default)]
    pub answers: Vec<AnswerRequest>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub representative: Option<RepresentativeJson>,
    #[serde(default)]
    pub position: Option<PositionJson>,
    #[serde(default)]
    pub attachments: Vec<AttachmentRequest>,
    /// When the inspector finished it (RFC 3339), by the phone's clock.
    #[schemars(schema_with = "crate::api::schema::timestamp")]
    pub made_at: String,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid { code, message: message.into() }
}

/// What the node holds of an attachment: its media type and size.
#[derive(Clone, Copy, Debug)]
pub struct HeldFile {
    pub media_type: &'static str,
    pub bytes: u64,
}

impl SiteRecordRequest {
    /// The ledger's record of this request against `checklist` (the one the node serves for
    /// the task), with each attachment as `crate::attachments::held_files` found it.
    pub fn to_record(
        self,
        checklist: &ChecklistJson,
        held: &std::collections::BTreeMap<String, HeldFile>,
    ) -> Result<NewSiteRecord, ApiError> {
        if self.checklist != checklist.checklist {
            return Err(ApiError::Conflict {
                code: "checklist_changed",
                message: "the checklist changed since the form was loaded: load it again and check the answers".into(),
            });
        }
        let mut answers = Vec::with_capacity(self.answers.len());
        for answer in self.answers {
            let point = checklist.point(&answer.item, &answer.point).ok_or_else(|| {
                invalid("unknown_check_point", format!("{} {} is not on the checklist", answer.item, answer.point))
            })?;
            let kind = AnswerKind::parse(&point.answer).unwrap_or(AnswerKind::Text);
            let given = match kind {
                AnswerKind::Conformity => Answer::Conformity(Conformity::parse(&answer.answer).ok_or_else(|| {
                    invalid("invalid_answer", format!("{}: one of {}", answer.point, Conformity::names()))
                })?),
                AnswerKind::Number => Answer::Number(answer.answer.trim().to_owned()),
                AnswerKind::Text => Answer::Text(answer.answer),
            };
            answers.push(CheckAnswer {
                item: answer.item,
                point: answer.point,
                wording: point.wording.clone(),
                basis: point.basis.clone(),
                answer: given,
                remark: answer.remark,
            });
        }
        let position = match self.position {
            None => None,
            Some(position) => {
                let micro = |degrees: f64| (degrees * 1e6).round();
                let fits = |value: f64, limit: f64| value.is_finite() && value.abs() <= limit;
                if !fits(position.latitude, 90.0) || !fits(position.longitude, 180.0) {
                    return Err(invalid("invalid_position", "a latitude within ±90° and a longitude within ±180°"));
                }
                if !position.accuracy_m.is_finite() || position.accuracy_m < 0.0 {
                    return Err(invalid("invalid_position", "the accuracy is metres, not negative"));
                }
                Some(Position {
                    latitude_micro: micro(position.latitude) as i32,
                    longitude_micro: micro(position.longitude) as i32,
                    accuracy_m: position.accuracy_m.min(f64::from(u32::MAX)).round() as u32,
                })
            }
        };
        // Before any is looked up: only the first `ATTACHMENTS_PER_RECORD_MAX` were.
        let named_max = ledger::site_record::ATTACHMENTS_PER_RECORD_MAX;
        if self.attachments.len() > named_max {
            return Err(invalid("too_many_attachments", format!("a record names at most {named_max} files")));
        }
        let mut attachments = Vec::with_capacity(self.attachments.len());
        for attachment in self.attachments {
            let kind = AttachmentKind::parse(&attachment.kind).ok_or_else(|| {
                invalid("invalid_attachment_kind", format!("kind: one of {}", AttachmentKind::names()))
            })?;
            if !ledger::campaign::is_hex_sha256(&attachment.sha256) {
                return Err(invalid("invalid_sha256", "an attachment is named by its SHA-256 (64 lower-case hex)"));
            }
            let file = *held.get(&attachment.sha256).ok_or_else(|| ApiError::Conflict {
                code: "attachment_missing",
                message: format!("the attachment {} is not held here: upload it again", attachment.sha256),
            })?;
            attachments.push(AttachmentRef {
                sha256: attachment.sha256,
                kind,
                media_type: file.media_type.to_owned(),
                bytes: file.bytes,
                signer: attachment.signer,
            });
        }
        let made_at_ms = time::parse_ms(&self.made_at)
            .ok_or_else(|| invalid("invalid_timestamp", "made_at: an RFC 3339 time with its offset"))?;
        Ok(NewSiteRecord {
            checklist: self.checklist,
            answers,
            notes: self.notes,
            representative: self.representative.map(|r| Representative { name: r.name, title: r.title }),
            position,
            attachments,
            made_at_ms,
        })
    }
}

/// A committed record as a task shows it.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SiteRecordJson {
    pub number: u32,
    pub checklist: String,
    pub answers: Vec<CheckAnswerJson>,
    pub notes: String,
    pub representative: Option<RepresentativeJson>,
    pub position: Option<PositionJson>,
    pub attachments: Vec<AttachmentRefJson>,
    pub made_at: String,
    pub recorded_by: String,
    pub recorded_at: String,
    /// The SHA-256 of the record in the ledger's encoding, printed on its document.
    pub digest: String,
    /// A photo, both inspectors' and the representative's signatures.
    pub complete: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckAnswerJson {
    pub item: String,
    pub point: String,
    pub wording: String,
    pub basis: String,
    pub answer: String,
    pub remark: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttachmentRefJson {
    pub sha256: String,
    pub kind: String,
    pub media_type: String,
    pub bytes: u64,
    pub signer: String,
}

impl SiteRecordJson {
    /// `record` of a task whose records need `signatures_needed` inspectors' signatures
    /// (`ledger::site_record::inspector_signatures_needed`).
    pub fn of(record: &SiteRecord, signatures_needed: usize) -> SiteRecordJson {
        let answered = |answer: &Answer| match answer {
            Answer::Conformity(conformity) => conformity.as_str().to_owned(),
            Answer::Number(written) | Answer::Text(written) => written.clone(),
        };
        let body = &record.record;
        SiteRecordJson {
            number: record.number,
            checklist: body.checklist.clone(),
            answers: body
                .answers
                .iter()
                .map(|a| CheckAnswerJson {
                    item: a.item.clone(),
                    point: a.point.clone(),
                    wording: a.wording.clone(),
                    basis: a.basis.clone(),
                    answer: answered(&a.answer),
                    remark: a.remark.clone(),
                })
                .collect(),
            notes: body.notes.clone(),
            representative: body
                .representative
                .as_ref()
                .map(|r| RepresentativeJson { name: r.name.clone(), title: r.title.clone() }),
            position: body.position.map(|p| PositionJson {
                latitude: f64::from(p.latitude_micro) / 1e6,
                longitude: f64::from(p.longitude_micro) / 1e6,
                accuracy_m: f64::from(p.accuracy_m),
            }),
            attachments: body
                .attachments
                .iter()
                .map(|a| AttachmentRefJson {
                    sha256: a.sha256.clone(),
                    kind: a.kind.as_str().to_owned(),
                    media_type: a.media_type.clone(),
                    bytes: a.bytes,
                    signer: a.signer.clone(),
                })
                .collect(),
            made_at: time::format_ms(body.made_at_ms),
            recorded_by: record.recorded_by.clone(),
            recorded_at: time::format_ms(record.recorded_at_ms),
            digest: record.digest.clone(),
            complete: record.is_complete(signatures_needed),
        }
    }
}
