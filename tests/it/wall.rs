//! The wall screen (`/wall`) in real headless Chromium, at 1920×1080 and 3840×2160: the stage
//! fits the screen without scrolling, an emergency flashes its bureau's tile and takes the top
//! band, personal data never reaches the DOM unmasked, and the page resumes after the node it
//! is connected to is killed. Screenshots are saved under the target directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use tests::browser::ChromeDriver;
use tests::{act, wait_until, TestCluster, COMMAND_TOKEN, LEADER_TOKEN, TIANHE_OPERATOR_TOKEN};

const PHONE: &str = "13812345678";
const ID_NUMBER: &str = "44010619900101123X";

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wall-screenshots");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

async fn connection(page: &Client) -> Result<String, String> {
    let status = page.find(Locator::Css("#w-conn")).await.map_err(|e| e.to_string())?;
    Ok(status.attr("data-state").await.map_err(|e| e.to_string())?.unwrap_or_default())
}

async fn wait_for_connection(page: &Client, state: &str) {
    wait_until(&format!("the wall is {state}"), Duration::from_secs(30), || async {
        let seen = connection(page).await?;
        (seen == state).then_some(()).ok_or(seen)
    })
    .await;
}

/// Sizes the window so that the page's viewport is `width`×`height` (the window's own frame
/// aside), as on a wall whose browser runs in kiosk mode.
async fn set_viewport(page: &Client, width: u32, height: u32) {
    let frame = script(page, "return [outerWidth - innerWidth, outerHeight - innerHeight]").await;
    let extra = |i: usize| frame[i].as_u64().unwrap_or(0) as u32;
    page.set_window_size(width + extra(0), height + extra(1)).await.expect("resize the window");
}

async fn sign_in(page: &Client, url: &str, token: &str, width: u32, height: u32) {
    page.goto(url).await.expect("open the wall");
    set_viewport(page, width, height).await;
    page.find(Locator::Css("#login-token")).await.expect("token field").send_keys(token).await.expect("type");
    page.find(Locator::Css("#login-button")).await.expect("button").click().await.expect("click");
    wait_for_connection(page, "live").await;
}

async fn script(page: &Client, code: &str) -> Value {
    page.execute(code, Vec::new()).await.unwrap_or_else(|e| panic!("{code}: {e}"))
}

/// The stage and every panel and tile lie inside the window, and nothing scrolls.
async fn assert_fits(page: &Client, what: &str, expected: (u32, u32)) {
    let fit = script(
        page,
        "const stage = document.getElementById('stage').getBoundingClientRect();
         const outside = [...document.querySelectorAll('.panel, .tile, .head')].filter((el) => {
           const r = el.getBoundingClientRect();
           return !(r.left >= stage.left - 1 && r.right <= stage.right + 1 && r.top >= stage.top - 1 && r.bottom <= stage.bottom + 1);
         }).map((el) => `${el.className} ${el.dataset.bureau || ''} ${JSON.stringify(el.getBoundingClientRect())}`);
         const inside = outside.length === 0;
         const root = document.documentElement;
         return {inside, outside, stage: [stage.left, stage.top, stage.right, stage.bottom], view: [innerWidth, innerHeight],
                 scroll: [root.scrollWidth, root.scrollHeight, document.body.scrollWidth, document.body.scrollHeight]};",
    )
    .await;
    let number = |v: &Value| v.as_f64().expect("a number");
    let (stage, view, scroll) = (&fit["stage"], &fit["view"], &fit["scroll"]);
    assert_eq!(fit["inside"], json!(true), "{what}: a panel lies outside the stage: {fit}");
    assert!(number(&stage[0]) >= -0.5 && number(&stage[1]) >= -0.5, "{what}: {fit}");
    assert_eq!(view, &json!([expected.0, expected.1]), "{what}: the viewport");
    assert!(
        number(&stage[2]) <= number(&view[0]) + 0.5 && number(&stage[3]) <= number(&view[1]) + 0.5,
        "{what}: {fit}"
    );
    for (i, limit) in [(0, &view[0]), (1, &view[1]), (2, &view[0]), (3, &view[1])] {
        assert!(number(&scroll[i]) <= number(limit) + 0.5, "{what}: the page scrolls: {fit}");
    }
    // Scaled as a whole: at 3840×2160 the stage fills the screen at twice the size.
    assert!(
        (number(&stage[2]) - number(&stage[0])) / number(&view[0]) > 0.99,
        "{what}: the stage fills the width: {fit}"
    );
}

async fn dom(page: &Client) -> String {
    script(page, "return document.documentElement.outerHTML").await.as_str().expect("html").to_owned()
}

