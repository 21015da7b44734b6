//! On-site records (issue 23) on a running group: photos and signatures uploaded through a
//! follower are kept on a majority before the record naming them commits; the record is made
//! against the checklist the node serves, once however often it is sent; its files are served
//! only to those who can see the task, and a node that lacked one fetches it and checks it.

use std::path::PathBuf;

use serde_json::{json, Value};
use tests::{TestCluster, COMMAND_TOKEN};

use crate::people::{call, drawn_inspection};

/// Bytes that open as `magic` says, and differ by `seed`.
fn file(magic: &[u8], seed: u8, len: usize) -> Vec<u8> {
    let mut bytes = magic.to_vec();
    bytes.extend((0..len).map(|n| (n as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0];
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// A PNG's signature and header (600 × 200, as a signature drawn on a phone).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x02\x58\0\0\0\xc8\x08\x06\0\0\0";

async fn upload(cluster: &TestCluster, node: u64, token: &str, bytes: Vec<u8>) -> (u16, Value) {
    let request = cluster.http.post(cluster.url(node, "/api/v1/attachments")).bearer_auth(token);
    let response = request.header("content-type", "image/jpeg").body(bytes).send().await.expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn attachments_dir(cluster: &TestCluster, node: u64) -> PathBuf {
    cluster.data_dir().join(format!("node{node}")).join("attachments")
}

fn held(cluster: &TestCluster, node: u64, sha256: &str) -> bool {
    attachments_dir(cluster, node).join(format!("{sha256}.bin")).exists()
}

fn kept_files(cluster: &TestCluster) -> usize {
    (1..=3).map(|node| tests::files_below(&attachments_dir(cluster, node)).len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_photos_and_signatures_is_kept_once_and_its_files_go_only_to_those_who_see_the_task() {
    let cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let inspection = drawn_inspection(&cluster, leader).await;
    let member = inspection.member_token.as_str();

    // A photo through a follower: on a majority of the nodes when the upload answers.
    let photo = file(JPEG, 1, 200_000);
    let (status, uploaded) = upload(&cluster, follower, member, photo.clone()).await;
    assert_eq!((status, uploaded["media_type"].as_str()), (201, Some("image/jpeg")), "{uploaded}");
    let photo_sha = uploaded["sha256"].as_str().expect("sha256").to_owned();
    assert!((1..=3).filter(|node| held(&cluster, *node, &photo_sha)).count() >= 2, "on a majority");
    // Refused with the JSON error, nothing stored: too large, not an image, empty.
    let before = kept_files(&cluster);
    let (status, body) = upload(&cluster, follower, member, file(JPEG, 2, 10 * 1024 * 1024)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("body_too_large")), "{body}");
    let (status, body) = upload(&cluster, follower, member, b"GIF89a....".to_vec()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{body}");
    let (status, body) = upload(&cluster, follower, member, Vec::new()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("empty_attachment")), "{body}");
    assert_eq!(kept_files(&cluster), before, "a refused file is stored nowhere");

    // Two inspectors' and the representative's signatures, drawn on the phone as PNG.
    let mut signatures = Vec::new();
    for (seed, kind, signer) in [
        (3, "inspector_signature", inspection.badges[0].as_str()),
        (4, "inspector_signature", inspection.badges[1].as_str()),
        (5, "representative_signature", "陈老板"),
    ] {
        let (status, body) = upload(&cluster, follower, member, file(PNG, seed, 3_000)).await;
        assert_eq!((status, body["media_type"].as_str()), (201, Some("image/png")), "{body}");
        signatures.push(json!({"sha256": body["sha256"], "kind": kind, "signer": signer}));
    }

    // The form: the inspection's items with their check points, named by the list's hash.
    let show = format!("/api/v1/tasks/{}", inspection.task);
    let checklist = cluster.get_json(follower, member, &format!("{show}/checklist")).await;
    let items: Vec<&str> =
        checklist["items"].as_array().expect("items").iter().filter_map(|i| i["code"].as_str()).collect();
    // The campaign's items that apply to the drawn firm's industry: A01 applies to every one.
    assert!(items.first() == Some(&"A01") && items.iter().all(|item| ["A01", "B01"].contains(item)), "{checklist}");
    let mut answers = Vec::new();
    for item in checklist["items"].as_array().expect("items") {
        for point in item["check_points"].as_array().expect("check points") {
            let answer = match point["answer"].as_str() {
                Some("conformity") => "conforms",
                Some("number") => "4",
                _ => "已核实",
            };
            answers.push(json!({"item": item["code"], "point": point["code"], "answer": answer}));
        }
    }
    assert!(answers.len() >= 3, "every check point of the items: {checklist}");
    let mut attachments = vec![json!({"sha256": photo_sha, "kind": "photo"})];
    attachments.extend(signatures);
    let record = json!({"record": {
        "checklist": checklist["checklist"], "answers": answers, "notes": "现场检查未发现问题。",
        "representative": {"name": "陈老板", "title": "负责人"},
        "position": {"latitude": 23.1291, "longitude": 113.2644, "accuracy_m": 12.0},
        "attachments": attachments, "made_at": "2026-12-06T10:15:00+08:00"}});

    // A record against another version of the checklist, or naming an unknown point, changes nothing.
    let version = cluster.get_json(leader, COMMAND_TOKEN, &show).await["version"].clone();
    let mut stale = record.clone();
    stale["record"]["checklist"] = json!("0".repeat(64));
    let path = format!("{show}/record_on_site");
    let (status, body) = call(&cluster, follower, "POST", Some(member), &path, stale).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("checklist_changed")), "{body}");
    let mut unknown = record.clone();
    unknown["record"]["answers"][0]["point"] = json!("Z99-01");
    let (status, body) = call(&cluster, follower, "POST", Some(member), &path, unknown).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unknown_check_point")), "{body}");
    assert_eq!(cluster.get_json(leader, COMMAND_TOKEN, &show).await["version"], version);
    // Someone who cannot see the task cannot record on it.
    let (status, _) = call(&cluster, follower, "POST", Some(&inspection.outsider_token), &path, record.clone()).await;
    assert_eq!(status, 404);

    // Sent twice with one Idempotency-Key (a phone resending after the network came back): one record.
    let mut answers_seen = Vec::new();
    for node in [follower, leader] {
        let response = cluster
            .http
            .post(cluster.url(node, &path))
            .bearer_auth(member)
            .header("idempotency-key", "record-1")
            .json(&record)
            .send()
            .await
            .expect("record");
        assert_eq!(response.status(), 200);
        answers_seen.push(response.json::<Value>().await.expect("task"));
    }
    assert_eq!(answers_seen[0], answers_seen[1], "the resend is answered as the first was");
    let task = cluster.get_json(leader, COMMAND_TOKEN, &show).await;
    let records = task["site_records"].as_array().expect("site records");
    assert_eq!(records.len(), 1, "{task}");
    let recorded = &records[0];
    assert_eq!((recorded["number"].as_u64(), recorded["complete"].as_bool()), (Some(1), Some(true)), "{recorded}");
    assert_eq!(recorded["digest"].as_str().map(str::len), Some(64));
    assert_eq!(recorded["answers"][0]["basis"].as_str().map(|b| b.starts_with('《')), Some(true), "{recorded}");
    let entry = task["timeline"].as_array().and_then(|t| t.last()).expect("an entry");
    assert_eq!(
        (entry["action"].as_str(), entry["actor_person"].as_u64()),
        (Some("record_on_site"), Some(inspection.team[0]))
    );
    assert_eq!(task["state"], "acknowledged", "a record made on site is its 签收");
    // And in the firm's enterprise file (企业档案), with its files.
    let uscc = task["subject"]["uscc"].as_str().expect("a drawn firm has its USCC");
    // Read on a follower after a write answered by the leader: a linearizable read waits until
    // the follower has applied it (a local read may not have yet).
    let enterprise_path = format!("/api/v1/entities/{uscc}?consistency=linearizable");
    let enterprise = cluster.get_json(follower, COMMAND_TOKEN, &enterprise_path).await;
    let filed =
        enterprise["tasks"].as_array().and_then(|tasks| tasks.iter().find(|t| t["id"] == task["id"])).expect("filed");
    assert_eq!(filed["site_records"][0]["digest"], recorded["digest"], "{enterprise}");
    assert_eq!(filed["site_records"][0]["attachments"].as_array().map(Vec::len), Some(4), "{enterprise}");

    // The result entered from the record: the inspection counts as completed with a complete
    // record in the response metrics.
    let result = json!({"outcome": "no_problem_found", "note": "依据现场检查记录"});
    let (status, body) = call(&cluster, follower, "POST", Some(member), &format!("{show}/complete"), result).await;
    assert_eq!(status, 200, "{body}");
    tests::wait_until("the record in the response metrics", std::time::Duration::from_secs(10), || async {
        let metrics = cluster.get_json(leader, COMMAND_TOKEN, "/api/v1/metrics/response?bureau=440000").await;
        match metrics["total"]["inspection_record_rate"].as_f64() {
            Some(1.0) => Ok(()),
            _ => Err(metrics["total"].to_string()),
        }
    })
    .await;

    // The printed document (现场检查笔录) from a follower: a PDF whose text holds the firm, the
    // answers and the record's digest (on every page); to no one who cannot see the task.
    let document = format!("{show}/site_records/1/document");
    let response =
        cluster.http.get(cluster.url(follower, &document)).bearer_auth(COMMAND_TOKEN).send().await.expect("pdf");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let pdf = response.bytes().await.expect("pdf bytes");
    assert!(pdf.starts_with(b"%PDF-"));
    let text = tests::pdf_text(&pdf);
    let digest = recorded["digest"].as_str().expect("digest");
    let firm = task["subject"]["name"].as_str().expect("firm name");
    for expected in ["现场检查笔录", firm, digest, "陈老板", "现场检查未发现问题。", "符合"] {
        assert!(text.contains(expected), "the document shows {expected:?}:\n{text}");
    }
    let pages = text.split('\u{c}').filter(|page| !page.trim().is_empty()).count();
    assert_eq!(text.matches(digest).count(), pages + 1, "in every page's footer and once in the body:\n{text}");
    assert_eq!(call(&cluster, leader, "GET", Some(&inspection.outsider_token), &document, Value::Null).await.0, 404);
    let (status, body) =
        call(&cluster, leader, "GET", Some(COMMAND_TOKEN), &format!("{show}/site_records/2/document"), Value::Null)
            .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) =
        call(&cluster, leader, "GET", Some(COMMAND_TOKEN), &format!("{show}/site_records/x/document"), Value::Null)
            .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")), "{body}");

    // The files: to the command centre from any node, byte for byte; a node that lost one
    // fetches it from a member and checks it.
    let lacking = (1..=3).find(|node| !held(&cluster, *node, &photo_sha)).unwrap_or_else(|| {
        std::fs::remove_file(attachments_dir(&cluster, follower).join(format!("{photo_sha}.bin"))).expect("remove");
        follower
    });
    for node in 1..=3 {
        let response = cluster
            .http
            .get(cluster.url(node, &format!("{show}/attachments/{photo_sha}")))
            .bearer_auth(COMMAND_TOKEN)
            .send()
            .await
            .expect("photo");
        assert_eq!(response.status(), 200, "node {node}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(response.bytes().await.expect("bytes").as_ref(), photo.as_slice(), "node {node}");
    }
    assert!(held(&cluster, lacking, &photo_sha), "fetched and kept by the node that lacked it");
    // Not to someone who cannot see the task, and nothing a record of it does not name.
    let photo_path = format!("{show}/attachments/{photo_sha}");
    assert_eq!(call(&cluster, leader, "GET", Some(&inspection.outsider_token), &photo_path, Value::Null).await.0, 404);
    let (status, _) = upload(&cluster, leader, member, file(JPEG, 9, 1_000)).await;
    assert_eq!(status, 201);
    let unnamed = format!("{show}/attachments/{}", "e".repeat(64));
    assert_eq!(call(&cluster, leader, "GET", Some(COMMAND_TOKEN), &unnamed, Value::Null).await.0, 404);
    cluster.wait_for_convergence().await;

    // A backup keeps the files its records name beside it; a group restored from it serves them.
    let backup = cluster.data_dir().join("440000.backup");
    let (addr, out) = (cluster.addr(follower).to_owned(), backup.to_string_lossy().into_owned());
    let header =
        tokio::task::spawn_blocking(move || tests::admin(&addr, &["backup", "--out", &out])).await.expect("backup");
    assert_eq!(header["attachment_files"], 4, "a photo and three signatures: {header}");
    let restored = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        restore_from: Some((backup, header["digest"].as_str().expect("digest").to_owned())),
        ..tests::ClusterOptions::default()
    })
    .await;
    let response = restored
        .http
        .get(restored.url(1, &photo_path))
        .bearer_auth(COMMAND_TOKEN)
        .send()
        .await
        .expect("the photo from the restored group");
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), photo.as_slice());
}

