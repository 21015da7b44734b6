//! Benchmark of the entities' risk files (docs/benchmarks.md): a ledger in memory with T tasks
//! about E entities (a tenth of them complaints), then the time a beacon takes to freeze a
//! campaign's inputs by scanning every task, the one entry that turns the risk files on (the
//! history filed once), and a beacon reading the files instead. The histories both beacons
//! freeze must be the same.
//!
//!   cargo run --release -p draw --example risk_files_bench -- 1000000 200000

use std::time::Instant;

use ledger::campaign::risk_files::RiskFilesAction;
use ledger::campaign::{
    CampaignSpec, InspectionItem, Inspector, InspectorMode, ProgrammeAction, ProgrammeRecord, RiskRatios, RiskScoring,
};
use ledger::{
    Action, Actor, BureauCode, Command, Ledger, NewTask, Role, Routing, Severity, Source, Subject, TaskKind, Uscc,
};

const T0: u64 = 1_796_605_200_000;

/// Applies `action` a millisecond after the ledger's last command.
fn apply(ledger: &mut Ledger, actor: &Actor, action: Action) -> ledger::Applied {
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1;
    ledger.apply(&Command { stamp_ms, actor: actor.clone(), idempotency: None, action }).expect("applied")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let entities: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let tianhe = BureauCode::parse_compiled("440106").expect("Tianhe");
    let command =
        Actor { user: "gz-planner".into(), bureau: BureauCode::parse_compiled("440100").unwrap(), role: Role::Command };
    let second = Actor { user: "gz-second".into(), ..command.clone() };
    let system = Actor { user: "system".into(), ..command.clone() };
    let system = Actor { role: Role::System, ..system };
    let mut ledger = Ledger::new();
    let programme = |action: ProgrammeAction| Action::Programme(Box::new(action));

    let started = Instant::now();
    let usccs: Vec<Uscc> = (0..entities).map(|n| draw::generate::synthetic_uscc(tianhe, n)).collect();
    for n in 0..tasks {
        let source = if n % 10 == 0 { Source::Complaint } else { Source::BigData };
        let task = NewTask {
            kind: TaskKind::Lead,
            severity: Severity::Normal,
            title: format!("线索{n}"),
            description: String::new(),
            subject: Subject {
                uscc: Some(usccs[(n % entities) as usize].clone()),
                name: "广州某某有限公司".into(),
                region_code: tianhe,
                address: String::new(),
            },
            source,
            origin_bureau: command.bureau,
            assignee_bureau: None,
            routing: Routing::Keep,
        };
        apply(&mut ledger, &command, Action::CreateTask(task));
    }
    println!("{tasks} tasks about {entities} entities applied in {:.1} s", started.elapsed().as_secs_f64());

    let directory = ProgrammeAction::RecordEntityDirectory { sha256: "1".repeat(64), entities, bytes: entities * 100 };
    apply(&mut ledger, &command, programme(directory));
    let inspectors = (0..4)
        .map(|n| Inspector {
            id: format!("TH{n:03}"),
            name: format!("检查员{n}"),
            bureau: tianhe,
            station: None,
            expertise: vec!["food".into()],
            qualified: true,
            active: true,
            enrolled_at_ms: 0,
            retired_at_ms: None,
        })
        .collect();
    apply(&mut ledger, &command, programme(ProgrammeAction::EnrollInspectors(inspectors)));
    let spec = CampaignSpec {
        name: "基准".into(),
        bureau: command.bureau,
        items: vec![InspectionItem {
            code: "F1".into(),
            name: "F1".into(),
            industries: Vec::new(),
            expertise: "food".into(),
        }],
        scope_region: tianhe,
        targeted: false,
        industries: Vec::new(),
        risk_classes: Vec::new(),
        ratios: RiskRatios { high_bp: 1_000, normal_bp: 500, low_bp: 300 },
        inspector_mode: InspectorMode::WholeBureau,
        inspectors_per_inspection: 2,
        scoring: RiskScoring {
            credit_points: Vec::new(),
            industry_points: Vec::new(),
            region_points: Vec::new(),
            points_per_finding: 20,
            points_per_complaint: 10,
            points_per_overdue_task: 10,
            high_from: 50,
            low_below: 10,
        },
        entity_directory: "1".repeat(64),
        complete_deadline_ms: None,
    };
    let beacon = |ledger: &mut Ledger, value: &str| {
        let created = apply(ledger, &command, programme(ProgrammeAction::CreateCampaign(Box::new(spec.clone()))));
        let Some(ProgrammeRecord::Campaign(campaign)) = created.record else { panic!("a campaign") };
        let started = Instant::now();
        apply(ledger, &second, programme(ProgrammeAction::FixBeacon { campaign: campaign.id, value: value.into() }));
        let took = started.elapsed().as_secs_f64();
        (took, ledger.draw_inputs(campaign.id).expect("frozen").histories)
    };

    let (scan_s, scanned) = beacon(&mut ledger, "scan");
    println!("beacon by scanning every task: {scan_s:.3} s, {} histories", scanned.len());
    let started = Instant::now();
    apply(&mut ledger, &system, programme(ProgrammeAction::RiskFiles(RiskFilesAction::Keep)));
    println!(
        "turning the risk files on (the history filed once): {:.3} s, {} files",
        started.elapsed().as_secs_f64(),
        ledger.risk_files().count()
    );
    let (files_s, filed) = beacon(&mut ledger, "files");
    println!("beacon reading the risk files: {files_s:.3} s, {} histories", filed.len());
    assert_eq!(filed, scanned, "the files hold what the scan found");
}