async fn flashing_band(page: &Client) -> Result<(), String> {
    let state = script(
        page,
        "const tile = document.querySelector('.tile[data-bureau=\"440100\"]');
         return {flash: !!tile && tile.classList.contains('flash'), band: !document.getElementById('w-emergency').hidden,
                 text: document.getElementById('w-emergency-text').textContent};",
    )
    .await;
    (state["flash"] == json!(true) && state["band"] == json!(true)).then_some(()).ok_or(state.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_fits_flashes_an_emergency_masks_personal_data_and_resumes() {
    let mut cluster = TestCluster::start().await;
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let full_hd = driver.session(&profiles.path().join("fhd"), 1920, 1080).await;
    let ultra_hd = driver.session(&profiles.path().join("uhd"), 3840, 2160).await;
    async {
        sign_in(&full_hd, &cluster.url(2, "/wall"), COMMAND_TOKEN, 1920, 1080).await;
        sign_in(&ultra_hd, &cluster.url(3, "/wall"), LEADER_TOKEN, 3840, 2160).await;
        assert_fits(&full_hd, "1920×1080", (1920, 1080)).await;
        assert_fits(&ultra_hd, "3840×2160", (3840, 2160)).await;

        // An emergency for 天河区 (under 广州市's tile), its text holding a phone number and a
        // resident ID number, dispatched by the command centre.
        let mut body = tests::create_body(&format!("天河区某小区燃气泄漏 联系人{PHONE} 身份证{ID_NUMBER}"));
        body["kind"] = json!("emergency");
        body["severity"] = json!("critical");
        body["assignee_bureau"] = json!("440106");
        let task = cluster.create_task_as(1, COMMAND_TOKEN, &body).await;
        let (status, answer) = act(&cluster, 1, COMMAND_TOKEN, task.id, "dispatch", json!({})).await;
        assert_eq!(status, 200, "{answer}");
        let committed = Instant::now();
        for page in [&full_hd, &ultra_hd] {
            wait_until("the emergency flashes its tile and takes the band", Duration::from_secs(10), || {
                flashing_band(page)
            })
            .await;
        }
        println!("both walls showed the emergency {:?} after its dispatch was answered", committed.elapsed());
        for (page, name) in [(&full_hd, "wall-1920x1080.png"), (&ultra_hd, "wall-3840x2160.png")] {
            wait_until("the time of the last message in the header", Duration::from_secs(5), || async {
                let fresh = script(page, "return document.getElementById('w-fresh').textContent").await;
                fresh.as_str().is_some_and(|text| text.starts_with("数据更新于")).then_some(()).ok_or(fresh.to_string())
            })
            .await;
            let html = dom(page).await;
            assert!(!html.contains(PHONE) && !html.contains(ID_NUMBER), "personal data unmasked on the wall");
            assert!(html.contains("138****5678") && html.contains("440106********123X"), "the masked forms are shown");
            std::fs::write(artifacts().join(name), page.screenshot().await.expect("screenshot")).expect("save");
        }

        // The bureau acknowledges: the band goes.
        let (status, answer) = act(&cluster, 1, TIANHE_OPERATOR_TOKEN, task.id, "ack", json!({})).await;
        assert_eq!(status, 200, "{answer}");
        wait_until("the band leaves once the emergency is acknowledged", Duration::from_secs(10), || async {
            let hidden = script(&full_hd, "return document.getElementById('w-emergency').hidden").await;
            (hidden == json!(true)).then_some(()).ok_or(hidden.to_string())
        })
        .await;

        // The node the 1920×1080 wall is connected to dies: it reconnects to another and goes on.
        cluster.kill(2);
        wait_for_connection(&full_hd, "live").await;
        let later = cluster.create_task(1, "节点宕机之后的新线索", Some("440106")).await;
        wait_until("the task after the kill in the wall's feed", Duration::from_secs(20), || async {
            let feed = script(&full_hd, "return document.getElementById('w-newest').textContent").await;
            feed.as_str().is_some_and(|text| text.contains(&later.title)).then_some(()).ok_or(feed.to_string())
        })
        .await;

        // A wall three or four panels wide, or three by three: no panel or tile lies across a
        // seam between panels.
        let walls: [(&str, Vec<f64>, Vec<f64>); 3] = [
            ("3", vec![640.0, 1280.0], vec![]),
            ("4", vec![480.0, 960.0, 1440.0], vec![]),
            ("3x3", vec![640.0, 1280.0], vec![360.0, 720.0]),
        ];
        for (i, (seams, across, down)) in walls.iter().enumerate() {
            // Another origin than the first (node 1's): signed in once more, then kept.
            let url = cluster.url(1, &format!("/wall?seams={seams}"));
            if i == 0 {
                sign_in(&full_hd, &url, COMMAND_TOKEN, 1920, 1080).await;
            } else {
                full_hd.goto(&url).await.expect("open the wall");
                wait_for_connection(&full_hd, "live").await;
            }
            let boxes = script(
                &full_hd,
                "return [...document.querySelectorAll('.panel, .tile')].map((el) => {
                   const r = el.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; })",
            )
            .await;
            let boxes = boxes.as_array().expect("boxes");
            assert!(boxes.len() > 20, "{seams}: {boxes:?}");
            for pair in boxes {
                let edge = |i: usize| pair[i].as_f64().expect("a number");
                for seam in across {
                    assert!(!(edge(0) < *seam && edge(1) > *seam), "{seams}: a box {pair} across x = {seam}");
                }
                for seam in down {
                    assert!(!(edge(2) < *seam && edge(3) > *seam), "{seams}: a box {pair} across y = {seam}");
                }
            }
            std::fs::write(
                artifacts().join(format!("wall-seams-{seams}.png")),
                full_hd.screenshot().await.expect("shot"),
            )
            .expect("save");
        }

        // The node runs another build than the page was served by (as after an upgrade): at its
        // next look the wall reloads itself, and goes on live.
        script(
            &full_hd,
            "window.servedBefore = true; W.build = 'xietong 0.0.0 (an older build)'; checkBuild(); return 0",
        )
        .await;
        wait_until("the wall reloads for the node's new build", Duration::from_secs(20), || async {
            let before = script(&full_hd, "return window.servedBefore === true").await;
            (before == json!(false)).then_some(()).ok_or(before.to_string())
        })
        .await;
        wait_for_connection(&full_hd, "live").await;
    }
    .await;
    full_hd.close().await.ok();
    ultra_hd.close().await.ok();
}

