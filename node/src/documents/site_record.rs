//! The on-site record as its printed document, 现场检查笔录: who inspected which firm, when
//! and where, each check point with its answer and legal basis, the notes, the list of every
//! attachment by SHA-256, the signatures drawn on the phone, the photos on pages after, and the
//! record's digest on every page, so a printed copy can be matched to the ledger.

use std::collections::BTreeMap;
use std::sync::Arc;

use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::{Data, Document};
use ledger::site_record::{Answer, AttachmentKind, AttachmentRef, Conformity, SiteRecord};

use super::layout::{text_width, Flow};

const TITLE_PT: f32 = 20.0;
const HEADING_PT: f32 = 12.5;
const BODY_PT: f32 = 10.5;
const SMALL_PT: f32 = 8.5;
/// The box a signature is drawn in.
const SIGNATURE_BOX_PT: (f32, f32) = (160.0, 64.0);
/// Photos go two to a page.
const PHOTO_BOX_HEIGHT_PT: f32 = 300.0;
/// Image bytes drawn into one document, signatures first, then photos; the rest are listed by
/// hash only (a record may name 40 files of 10 MiB; the phone sends photos of about 0.5 MB).
pub const IMAGE_BYTES_IN_DOCUMENT_MAX: u64 = 48 * 1024 * 1024;

/// Everything the document shows that the record itself does not hold.
pub struct Particulars {
    /// The inspecting bureau's name (检查机关).
    pub bureau: String,
    /// The task's number, title and, for a drawn inspection, its campaign.
    pub task_id: u64,
    pub task_title: String,
    pub campaign: Option<String>,
    pub firm_name: String,
    pub firm_uscc: Option<String>,
    pub firm_address: String,
    /// The inspectors, by badge number (执法证号) and name.
    pub inspectors: Vec<(String, String)>,
    /// The bytes of the images to draw (`images_to_draw`) this node could fetch, by SHA-256.
    pub files: BTreeMap<String, Arc<Vec<u8>>>,
}

/// The images of `record` its document draws, within `IMAGE_BYTES_IN_DOCUMENT_MAX`: the
/// signatures, then the photos in their order. Only these are fetched for it.
pub fn images_to_draw(record: &SiteRecord) -> Vec<&AttachmentRef> {
    let is_signature = |a: &&AttachmentRef| {
        matches!(a.kind, AttachmentKind::InspectorSignature | AttachmentKind::RepresentativeSignature)
    };
    let images = record.record.attachments.iter().filter(|a| a.media_type.starts_with("image/"));
    let (signatures, others): (Vec<_>, Vec<_>) = images.partition(is_signature);
    let photos = others.into_iter().filter(|a| a.kind == AttachmentKind::Photo);
    let mut budget = IMAGE_BYTES_IN_DOCUMENT_MAX;
    signatures
        .into_iter()
        .chain(photos)
        .filter(|image| match budget.checked_sub(image.bytes) {
            Some(left) => {
                budget = left;
                true
            }
            None => false,
        })
        .collect()
}

/// The PDF of `record`, in face `font_index` of `font_data`. When an image cannot be drawn
/// (a file that passed the upload's type check but does not decode) the document is made
/// again without images, saying so, rather than not at all.
pub fn render(
    record: &SiteRecord,
    particulars: &Particulars,
    font_data: &Arc<Vec<u8>>,
    font_index: u32,
) -> Result<Vec<u8>, String> {
    render_with(record, particulars, font_data, font_index, true)
        .or_else(|_| render_with(record, particulars, font_data, font_index, false))
}

