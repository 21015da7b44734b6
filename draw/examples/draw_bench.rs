//! Benchmark of the double-random draw (docs/benchmarks.md): generates a synthetic directory of
//! N entities over Guangdong's counties (or reads one), then times the import check, a draw
//! with three items and 20 inspectors per county, and its verification.
//!
//!   cargo run --release -p draw --example draw_bench -- 10000000 [directory.csv]

use std::time::Instant;

use ledger::campaign::{
    CampaignSpec, DrawInputs, DrawRecord, InspectionItem, Inspector, InspectorMode, RiskRatios, RiskScoring,
};
use ledger::{BureauCode, Regions};

fn main() {
    let mut args = std::env::args().skip(1);
    let entities: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let province = BureauCode::parse_compiled("440000").expect("Guangdong");
    let started = Instant::now();
    let bytes = match args.next() {
        Some(path) => std::fs::read(&path).expect("the directory file"),
        None => draw::generate::generate(entities, province, 7),
    };
    println!("directory: {} bytes, generated/read in {:.2} s", bytes.len(), started.elapsed().as_secs_f64());

    let started = Instant::now();
    let summary = draw::directory::check(Regions::compiled(), &bytes).expect("a valid directory");
    let check_s = started.elapsed().as_secs_f64();
    println!(
        "import check (parse, USCC check characters, regions, duplicates, SHA-256): {:.2} s, {:.0} entities/s",
        check_s,
        summary.entities as f64 / check_s
    );

    let regions = Regions::compiled();
    let counties: Vec<BureauCode> =
        regions.subtree(province).filter(|r| regions.children(r.code).next().is_none()).map(|r| r.code).collect();
    let expertise =
        [&["registration", "food"][..], &["pricing", "registration"], &["food", "pricing"], &["registration"]];
    let pool: Vec<Inspector> = counties
        .iter()
        .flat_map(|county| {
            (0..20).map(move |n| Inspector {
                id: format!("{county}-{n:02}"),
                name: format!("检查员{n}"),
                bureau: *county,
                station: (n % 4 != 0).then(|| format!("{county}-所{}", n % 3)),
                expertise: expertise[n % 4].iter().map(|s| s.to_string()).collect(),
                qualified: true,
                active: true,
                enrolled_at_ms: 0,
                retired_at_ms: None,
            })
        })
        .collect();
    let item = |code: &str, industries: &[&str], expertise: &str| InspectionItem {
        code: code.into(),
        name: code.into(),
        industries: industries.iter().map(|s| s.to_string()).collect(),
        expertise: expertise.into(),
    };
    let inputs = DrawInputs {
        campaign: 1,
        spec: CampaignSpec {
            name: "benchmark".into(),
            bureau: province,
            items: vec![
                item("A01", &[], "registration"),
                item("B01", &["catering", "retail", "wholesale"], "food"),
                item("F01", &["retail", "catering", "services"], "pricing"),
            ],
            scope_region: province,
            targeted: false,
            industries: Vec::new(),
            risk_classes: Vec::new(),
            ratios: RiskRatios { high_bp: 1_000, normal_bp: 500, low_bp: 300 },
            inspector_mode: InspectorMode::WholeBureau,
            inspectors_per_inspection: 2,
            scoring: RiskScoring {
                credit_points: vec![("abnormal".into(), 30), ("serious_violation".into(), 60)],
                industry_points: vec![("drugs".into(), 25), ("food_production".into(), 20), ("catering".into(), 10)],
                region_points: Vec::new(),
                points_per_finding: 20,
                points_per_complaint: 10,
                points_per_overdue_task: 5,
                high_from: 50,
                low_below: 10,
            },
            entity_directory: summary.sha256.clone(),
            complete_deadline_ms: None,
        },
        beacon: "benchmark beacon".into(),
        pool,
        conflicts: Vec::new(),
        histories: Vec::new(),
        year_cap: None,
    };
    let started = Instant::now();
    let result = draw::draw(ledger::Regions::compiled(), &inputs, &bytes).expect("the draw");
    let draw_s = started.elapsed().as_secs_f64();
    println!(
        "draw: {:.2} s: {} entities in scope, {} inspections ({} joint), {} strata",
        draw_s,
        result.entities_in_scope,
        result.inspections.len(),
        result.inspections.iter().filter(|i| i.items.len() > 1).count(),
        result.strata.len()
    );
    let record = DrawRecord {
        inputs,
        result,
        ack_deadline_ms: 0,
        complete_deadline_ms: 0,
        drawn_at_ms: 0,
        drawn_by: "bench".into(),
        tasks: Vec::new(),
    };
    let started = Instant::now();
    draw::verify(ledger::Regions::compiled(), &record, &bytes).expect("verifies");
    println!("verify: {:.2} s", started.elapsed().as_secs_f64());
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!("peak memory: {}", line.trim_start_matches("VmHWM:").trim());
        }
    }
}
