//! People on a running group: accounts made by the command centre, signed in on any node with a
//! session token, acting under their own name; a disabled account's sessions and consoles end
//! within a second on every node; sign-in refuses unknown, wrong and disabled alike.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::console::ConsoleClient;
use tests::{wait_until, TestCluster, COMMAND_TOKEN, TIANHE_OPERATOR_TOKEN};

pub(crate) async fn call(
    cluster: &TestCluster,
    node: u64,
    method: &str,
    token: Option<&str>,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let url = cluster.url(node, path);
    let request = match method {
        "GET" => cluster.http.get(url),
        "DELETE" => cluster.http.delete(url),
        _ => cluster.http.post(url).json(&body),
    };
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.expect(path);
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn sign_in(cluster: &TestCluster, node: u64, login: &str, password: &str) -> (u16, Value) {
    call(cluster, node, "POST", None, "/api/v1/sessions", json!({"login": login, "password": password})).await
}

/// 五山 station of 天河 with a head and two handlers; answers the station's code.
async fn station_with_people(cluster: &TestCluster, node: u64) -> String {
    let station = json!({"county": "440106", "number": 4, "name": "五山市场监管所"});
    let (status, body) = call(cluster, node, "POST", Some(COMMAND_TOKEN), "/api/v1/stations", station).await;
    assert_eq!(status, 201, "{body}");
    for (login, name, roles) in [
        ("wushan.head", "王所长", json!(["head"])),
        ("wushan.li", "李明", json!(["handler"])),
        ("wushan.zhao", "赵强", json!(["handler"])),
    ] {
        let person = json!({"login": login, "name": name, "unit": "440106004", "roles": roles, "password": format!("Demo-{login}")});
        let (status, body) = call(cluster, node, "POST", Some(COMMAND_TOKEN), "/api/v1/people", person).await;
        assert_eq!(status, 201, "{login}: {body}");
        assert!(body.get("password_phc").is_none() && !body.to_string().contains("argon2"), "no hash leaves: {body}");
    }
    "440106004".into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_on_any_node_acts_by_name_and_a_disabled_account_ends_everywhere_within_a_second() {
    let cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let station = station_with_people(&cluster, followers[0]).await;

    // Signed in on each node (each checks the password against the account it holds).
    let mut tokens = Vec::new();
    for node in 1..=3 {
        let (status, session) = wait_until("the account on every node", Duration::from_secs(10), || async {
            match sign_in(&cluster, node, "wushan.li", "Demo-wushan.li").await {
                (201, body) => Ok((201, body)),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        assert_eq!(status, 201);
        assert_eq!(session["person"]["unit"], station);
        tokens.push(session["token"].as_str().expect("a token").to_owned());
    }
    let me = cluster.get_json(followers[1], &tokens[0], "/api/v1/me").await;
    assert_eq!((me["role"].as_str(), me["bureau"].as_str()), (Some("operator"), Some(station.as_str())), "{me}");
    assert_eq!(me["person"]["login"], "wushan.li");

    // A task dispatched to the station: the handler acknowledges it on a follower, by name.
    let task = cluster.create_task(leader, "五山街无照经营", None).await;
    let dispatch = json!({"assignee_bureau": station, "version": task.version});
    let (status, _) =
        call(&cluster, leader, "POST", Some(COMMAND_TOKEN), &format!("/api/v1/tasks/{}/dispatch", task.id), dispatch)
            .await;
    assert_eq!(status, 200);
    let (status, acked) =
        call(&cluster, followers[1], "POST", Some(&tokens[2]), &format!("/api/v1/tasks/{}/ack", task.id), json!({}))
            .await;
    assert_eq!(status, 200, "{acked}");
    let entry = acked["timeline"].as_array().and_then(|t| t.last()).expect("an entry").clone();
    assert_eq!((entry["actor_name"].as_str(), entry["actor_person"].as_u64()), (Some("李明"), Some(2)), "{entry}");
    // A person never acts on another unit's task, and sees only their unit's.
    let other = cluster.create_task(leader, "天河区的任务", Some("440106")).await;
    let (status, _) =
        call(&cluster, leader, "POST", Some(&tokens[0]), &format!("/api/v1/tasks/{}/ack", other.id), json!({})).await;
    assert_eq!(status, 404);
    // The county's operator sees its station's task (200) and does not act on it (403).
    let path = format!("/api/v1/tasks/{}", task.id);
    assert_eq!(call(&cluster, leader, "GET", Some(TIANHE_OPERATOR_TOKEN), &path, Value::Null).await.0, 200);
    let feedback = format!("/api/v1/tasks/{}/feedback", task.id);
    let (status, _) =
        call(&cluster, leader, "POST", Some(TIANHE_OPERATOR_TOKEN), &feedback, json!({"note": "x"})).await;
    assert_eq!(status, 403, "the county's operator does not act on its station's task");
    // A handler does not manage accounts; a forged token is refused.
    let person = json!({"login": "wushan.x", "name": "某人", "unit": station, "roles": ["handler"], "password": "Demo-wushan.x"});
    assert_eq!(call(&cluster, leader, "POST", Some(&tokens[0]), "/api/v1/people", person).await.0, 403);
    let forged = format!("{}x", &tokens[0][..tokens[0].len() - 1]);
    assert_eq!(call(&cluster, leader, "GET", Some(&forged), "/api/v1/me", Value::Null).await.0, 401);

    // Consoles with the session on a follower and on the leader.
    let mut consoles = Vec::new();
    for node in [followers[0], leader] {
        let mut console = ConsoleClient::connect(cluster.addr(node), &tokens[0], None, None).await;
        console.expect("welcome").await;
        console.expect("snapshot").await;
        consoles.push(console);
    }

    // Disabled by the command centre: every session and console ends within a second.
    let (status, disabled) =
        call(&cluster, followers[1], "POST", Some(COMMAND_TOKEN), "/api/v1/people/2/disable", json!({"note": "调离"}))
            .await;
    assert_eq!(status, 200, "{disabled}");
    let since = Instant::now();
    for node in 1..=3 {
        wait_until("the session refused", Duration::from_secs(1), || async {
            match call(&cluster, node, "GET", Some(&tokens[0]), "/api/v1/me", Value::Null).await.0 {
                401 => Ok(()),
                other => Err(format!("node {node} answers {other}")),
            }
        })
        .await;
    }
    for mut console in consoles {
        let ended = console.next(Duration::from_secs(1)).await;
        if let Some(message) = ended {
            assert_eq!(
                (message["type"].as_str(), message["code"].as_str()),
                (Some("error"), Some("unauthorized")),
                "{message}"
            );
            assert!(console.next(Duration::from_secs(1)).await.is_none(), "closed after the error");
        }
    }
    assert!(since.elapsed() < Duration::from_secs(2), "ended within a second on every node: {:?}", since.elapsed());
    // Sign-in refuses a disabled account as it does a wrong password or an unknown login.
    for (login, password) in
        [("wushan.li", "Demo-wushan.li"), ("wushan.zhao", "wrong password"), ("nobody.here", "whatever-long")]
    {
        let (status, body) = sign_in(&cluster, leader, login, password).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{login}: {body}");
    }
    // Enabled again, the old sessions stay ended (the epoch moved); a new sign-in works.
    let (status, _) = call(&cluster, leader, "POST", Some(COMMAND_TOKEN), "/api/v1/people/2/enable", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(call(&cluster, leader, "GET", Some(&tokens[1]), "/api/v1/me", Value::Null).await.0, 401);
    let (status, session) = sign_in(&cluster, leader, "wushan.li", "Demo-wushan.li").await;
    assert_eq!(status, 201);
    // Signed out through a follower (relayed to the leader): every session of theirs ends.
    let token = session["token"].as_str().expect("token").to_owned();
    let (status, body) =
        call(&cluster, followers[0], "POST", Some(&token), "/api/v1/sessions/sign_out", json!({})).await;
    assert_eq!(status, 204, "{body}");
    wait_until("signed out everywhere", Duration::from_secs(1), || async {
        match call(&cluster, leader, "GET", Some(&token), "/api/v1/me", Value::Null).await.0 {
            401 => Ok(()),
            other => Err(format!("{other}")),
        }
    })
    .await;
    cluster.wait_for_convergence().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_changes_their_password_renews_and_signs_out_everywhere() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    station_with_people(&cluster, 1).await;
    let (_, session) = sign_in(&cluster, 1, "wushan.head", "Demo-wushan.head").await;
    let token = session["token"].as_str().expect("token").to_owned();
    let (status, renewed) = call(&cluster, 1, "POST", Some(&token), "/api/v1/sessions/renew", json!({})).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["renew_until"], session["renew_until"], "a renewal keeps the limit");
    let renewed_token = renewed["token"].as_str().expect("token").to_owned();
    // Too short, or the wrong current one: refused, nothing changes.
    let (status, _) = call(
        &cluster,
        1,
        "POST",
        Some(&token),
        "/api/v1/me/password",
        json!({"current": "Demo-wushan.head", "new": "short"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &cluster,
        1,
        "POST",
        Some(&token),
        "/api/v1/me/password",
        json!({"current": "nope-nope-nope", "new": "a new long password"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &cluster,
        1,
        "POST",
        Some(&token),
        "/api/v1/me/password",
        json!({"current": "Demo-wushan.head", "new": "a new long password"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(&cluster, 1, "GET", Some(&renewed_token), "/api/v1/me", Value::Null).await.0, 401, "sessions end");
    assert_eq!(sign_in(&cluster, 1, "wushan.head", "Demo-wushan.head").await.0, 401);
    let (_, session) = sign_in(&cluster, 1, "wushan.head", "a new long password").await;
    let token = session["token"].as_str().expect("token").to_owned();
    let (_, second) = sign_in(&cluster, 1, "wushan.head", "a new long password").await;
    let (status, _) = call(&cluster, 1, "POST", Some(&token), "/api/v1/sessions/sign_out", json!({})).await;
    assert_eq!(status, 204);
    let second = second["token"].as_str().expect("token");
    assert_eq!(call(&cluster, 1, "GET", Some(second), "/api/v1/me", Value::Null).await.0, 401, "every session ends");
    // The history names who changed what, never a hash.
    let account = cluster.get_json(1, COMMAND_TOKEN, "/api/v1/people/1").await;
    let changes: Vec<&str> =
        account["history"].as_array().expect("history").iter().filter_map(|e| e["change"].as_str()).collect();
    assert_eq!(changes, ["created", "password_set"], "{account}");
    let listed = cluster.get_json(1, COMMAND_TOKEN, "/api/v1/people?unit=440106&include_disabled=true").await;
    assert_eq!(listed["people"].as_array().map(Vec::len), Some(3));
}

/// Two handlers claim the same task at once through two different nodes, twenty times: each
/// time exactly one wins and the other learns it lost (409), and the task has one lead. The
/// county hands a task down to the station and its head assigns; "my tasks" lists each
/// handler's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_claims_on_two_nodes_one_wins_and_the_other_gets_409() {
    let cluster = TestCluster::start().await;
    let leader = cluster.wait_for_leader().await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let station = station_with_people(&cluster, leader).await;
    let mut tokens = Vec::new();
    for (login, node) in [("wushan.li", followers[0]), ("wushan.zhao", followers[1])] {
        let (status, session) = wait_until("signed in", Duration::from_secs(10), || async {
            match sign_in(&cluster, node, login, &format!("Demo-{login}")).await {
                (201, body) => Ok((201, body)),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        assert_eq!(status, 201);
        tokens.push(session["token"].as_str().expect("token").to_owned());
    }
    let mut wins = [0, 0];
    for round in 0..20 {
        let task = cluster.create_task(leader, &format!("认领竞争{round}"), Some(&station)).await;
        let path = format!("/api/v1/tasks/{}/claim", task.id);
        let claims = tokens.iter().zip(&followers).map(|(token, node)| {
            let path = path.clone();
            let cluster = &cluster;
            async move { call(cluster, *node, "POST", Some(token), &path, json!({})).await }
        });
        let answers = futures_util::future::join_all(claims).await;
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        assert!(statuses.contains(&200) && statuses.contains(&409), "round {round}: {answers:?}");
        let lost = answers.iter().find(|(status, _)| *status == 409).expect("a loser");
        assert_eq!(lost.1["error"]["code"], "already_claimed", "{:?}", lost.1);
        let winner = statuses.iter().position(|s| *s == 200).expect("a winner");
        wins[winner] += 1;
        let shown = cluster.get_json(leader, COMMAND_TOKEN, &format!("/api/v1/tasks/{}", task.id)).await;
        let claims = shown["timeline"].as_array().expect("timeline").iter().filter(|e| e["action"] == "claim").count();
        assert_eq!(claims, 1, "one claim recorded: {shown}");
        assert_eq!(shown["state"], "acknowledged");
    }
    // "My tasks": each handler's own, and no others.
    for (token, won) in tokens.iter().zip(wins) {
        let mine = cluster.get_json(followers[0], token, "/api/v1/tasks?mine=true&limit=100").await;
        let listed = mine["tasks"].as_array().expect("tasks").len();
        assert!(listed <= won && listed + 2 >= won, "{listed} listed, {won} won (the follower may trail by an entry)");
    }
    // The county hands a task down; the station's head assigns it; its handler works it.
    let task = cluster.create_task(leader, "下派给五山所", Some("440106")).await;
    let hand_down = json!({"unit": station});
    let (status, body) =
        call(&cluster, leader, "POST", Some(COMMAND_TOKEN), &format!("/api/v1/tasks/{}/hand_down", task.id), hand_down)
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["assignee_bureau"].as_str(), body["handling_unit"].as_str()),
        (Some("440106"), Some(station.as_str()))
    );
    let (_, head) = sign_in(&cluster, leader, "wushan.head", "Demo-wushan.head").await;
    let head = head["token"].as_str().expect("token");
    let assign = json!({"lead": 3, "supporting": [2]});
    let (status, body) =
        call(&cluster, leader, "POST", Some(head), &format!("/api/v1/tasks/{}/assign", task.id), assign).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["lead_handler"]["name"].as_str(), body["supporting_handlers"][0]["name"].as_str()),
        (Some("赵强"), Some("李明"))
    );
    let (status, _) = call(
        &cluster,
        leader,
        "POST",
        Some(&tokens[0]),
        &format!("/api/v1/tasks/{}/complete", task.id),
        json!({"outcome": "reminded"}),
    )
    .await;
    assert_eq!(status, 403, "a supporting handler does not complete");
    let (status, body) = call(
        &cluster,
        leader,
        "POST",
        Some(&tokens[1]),
        &format!("/api/v1/tasks/{}/complete", task.id),
        json!({"outcome": "reminded"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let complete = body["timeline"].as_array().and_then(|t| t.last()).expect("entry").clone();
    assert_eq!(complete["handler"]["name"], "赵强", "{complete}");
    cluster.wait_for_convergence().await;
}

/// A drawn inspection of Tianhe whose team are people: its task, the drawn team's person
/// numbers and inspector badges, and sessions of a member of the team and of an inspector of
/// the same station who was not drawn.
pub(crate) struct DrawnInspection {
    pub task: u64,
    pub team: Vec<u64>,
    pub badges: Vec<String>,
    pub member_token: String,
    /// The team member's login; the password is `Demo-<login>`.
    pub member_login: String,
    pub outsider_token: String,
}

/// Inspectors of Tianhe's directory linked to accounts at its 五山 station, a campaign planned
/// by Guangzhou and drawn by the province, written through `node`.
pub(crate) async fn drawn_inspection(cluster: &TestCluster, node: u64) -> DrawnInspection {
    let region = ledger::BureauCode::parse_compiled("440106").expect("Tianhe");
    let (status, body) = cluster
        .post_csv(node, COMMAND_TOKEN, "/api/v1/directories/entities", draw::generate::generate(2_000, region, 7))
        .await;
    assert_eq!(status, 201, "{body}");
    let station = station_with_people(cluster, node).await;
    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": "440106",
                               "expertise": ["food", "registration"], "qualified": true});
        let (status, body) = call(cluster, node, "POST", Some(COMMAND_TOKEN), "/api/v1/inspectors", inspector).await;
        assert_eq!(status, 201, "{body}");
        let person = json!({"login": format!("insp{n}"), "name": format!("执法人员{n}"), "unit": station,
                            "roles": ["handler"], "password": format!("Demo-insp{n}")});
        let (status, body) = call(cluster, node, "POST", Some(COMMAND_TOKEN), "/api/v1/people", person).await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_u64().expect("id");
        let link = json!({"inspector": format!("TH{n:03}")});
        let (status, body) =
            call(cluster, node, "POST", Some(COMMAND_TOKEN), &format!("/api/v1/people/{id}/inspector"), link).await;
        assert_eq!((status, body["inspector"].as_str()), (200, Some(format!("TH{n:03}").as_str())), "{body}");
    }
    // One person per inspector, for good.
    let (status, body) =
        call(cluster, node, "POST", Some(COMMAND_TOKEN), "/api/v1/people/2/inspector", json!({"inspector": "TH001"}))
            .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("inspector_linked")), "{body}");
    // Planned by Guangzhou, drawn by the province (a second person).
    let plan = json!({"name": "天河区食品经营抽查", "items": ["A01", "B01"], "scope": {"region": "440106"}, "targeted": false,
                      "ratios_percent": {"high": 20, "normal": 5, "low": 3}, "inspector_mode": {"mode": "whole_bureau"},
                      "inspectors_per_inspection": 2});
    let (status, campaign) = call(cluster, node, "POST", Some("demo-gz-command-0003"), "/api/v1/campaigns", plan).await;
    assert_eq!(status, 201, "{campaign}");
    let path = format!("/api/v1/campaigns/{}/draw", campaign["id"]);
    let (status, drawn) = call(cluster, node, "POST", Some(COMMAND_TOKEN), &path, json!({"beacon": "20261206"})).await;
    assert_eq!(status, 201, "{drawn}");
    let task_id = drawn["draw"]["tasks"][0].as_u64().expect("an inspection");
    let task = cluster.get_json(node, COMMAND_TOKEN, &format!("/api/v1/tasks/{task_id}")).await;
    let team: Vec<u64> = task["team"].as_array().expect("team").iter().filter_map(|m| m["id"].as_u64()).collect();
    assert_eq!(team.len(), 2, "{task}");
    let logins: Vec<String> = team.iter().map(|id| format!("insp{}", id - 3)).collect();
    let outsider = (1..=4).map(|n| format!("insp{n}")).find(|login| !logins.contains(login)).expect("one not drawn");
    let (_, member) = sign_in(cluster, node, &logins[0], &format!("Demo-{}", logins[0])).await;
    let member = member["token"].as_str().expect("token").to_owned();
    let (_, other) = sign_in(cluster, node, &outsider, &format!("Demo-{outsider}")).await;
    let other = other["token"].as_str().expect("token").to_owned();
    let badges: Vec<String> = task["inspection"]["inspectors"]
        .as_array()
        .expect("the drawn inspectors")
        .iter()
        .filter_map(|badge| badge.as_str().map(str::to_owned))
        .collect();
    let member_login = logins[0].clone();
    DrawnInspection { task: task_id, team, badges, member_token: member, member_login, outsider_token: other }
}

/// 谁抽查、谁录入 with people: a drawn inspection of the county shows to its team as their own,
/// and only a member of the team enters its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drawn_inspection_shows_to_its_team_and_only_the_team_enters_its_result() {
    let cluster = TestCluster::start_with(tests::ClusterOptions { size: 1, ..Default::default() }).await;
    let DrawnInspection { task: task_id, team, member_token: member, outsider_token: other, .. } =
        drawn_inspection(&cluster, 1).await;
    // The team member's own; the station's other people do not see the county's inspection.
    // Every task of theirs on one page: the draw gives a member of the team dozens.
    let mine = cluster.get_json(1, &member, "/api/v1/tasks?mine=true&limit=500").await;
    assert!(mine["tasks"].as_array().expect("tasks").iter().any(|t| t["id"] == task_id), "{mine}");
    let show = format!("/api/v1/tasks/{task_id}");
    assert_eq!(call(&cluster, 1, "GET", Some(&other), &show, Value::Null).await.0, 404);
    // The team signs for it and enters the result; a handler off the team cannot.
    let (status, body) = call(&cluster, 1, "POST", Some(&member), &format!("{show}/ack"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let result = json!({"outcome": "no_problem_found", "note": "现场检查未发现问题"});
    assert_eq!(call(&cluster, 1, "POST", Some(&other), &format!("{show}/complete"), result.clone()).await.0, 404);
    let (status, body) = call(&cluster, 1, "POST", Some(&member), &format!("{show}/complete"), result).await;
    assert_eq!(status, 200, "{body}");
    let entry = body["timeline"].as_array().and_then(|t| t.last()).expect("entry").clone();
    assert_eq!(
        (entry["action"].as_str(), entry["actor_person"].as_u64()),
        (Some("complete"), Some(team[0])),
        "{entry}"
    );
}