/// With `[attachment_store]` the group keeps attachments in an S3-compatible object store (a
/// real one: s3s-fs, which checks every request's signature) instead of on its members' disks:
/// an upload through a follower is an object when it answers, any node serves it and draws it
/// into the printed record, a damaged object is refused rather than served as evidence, a store
/// that is down refuses uploads with the JSON error, and a backup restored into a group with
/// its own store puts the files there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_kept_in_an_object_store_are_served_checked_and_restored() {
    let mut s3 = tests::s3_server::S3Server::start().await;
    let config_dir = tempfile::tempdir().expect("a temp dir");
    let prefix = "groups/440000/attachments";
    let mut cluster = TestCluster::start_with(tests::ClusterOptions {
        extra_sections_toml: Some(s3.attachment_store_toml(config_dir.path(), prefix)),
        ..tests::ClusterOptions::default()
    })
    .await;
    let leader = cluster.wait_for_leader().await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let inspection = drawn_inspection(&cluster, leader).await;
    let member = inspection.member_token.as_str();

    let photo = file(JPEG, 7, 300_000);
    let (status, uploaded) = upload(&cluster, follower, member, photo.clone()).await;
    assert_eq!(status, 201, "{uploaded}");
    let photo_sha = uploaded["sha256"].as_str().expect("sha256").to_owned();
    let object = s3.object_file(&format!("{prefix}/{photo_sha}"));
    assert_eq!(std::fs::read(&object).expect("the object in the store"), photo, "stored whole");
    assert_eq!(kept_files(&cluster), 0, "no node keeps attachments on its disk");

    let show = format!("/api/v1/tasks/{}", inspection.task);
    let checklist = cluster.get_json(follower, member, &format!("{show}/checklist")).await;
    let record = json!({"record": {"checklist": checklist["checklist"], "notes": "货架商品均有标价。",
        "attachments": [{"sha256": photo_sha, "kind": "photo"}], "made_at": "2026-12-06T15:00:00+08:00"}});
    let path = format!("{show}/record_on_site");
    // A member away does not stop records: it said, while it was up, that it reads them.
    let away = (1..=3).find(|id| *id != leader && *id != follower).expect("a third node");
    cluster.kill(away);
    let (status, body) = call(&cluster, follower, "POST", Some(member), &path, record).await;
    assert_eq!(status, 200, "{body}");
    cluster.restart(away);
    cluster.wait_for_convergence().await;
    // A record may name only a file the store holds.
    let unknown = json!({"record": {"checklist": checklist["checklist"],
        "attachments": [{"sha256": "a".repeat(64), "kind": "photo"}], "made_at": "2026-12-06T15:05:00+08:00"}});
    let (status, body) = call(&cluster, leader, "POST", Some(member), &path, unknown).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("attachment_missing")), "{body}");

    let photo_path = format!("{show}/attachments/{photo_sha}");
    for node in 1..=3 {
        let response =
            cluster.http.get(cluster.url(node, &photo_path)).bearer_auth(COMMAND_TOKEN).send().await.expect("get");
        assert_eq!(response.status(), 200, "node {node}");
        assert_eq!(response.bytes().await.expect("bytes").as_ref(), photo.as_slice(), "node {node}");
    }
    let document = format!("{show}/site_records/1/document");
    let (status, _) = call(&cluster, follower, "GET", Some(COMMAND_TOKEN), &document, Value::Null).await;
    assert_eq!(status, 200, "the printed record, its photo from the store");

    // A backup takes the files from the store; a group restored from it with a store of its
    // own (another prefix) finds them there.
    cluster.wait_for_convergence().await;
    let backup = cluster.data_dir().join("440000.backup");
    let (addr, out) = (cluster.addr(leader).to_owned(), backup.to_string_lossy().into_owned());
    let header =
        tokio::task::spawn_blocking(move || tests::admin(&addr, &["backup", "--out", &out])).await.expect("backup");
    assert_eq!(header["attachment_files"], 1, "{header}");
    let restored_prefix = "restored/440000/attachments";
    let restored = TestCluster::start_with(tests::ClusterOptions {
        size: 1,
        restore_from: Some((backup, header["digest"].as_str().expect("digest").to_owned())),
        extra_sections_toml: Some(s3.attachment_store_toml(config_dir.path(), restored_prefix)),
        ..tests::ClusterOptions::default()
    })
    .await;
    assert_eq!(std::fs::read(s3.object_file(&format!("{restored_prefix}/{photo_sha}"))).ok(), Some(photo.clone()));
    let response =
        restored.http.get(restored.url(1, &photo_path)).bearer_auth(COMMAND_TOKEN).send().await.expect("get");
    assert_eq!(response.status(), 200);

    // An object changed in the bucket is not evidence: refused, not served.
    std::fs::write(&object, file(JPEG, 8, 300_000)).expect("damage the object");
    let (status, body) = call(&cluster, leader, "GET", Some(COMMAND_TOKEN), &photo_path, Value::Null).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("attachment_damaged")), "{body}");

    // The store down: an upload is refused with the JSON error, and nothing is kept anywhere.
    s3.stop();
    let (status, body) = upload(&cluster, follower, member, file(JPEG, 9, 1_000)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("attachment_store_unavailable")), "{body}");
    assert_eq!(kept_files(&cluster), 0);
}

