//! The annual random-inspection plan through real nodes: a city proposes, the province takes
//! the proposal as a batch and adds its own, publishes, adjusts with a reason and withdraws a
//! batch; campaigns carry out a batch and its progress shows per city; the public side shows
//! the published plan only, without proposals or who did what.

use serde_json::{json, Value};
use tests::{ClusterOptions, TestCluster, COMMAND_TOKEN};

const GUANGZHOU: &str = "demo-gz-command-0003";
const SHENZHEN: &str = "demo-sz-command-0004";

async fn call(cluster: &TestCluster, token: Option<&str>, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = cluster.url(1, path);
    let mut request = match &body {
        Some(body) => cluster.http.post(url).json(body),
        None => cluster.http.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn batch(name: &str, scope: &str, entities: u64) -> Value {
    json!({"name": name, "items": ["B01", "F01"], "scope": scope, "entities": entities,
           "starts": "2027-03-01", "ends": "2027-06-30"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_plans_its_year_from_city_proposals_and_campaigns_carry_it_out() {
    let cluster = TestCluster::start_with(ClusterOptions { size: 1, ..ClusterOptions::default() }).await;

    // Guangzhou proposes for its own city; not for Shenzhen; it sets no batch itself.
    let mut proposal = batch("广州市餐饮单位抽查", "440100", 3_000);
    proposal["reason"] = json!("本市春节前后餐饮重点");
    let (status, proposed) =
        call(&cluster, Some(GUANGZHOU), "/api/v1/annual-plans/2027/proposals", Some(proposal)).await;
    assert_eq!((status, proposed["version"]["change"].as_str()), (201, Some("proposed")), "{proposed}");
    let (status, _) =
        call(&cluster, Some(GUANGZHOU), "/api/v1/annual-plans/2027/proposals", Some(batch("深圳", "440300", 5))).await;
    assert_eq!(status, 403);
    let (status, _) =
        call(&cluster, Some(GUANGZHOU), "/api/v1/annual-plans/2027/batches", Some(batch("x", "440100", 5))).await;
    assert_eq!(status, 403);
    // Bad batches change nothing.
    let mut late = batch("晚", "440100", 5);
    late["ends"] = json!("2028-01-31");
    for (body, code) in [(late, "invalid_field"), (batch("零", "440100", 0), "invalid_field")] {
        let (status, answer) =
            call(&cluster, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/batches", Some(body)).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some(code)), "{answer}");
    }
    let (status, _) = call(&cluster, Some(COMMAND_TOKEN), "/api/v1/annual-plans/20x7", None).await;
    assert_eq!(status, 400);
    // Zhejiang's plan is kept by Zhejiang's group, not by this one.
    let (status, answer) = call(
        &cluster,
        Some("demo-zj-command-0011"),
        "/api/v1/annual-plans/2027/batches",
        Some(batch("杭州", "330100", 5)),
    )
    .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("plan_elsewhere")), "{answer}");

    // The province takes the proposal as batch 1 and adds its own; the public side has nothing
    // before publication.
    let mut taken = batch("广州市餐饮单位抽查", "440100", 3_000);
    taken["from_proposal"] = json!(1);
    let (status, set) = call(&cluster, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/batches", Some(taken)).await;
    assert_eq!((status, set["version"]["change"].as_str()), (201, Some("batch_added")), "{set}");
    let (status, _) = call(
        &cluster,
        Some(COMMAND_TOKEN),
        "/api/v1/annual-plans/2027/batches",
        Some(batch("全省价格行为抽查", "440000", 90_000)),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(&cluster, None, "/public/v1/annual-plans/440000/2027", None).await;
    assert_eq!(status, 404, "not published yet");
    let (status, published) =
        call(&cluster, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/publish", Some(json!({}))).await;
    assert_eq!(status, 200, "{published}");
    let (status, public) = call(&cluster, None, "/public/v1/annual-plans/440000/2027", None).await;
    assert_eq!((status, public["batches"].as_array().map(Vec::len)), (200, Some(2)), "{public}");
    assert!(public["adjusted_at"].is_null());
    let text = public.to_string();
    assert!(!text.contains("gz-command") && !text.contains("春节前后"), "no people or notes in public: {text}");

    // After publication an adjustment says why; a withdrawal too.
    let (status, answer) = call(
        &cluster,
        Some(COMMAND_TOKEN),
        "/api/v1/annual-plans/2027/batches/1",
        Some(batch("广州市餐饮单位抽查", "440100", 4_000)),
    )
    .await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_field")), "{answer}");
    let mut adjusted = batch("广州市餐饮单位抽查", "440100", 4_000);
    adjusted["reason"] = json!("食品安全形势变化，增加抽查户数");
    let (status, answer) =
        call(&cluster, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/batches/1", Some(adjusted)).await;
    assert_eq!((status, answer["version"]["change"].as_str()), (200, Some("batch_adjusted")), "{answer}");
    let (status, _) = call(
        &cluster,
        Some(COMMAND_TOKEN),
        "/api/v1/annual-plans/2027/batches/2/withdraw",
        Some(json!({"reason": "并入总局统一部署"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, public) = call(&cluster, None, "/public/v1/annual-plans/440000/2027", None).await;
    assert_eq!(public["batches"].as_array().map(Vec::len), Some(1), "{public}");
    assert_eq!(public["batches"][0]["entities"], 4_000);
    assert!(public["adjusted_at"].is_string());

    // Guangzhou carries out batch 1 with a campaign in Tianhe; an item outside the batch, or a
    // withdrawn batch, is refused.
    tests::import_directory(&cluster, 1, "440106", 400, 4).await;
    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": "440106",
                               "expertise": ["food", "pricing"], "qualified": true});
        let (status, _) = call(&cluster, Some(COMMAND_TOKEN), "/api/v1/inspectors", Some(inspector)).await;
        assert_eq!(status, 201);
    }
    let plan = |items: Value, number: u32| {
        json!({"name": "天河区餐饮抽查", "items": items, "scope": {"region": "440106"}, "targeted": false,
               "ratios_percent": {"high": 5, "normal": 5, "low": 5}, "inspector_mode": {"mode": "whole_bureau"},
               "batch": {"year": 2027, "number": number}})
    };
    let (status, answer) = call(&cluster, Some(GUANGZHOU), "/api/v1/campaigns", Some(plan(json!(["A01"]), 1))).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = call(&cluster, Some(GUANGZHOU), "/api/v1/campaigns", Some(plan(json!(["B01"]), 2))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("batch_withdrawn")), "{answer}");
    let (status, campaign) = call(&cluster, Some(GUANGZHOU), "/api/v1/campaigns", Some(plan(json!(["B01"]), 1))).await;
    assert_eq!(status, 201, "{campaign}");
    let (status, drawn) = call(
        &cluster,
        Some(COMMAND_TOKEN),
        &format!("/api/v1/campaigns/{}/draw", campaign["id"]),
        Some(json!({"beacon": "9"})),
    )
    .await;
    assert_eq!(status, 201, "{drawn}");
    let inspections = drawn["draw"]["inspections"].as_u64().unwrap();
    let (status, plan) = call(&cluster, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027", None).await;
    assert_eq!(status, 200);
    let first = &plan["batches"][0];
    assert_eq!(first["campaigns"], json!([campaign["id"]]));
    assert_eq!(
        (first["progress"]["campaigns"].as_u64(), first["progress"]["drawn"].as_u64()),
        (Some(1), Some(inspections))
    );
    assert_eq!(first["by_bureau"][0]["bureau"], "440100", "{first}");
    assert_eq!(first["by_bureau"][0]["drawn"].as_u64(), Some(inspections));
    let changes: Vec<&str> =
        plan["versions"].as_array().unwrap().iter().map(|v| v["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["proposed", "batch_added", "batch_added", "published", "batch_adjusted", "batch_withdrawn"]);
    assert_eq!(plan["proposals"][0]["taken_as"], 1);
    // Shenzhen reads its province's plan; Zhejiang's is its own, empty.
    let (_, shenzhen) = call(&cluster, Some(SHENZHEN), "/api/v1/annual-plans/2027", None).await;
    assert_eq!(shenzhen["batches"].as_array().map(Vec::len), Some(2));
    let (_, zhejiang) = call(&cluster, Some("demo-zj-command-0011"), "/api/v1/annual-plans/2027", None).await;
    assert_eq!(
        (zhejiang["province"].as_str(), zhejiang["batches"].as_array().map(Vec::len)),
        (Some("330000"), Some(0))
    );
}

/// 报上级备案 across the federation: Guangdong's group files its published plan with the
/// national group (its parent), and each adjustment after; the national command centre reads
/// every province's filed plan, Guangdong's centre sees which version was taken, and a group
/// cannot file a plan of another group's province.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_plan_is_filed_with_the_parent_group_and_again_after_each_adjustment() {
    use std::time::Duration;
    use tests::federation::{FederationOptions, GroupSpec, TestFederation};
    const SAMR_TOKEN: &str = "demo-samr-command-0060";
    let national_user = format!(
        "[[users]]\nname = \"samr-command\"\ntoken = \"{SAMR_TOKEN}\"\nbureau = \"000000\"\nrole = \"command\"\n"
    );
    let mut options = FederationOptions::new(vec![GroupSpec::new("000000", 1), GroupSpec::new("440000", 1)]);
    options.extra_users_toml = Some(national_user);
    let federation = TestFederation::start(options).await;
    let (national, guangdong) = (federation.group("000000"), federation.group("440000"));

    let (status, _) = call(
        guangdong,
        Some(COMMAND_TOKEN),
        "/api/v1/annual-plans/2027/batches",
        Some(batch("全省食品", "440000", 50_000)),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/publish", Some(json!({}))).await;
    assert_eq!(status, 200);
    let filed = |version: u64| async move {
        let (status, filed) = call(national, Some(SAMR_TOKEN), "/api/v1/annual-plans/2027/filed", None).await;
        let plan = filed["plans"].as_array().and_then(|plans| plans.first()).cloned();
        match plan {
            Some(plan) if status == 200 && plan["version"] == version => Ok(plan),
            _ => Err(format!("{status} {filed}")),
        }
    };
    let plan =
        tests::wait_until("the plan is filed with the national group", Duration::from_secs(30), || filed(2)).await;
    assert_eq!((plan["province"].as_str(), plan["from_group"].as_str()), (Some("440000"), Some("440000")));
    assert_eq!(plan["batches"][0]["entities"], 50_000);
    let (_, own) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027", None).await;
    let recorded = tests::wait_until("Guangdong sees its plan filed", Duration::from_secs(30), || async {
        let (_, own) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027", None).await;
        if own["filed"]["version"] == 2 {
            Ok(own)
        } else {
            Err(own.to_string())
        }
    })
    .await;
    assert_eq!(recorded["filed"]["with_group"], "000000", "{own}");

    // An adjustment after publication is filed again.
    let mut adjusted = batch("全省食品", "440000", 60_000);
    adjusted["reason"] = json!("按总局部署增加户数");
    let (status, _) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/batches/1", Some(adjusted)).await;
    assert_eq!(status, 200);
    let plan = tests::wait_until("the adjustment is filed", Duration::from_secs(30), || filed(3)).await;
    assert_eq!(plan["batches"][0]["entities"], 60_000);

    // The filed plans are the national group's users'; a province's user is refused there.
    let (status, _) = call(national, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/filed", None).await;
    assert_eq!(status, 403);
    // A group files only its own provinces' plans, checked as a peer's message.
    let forged = json!({"plans": [{"province": 450000, "year": 2027, "version": 9, "published_at_ms": 1,
        "batches": []}]});
    let url = national.url(1, "/federation/v1/plans");
    let token = TestFederation::peer_token("440000", "000000");
    let answer: Value =
        federation.http.post(url).bearer_auth(token).json(&forged).send().await.unwrap().json().await.unwrap();
    assert!(answer["results"][0]["refused"].is_object(), "{answer}");
    let (_, listed) = call(national, Some(SAMR_TOKEN), "/api/v1/annual-plans/2027/filed", None).await;
    assert_eq!(listed["plans"].as_array().map(Vec::len), Some(1), "{listed}");
}

/// 年度计划下达 across the federation: Guangdong's group hands its published plan down to
/// Guangzhou's own group, and again after each adjustment; Guangzhou's campaign joins the
/// batch there, and its progress reaches the province's plan; Guangzhou changes nothing of the
/// copy; a plan from a group that is not above, or a report naming a city outside the sender,
/// is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_province_plan_goes_down_to_a_city_group_whose_campaigns_report_progress_up() {
    use std::time::Duration;
    use tests::federation::{FederationOptions, GroupSpec, TestFederation};
    const GZ_DUTY: &str = "demo-gz-duty-0071";
    let second_person =
        format!("[[users]]\nname = \"gz-duty\"\ntoken = \"{GZ_DUTY}\"\nbureau = \"440100\"\nrole = \"command\"\n");
    let mut options = FederationOptions::new(vec![GroupSpec::new("440000", 1), GroupSpec::new("440100", 1)]);
    options.extra_users_toml = Some(second_person);
    let federation = TestFederation::start(options).await;
    let (guangdong, guangzhou) = (federation.group("440000"), federation.group("440100"));

    // Guangzhou proposes in its own group (上报): relayed to the province's group at once; sent
    // again with its Idempotency-Key it answers the same proposal; an operator proposes nothing.
    let mut proposal = batch("广州市餐饮单位抽查", "440100", 50_000);
    proposal["reason"] = json!("本市春节前后餐饮重点");
    let propose = |token: &'static str| {
        let proposal = proposal.clone();
        async move {
            let url = guangzhou.url(1, "/api/v1/annual-plans/2027/proposals");
            let request = guangzhou.http.post(url).bearer_auth(token).header("Idempotency-Key", "gz-2027-1");
            let response = request.json(&proposal).send().await.expect("request");
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, relayed) = propose(GUANGZHOU).await;
    assert_eq!(
        (status, relayed["relayed_to"].as_str(), relayed["proposal"].as_u64()),
        (201, Some("440000"), Some(1)),
        "{relayed}"
    );
    let (status, again) = propose(GUANGZHOU).await;
    assert_eq!(
        (status, again["proposal"].as_u64(), again["version"].clone()),
        (201, Some(1), relayed["version"].clone())
    );
    let (status, refused) = propose("demo-tianhe-op-0005").await;
    assert_eq!(status, 403, "{refused}");
    let (_, plan) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027", None).await;
    let proposals = plan["proposals"].as_array().expect("proposals");
    assert_eq!(proposals.len(), 1, "{plan}");
    assert_eq!(
        (proposals[0]["bureau"].as_str(), proposals[0]["note"].as_str()),
        (Some("440100"), Some("本市春节前后餐饮重点"))
    );

    // The province takes it into its plan.
    let mut taken = batch("广州市餐饮单位抽查", "440100", 50_000);
    taken["from_proposal"] = json!(1);
    let (status, answer) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/batches", Some(taken)).await;
    assert_eq!(status, 201, "{answer}");
    let (status, _) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/publish", Some(json!({}))).await;
    assert_eq!(status, 200);
    let copy_at = |version: u64| async move {
        let (status, plan) = call(guangzhou, Some(GUANGZHOU), "/api/v1/annual-plans/2027", None).await;
        if status == 200 && plan["handed_down"]["version"] == version {
            Ok(plan)
        } else {
            Err(format!("{status} {plan}"))
        }
    };
    let copy = tests::wait_until("the plan reaches Guangzhou's group", Duration::from_secs(30), || copy_at(3)).await;
    assert_eq!(
        (copy["handed_down"]["from_group"].as_str(), copy["province"].as_str()),
        (Some("440000"), Some("440000"))
    );
    assert_eq!(
        (copy["batches"][0]["entities"].as_u64(), copy["batches"][0]["scope"].as_str()),
        (Some(50_000), Some("440100"))
    );
    // The copy is the province's to change: Guangzhou's group sets no batch of it.
    let (status, answer) =
        call(guangzhou, Some(GUANGZHOU), "/api/v1/annual-plans/2027/batches", Some(batch("广州", "440100", 5))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("plan_elsewhere")), "{answer}");

    // Guangzhou's campaign in its own group joins batch 1 and draws.
    let directory = draw::generate::generate(400, ledger::BureauCode::parse_compiled("440106").unwrap(), 4);
    let (status, answer) = guangzhou.post_csv(1, GUANGZHOU, "/api/v1/directories/entities", directory).await;
    assert_eq!(status, 201, "{answer}");
    for n in 1..=4 {
        let inspector = json!({"id": format!("TH{n:03}"), "name": format!("执法人员{n}"), "bureau": "440106",
                               "expertise": ["food", "pricing"], "qualified": true});
        let (status, answer) = call(guangzhou, Some(GUANGZHOU), "/api/v1/inspectors", Some(inspector)).await;
        assert_eq!(status, 201, "{answer}");
    }
    let plan = json!({"name": "天河区餐饮抽查", "items": ["B01"], "scope": {"region": "440106"}, "targeted": false,
        "ratios_percent": {"high": 5, "normal": 5, "low": 5}, "inspector_mode": {"mode": "whole_bureau"},
        "batch": {"year": 2027, "number": 1}});
    let (status, campaign) = call(guangzhou, Some(GUANGZHOU), "/api/v1/campaigns", Some(plan)).await;
    assert_eq!(status, 201, "{campaign}");
    let path = format!("/api/v1/campaigns/{}/draw", campaign["id"]);
    let (status, drawn) = call(guangzhou, Some(GZ_DUTY), &path, Some(json!({"beacon": "20270301"}))).await;
    assert_eq!(status, 201, "{drawn}");
    let inspections = drawn["draw"]["inspections"].as_u64().expect("inspections drawn");
    assert!(inspections > 0);
    let (_, copy) = call(guangzhou, Some(GUANGZHOU), "/api/v1/annual-plans/2027", None).await;
    assert_eq!(copy["batches"][0]["campaigns"], json!([campaign["id"]]), "{copy}");
    assert_eq!(copy["batches"][0]["progress"]["drawn"].as_u64(), Some(inspections));

    // The province sees Guangzhou's progress in its batch, and that the plan went down.
    let reported = tests::wait_until("Guangzhou's progress reaches the province", Duration::from_secs(30), || async {
        let (_, plan) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027", None).await;
        let first = &plan["batches"][0];
        if first["progress"]["drawn"].as_u64() == Some(inspections) && first["progress"]["campaigns"] == 1 {
            Ok(plan)
        } else {
            Err(plan.to_string())
        }
    })
    .await;
    let first = &reported["batches"][0];
    assert_eq!(
        (first["by_bureau"][0]["bureau"].as_str(), first["by_bureau"][0]["drawn"].as_u64()),
        (Some("440100"), Some(inspections))
    );
    let handed = &reported["handed_down_to"][0];
    assert_eq!((handed["group"].as_str(), handed["version"].as_u64()), (Some("440100"), Some(3)), "{reported}");
    assert!(handed["reported_at"].is_string(), "{reported}");

    // An adjustment goes down again; the copy keeps Guangzhou's campaign in the batch.
    let mut adjusted = batch("广州市餐饮单位抽查", "440100", 60_000);
    adjusted["reason"] = json!("按总局部署增加户数");
    let (status, _) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027/batches/1", Some(adjusted)).await;
    assert_eq!(status, 200);
    let copy = tests::wait_until("the adjustment reaches Guangzhou", Duration::from_secs(30), || copy_at(4)).await;
    assert_eq!(copy["batches"][0]["entities"], 60_000);
    assert_eq!(copy["batches"][0]["campaigns"], json!([campaign["id"]]));

    // Between groups: a plan comes down only from the group above, and a report names only
    // the sender's cities.
    let forged_plan = json!({"plans": [{"province": 440000, "year": 2026, "version": 9, "published_at_ms": 1,
        "batches": []}]});
    let to_province = TestFederation::peer_token("440100", "440000");
    let url = guangdong.url(1, "/federation/v1/plans/handed-down");
    let response = federation.http.post(url).bearer_auth(&to_province).json(&forged_plan).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let forged_report = json!({"reports": [{"province": 440000, "year": 2027, "counted_at": u64::MAX, "batches": [
        {"batch": 1, "campaigns": 1, "by_city": [{"city": 440300, "drawn": 5, "completed": 0, "published": 0}]}]}]});
    let url = guangdong.url(1, "/federation/v1/plans/progress");
    let answer: Value = federation
        .http
        .post(url)
        .bearer_auth(&to_province)
        .json(&forged_report)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["results"][0]["refused"].is_object(), "{answer}");
    let (_, plan) = call(guangdong, Some(COMMAND_TOKEN), "/api/v1/annual-plans/2027", None).await;
    assert_eq!(
        plan["batches"][0]["progress"]["drawn"].as_u64(),
        Some(inspections),
        "the forged report changed nothing"
    );
}