fn render_with(
    record: &SiteRecord,
    particulars: &Particulars,
    font_data: &Arc<Vec<u8>>,
    font_index: u32,
    with_images: bool,
) -> Result<Vec<u8>, String> {
    let mut flow = Flow::new(font_data, font_index).ok_or("the configured font does not load")?;
    let reference = format!("{}-{}", particulars.task_id, record.number);
    let body = &record.record;

    flow.centred(&particulars.bureau, HEADING_PT);
    flow.centred("现场检查笔录", TITLE_PT);
    flow.centred(&format!("编号 {reference}"), SMALL_PT);
    flow.rule();

    flow.field("检查对象：", &particulars.firm_name, BODY_PT);
    flow.field("统一社会信用代码：", particulars.firm_uscc.as_deref().unwrap_or("（无）"), BODY_PT);
    flow.field("地址：", &particulars.firm_address, BODY_PT);
    flow.field("检查时间：", &china_time(body.made_at_ms), BODY_PT);
    flow.field("检查地点坐标：", &position(record), BODY_PT);
    let inspectors: Vec<String> =
        particulars.inspectors.iter().map(|(badge, name)| format!("{name}（执法证号 {badge}）")).collect();
    flow.field("执法人员：", &none_if_empty(inspectors.join("、")), BODY_PT);
    let representative = body.representative.as_ref().map(|r| {
        if r.title.is_empty() {
            r.name.clone()
        } else {
            format!("{}（{}）", r.name, r.title)
        }
    });
    flow.field("当事人在场人员：", representative.as_deref().unwrap_or("未在场"), BODY_PT);
    flow.field("任务：", &format!("{} {}", particulars.task_id, particulars.task_title), BODY_PT);
    if let Some(campaign) = &particulars.campaign {
        flow.field("抽查任务：", campaign, BODY_PT);
    }
    flow.field("检查表（SHA-256）：", &body.checklist, BODY_PT);
    flow.rule();

    flow.paragraph("检查情况", HEADING_PT, 0.0);
    if body.answers.is_empty() {
        flow.paragraph("（未逐项记录检查要点）", BODY_PT, 0.0);
    }
    for (n, answer) in body.answers.iter().enumerate() {
        flow.keep(BODY_PT * 4.5);
        let number = format!("{}. ", n + 1);
        let hanging = flow.width(&number, BODY_PT);
        flow.paragraph(&format!("{number}〔{} {}〕{}", answer.item, answer.point, answer.wording), BODY_PT, hanging);
        let mut result = format!("检查结果：{}", answered(&answer.answer));
        if !answer.remark.is_empty() {
            result.push_str(&format!("　说明：{}", answer.remark));
        }
        indented(&mut flow, &result, BODY_PT, hanging);
        if !answer.basis.is_empty() {
            indented(&mut flow, &format!("依据：{}", answer.basis), SMALL_PT, hanging);
        }
    }
    flow.space(4.0);
    flow.field("检查情况说明：", &none_if_empty(body.notes.clone()), BODY_PT);
    flow.rule();

    flow.paragraph("附件", HEADING_PT, 0.0);
    if body.attachments.is_empty() {
        flow.paragraph("（无）", BODY_PT, 0.0);
    }
    for (n, attachment) in body.attachments.iter().enumerate() {
        let signer = if attachment.signer.is_empty() { String::new() } else { format!(" {}", attachment.signer) };
        let line = format!(
            "{}. {}{signer}，{}，{} 字节，SHA-256 {}",
            n + 1,
            kind_name(attachment.kind),
            attachment.media_type,
            attachment.bytes,
            attachment.sha256
        );
        flow.paragraph(&line, SMALL_PT, flow.width("00. ", SMALL_PT));
    }
    flow.rule();

    flow.paragraph("签名", HEADING_PT, 0.0);
    let signatures = body
        .attachments
        .iter()
        .filter(|a| matches!(a.kind, AttachmentKind::InspectorSignature | AttachmentKind::RepresentativeSignature));
    let mut signed = 0;
    for signature in signatures {
        let caption = match signature.kind {
            AttachmentKind::InspectorSignature => {
                let named = particulars.inspectors.iter().find(|(badge, _)| *badge == signature.signer);
                match named {
                    Some((badge, name)) if !name.is_empty() => format!("执法人员签名（{name}，{badge}）"),
                    _ => format!("执法人员签名（{}）", signature.signer),
                }
            }
            _ => format!("当事人签名（{}）", signature.signer),
        };
        signed += 1;
        match with_images.then(|| image_of(particulars, &signature.sha256, &signature.media_type)).flatten() {
            Some(image) => flow.image(image, SIGNATURE_BOX_PT.0, SIGNATURE_BOX_PT.1, &caption, SMALL_PT),
            None => flow.paragraph(&format!("{caption}：见附件 SHA-256 {}", signature.sha256), SMALL_PT, 0.0),
        }
    }
    if signed == 0 {
        flow.paragraph("（无签名）", BODY_PT, 0.0);
    }
    flow.space(6.0);
    flow.field("记录人：", &record.recorded_by, SMALL_PT);
    flow.field("入账时间：", &china_time(record.recorded_at_ms), SMALL_PT);
    flow.field("记录摘要（SHA-256）：", &record.digest, SMALL_PT);
    if !with_images {
        flow.paragraph("注：本记录的图像附件无法嵌入本文书，以上所列 SHA-256 为准。", SMALL_PT, 0.0);
    }

    let photos = body.attachments.iter().filter(|a| a.kind == AttachmentKind::Photo);
    for (n, photo) in photos.enumerate() {
        if n == 0 {
            flow.new_page();
            flow.paragraph("现场照片", HEADING_PT, 0.0);
        }
        let caption = format!("照片 {}　SHA-256 {}", n + 1, photo.sha256);
        match with_images.then(|| image_of(particulars, &photo.sha256, &photo.media_type)).flatten() {
            Some(image) => {
                flow.image(image, text_width(), PHOTO_BOX_HEIGHT_PT, &caption, SMALL_PT);
                flow.space(8.0);
            }
            None => flow.paragraph(&format!("{caption}（未嵌入，见附件）"), SMALL_PT, 0.0),
        }
    }

    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(format!("现场检查笔录 {reference} {}", particulars.firm_name))
            .creator("xietong".into())
            .language("zh-CN".into()),
    );
    let digest = record.digest.clone();
    flow.finish(document, move |page, pages| {
        format!("{reference}　记录摘要 SHA-256 {digest}　第 {page} 页 共 {pages} 页")
    })
}