/// A PNG is decoded whole wherever it is drawn: one whose header claims a million pixels
/// square (a hundred bytes that would be a 4 TB allocation) is refused at upload with the JSON
/// error and stores nothing, and one that is kept anyway (from before the check, or put beside
/// a node's files) is listed in the printed record, not drawn: the node serving it lives on. A
/// record made by a phone whose clock says the year 9999 prints too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_claiming_a_huge_size_is_refused_and_never_decoded() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..tests::ClusterOptions::default() }).await;
    cluster.wait_for_leader().await;
    let inspection = drawn_inspection(&cluster, 1).await;
    let member = inspection.member_token.as_str();
    let mut bomb = PNG_SIGNATURE.to_vec();
    bomb.extend(b"\0\0\0\rIHDR\x00\x10\x00\x00\x00\x10\x00\x00\x08\x06\0\0\0");
    bomb.extend(file(b"\0\0\0\x10IDAT", 3, 64));
    let (status, body) = upload(&cluster, 1, member, bomb.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("image_too_large")), "{body}");
    assert_eq!(kept_files(&cluster), 0, "nothing stored");

    let bomb_sha = draw::directory::sha256_hex(&bomb);
    std::fs::write(attachments_dir(&cluster, 1).join(format!("{bomb_sha}.bin")), &bomb).expect("kept anyway");
    let show = format!("/api/v1/tasks/{}", inspection.task);
    let checklist = cluster.get_json(1, member, &format!("{show}/checklist")).await;
    let record = json!({"record": {"checklist": checklist["checklist"], "notes": "",
        "representative": {"name": "陈老板", "title": ""},
        "attachments": [{"sha256": bomb_sha, "kind": "representative_signature", "signer": "陈老板"}],
        "made_at": "9999-12-31T20:00:00Z"}});
    let (status, body) = call(&cluster, 1, "POST", Some(member), &format!("{show}/record_on_site"), record).await;
    assert_eq!(status, 200, "{body}");
    let response = cluster
        .http
        .get(cluster.url(1, &format!("{show}/site_records/1/document")))
        .bearer_auth(COMMAND_TOKEN)
        .send()
        .await
        .expect("the document");
    assert_eq!(response.status(), 200);
    let pdf = response.bytes().await.expect("pdf");
    let text = tests::pdf_text(&pdf);
    assert_eq!(tests::pdf_images(&pdf), 0, "not drawn");
    assert!(text.contains("当事人签名（陈老板）") && text.matches(&bomb_sha).count() == 2, "listed twice:\n{text}");
    assert_eq!(cluster.get_json(1, COMMAND_TOKEN, &show).await["site_records"][0]["number"], 1, "the node lives on");
}