/// Minutes the soak runs (`WALL_SOAK_MINUTES`; docs/benchmarks.md has the 30-minute figures).
fn soak_minutes() -> u64 {
    std::env::var("WALL_SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(30)
}

/// The JS heap of a wall left running under a steady feed of tasks (created, dispatched,
/// acknowledged, completed, closed: about three entries a second) stays bounded: sampled every
/// minute, it ends within twice its size after the first minute and below 64 MiB. Not in the
/// suite (it takes half an hour): `WALL_SOAK_MINUTES=30 cargo nextest run -p tests --run-ignored
/// only -E 'test(=wall::a_wall_left_running_keeps_its_heap_bounded)'`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of half an hour: run by hand, figures in docs/benchmarks.md"]
async fn a_wall_left_running_keeps_its_heap_bounded() {
    const HEAP_BYTES_MAX: f64 = 64.0 * 1024.0 * 1024.0;
    let cluster = TestCluster::start().await;
    let driver = ChromeDriver::start();
    let profiles = tempfile::tempdir().expect("profiles");
    let wall = driver.session(&profiles.path().join("soak"), 1920, 1080).await;
    sign_in(&wall, &cluster.url(1, "/wall"), COMMAND_TOKEN, 1920, 1080).await;
    let heap = || async {
        let used = script(&wall, "return performance.memory ? performance.memory.usedJSHeapSize : 0").await;
        used.as_f64().unwrap_or(0.0)
    };
    let minutes = soak_minutes();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::from_secs(60);
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        round += 1;
        let task = cluster.create_task(1, &format!("大屏长稳测试 {round}"), Some("440106")).await;
        for (token, action, body) in [
            (COMMAND_TOKEN, "dispatch", json!({})),
            (TIANHE_OPERATOR_TOKEN, "ack", json!({})),
            (TIANHE_OPERATOR_TOKEN, "complete", json!({"outcome": "reminded"})),
            (COMMAND_TOKEN, "close", json!({"note": "结案"})),
        ] {
            act(&cluster, 1, token, task.id, action, body).await;
        }
        if started.elapsed() >= next_sample {
            samples.push(heap().await);
            println!(
                "minute {}: JS heap {:.1} MiB after {round} tasks",
                samples.len(),
                samples.last().unwrap() / 1048576.0
            );
            next_sample += Duration::from_secs(60);
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert_eq!(connection(&wall).await.as_deref(), Ok("live"));
    let (first, last) = (samples.first().copied().unwrap_or(0.0), samples.last().copied().unwrap_or(0.0));
    assert!(last <= HEAP_BYTES_MAX, "the heap ended at {last} bytes");
    assert!(last <= 2.0 * first.max(1.0), "the heap grew from {first} to {last} bytes: {samples:?}");
    wall.close().await.ok();
}