fn indented(flow: &mut Flow<'_>, text: &str, size: f32, indent: f32) {
    // A paragraph whose every line starts at `indent`: the first line is padded with ideographic
    // spaces to the indent, later lines hang there.
    let pad = flow.width("\u{3000}", size);
    let spaces = if pad > 0.0 { (indent / pad).round() as usize } else { 0 };
    flow.paragraph(&format!("{}{text}", "\u{3000}".repeat(spaces.max(1))), size, indent.max(pad));
}

fn image_of(particulars: &Particulars, sha256: &str, media_type: &str) -> Option<Image> {
    let bytes = particulars.files.get(sha256)?;
    let data = Data::from(bytes.clone());
    match media_type {
        // A PNG is decoded whole (a JPEG is embedded as it is): its size is read from its
        // header first, and one that claims more than an upload may have (a million pixels
        // square in a hundred bytes would be an allocation no node survives) is only listed.
        "image/png" => {
            let (width, height) = crate::attachments::png_dimensions(bytes)?;
            let drawable = u64::from(width) * u64::from(height) <= crate::attachments::PNG_PIXELS_MAX;
            drawable.then(|| Image::from_png(data, true).ok()).flatten()
        }
        "image/jpeg" => Image::from_jpeg(data, true).ok(),
        _ => None,
    }
}

fn answered(answer: &Answer) -> String {
    match answer {
        Answer::Conformity(Conformity::Conforms) => "符合".into(),
        Answer::Conformity(Conformity::DoesNotConform) => "不符合".into(),
        Answer::Conformity(Conformity::NotApplicable) => "不适用".into(),
        Answer::Number(written) | Answer::Text(written) => written.clone(),
    }
}

fn kind_name(kind: AttachmentKind) -> &'static str {
    match kind {
        AttachmentKind::Photo => "现场照片",
        AttachmentKind::InspectorSignature => "执法人员签名",
        AttachmentKind::RepresentativeSignature => "当事人签名",
        AttachmentKind::Document => "文件",
    }
}

fn none_if_empty(text: String) -> String {
    if text.is_empty() {
        "（无）".into()
    } else {
        text
    }
}

fn position(record: &SiteRecord) -> String {
    let Some(p) = record.record.position else { return "未取得".into() };
    let latitude = f64::from(p.latitude_micro) / 1e6;
    let longitude = f64::from(p.longitude_micro) / 1e6;
    let (ns, ew) = (if latitude >= 0.0 { "北纬" } else { "南纬" }, if longitude >= 0.0 { "东经" } else { "西经" });
    format!("{ns} {:.6}°，{ew} {:.6}°（精度约 {} 米）", latitude.abs(), longitude.abs(), p.accuracy_m)
}

/// A time as the bureau reads it: Beijing time (UTC+8, one zone for all of China, no summer
/// time), to the minute.
pub fn china_time(ms: u64) -> String {
    let beijing = time::UtcOffset::from_hms(8, 0, 0).expect("UTC+8 is an offset");
    let nanos = i128::from(ms) * 1_000_000;
    // A phone's clock gives the time made: one near the end of the calendar has no UTC+8 form.
    let beijing_time =
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok().and_then(|t| t.checked_to_offset(beijing));
    match beijing_time {
        Some(t) => {
            format!("{}年{:02}月{:02}日 {:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
        }
        None => format!("@{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_beijing_time() {
        // 2026-12-06T16:30:00Z is half past midnight on the 7th in Beijing.
        assert_eq!(china_time(1_796_574_600_000), "2026年12月07日 00:30");
        // 9999-12-31T20:00:00Z has no Beijing time within the calendar: printed, not a panic.
        assert_eq!(china_time(253_402_286_400_000), "@253402286400000ms");
    }
}
