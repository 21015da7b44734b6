//! The annual random-inspection plan: cities propose, the province sets batches (from
//! proposals or its own), publishes, and adjusts with a reason; every change a version; a
//! batch is withdrawn, never removed; bad batches are refused whole.

use crate::campaign::annual_plan::{BatchSpec, PlanAction, PlanStep};
use crate::campaign::{ProgrammeAction, ProgrammeRecord};
use crate::reference::Day;
use crate::*;

/// 2026-12-07 09:00 Beijing.
const T0: u64 = 1_796_605_200_000;

fn bureau(code: &str) -> BureauCode {
    BureauCode::parse_compiled(code).expect(code)
}

fn command(user: &str, code: &str) -> Actor {
    Actor { user: user.to_owned(), bureau: bureau(code), role: Role::Command }
}

fn batch(name: &str, scope: &str, entities: u64) -> Box<BatchSpec> {
    Box::new(BatchSpec {
        name: name.into(),
        items: vec!["B01".into()],
        scope: bureau(scope),
        entities,
        starts: Day::parse("2027-03-01").unwrap(),
        ends: Day::parse("2027-06-30").unwrap(),
    })
}

fn plan(ledger: &mut Ledger, actor: Actor, action: PlanAction) -> Result<(u32, PlanStep), Rejection> {
    let before = ledger.annual_plans().clone();
    let stamp_ms = ledger.last_stamp_ms().max(T0) + 1000;
    let action = Action::Programme(Box::new(ProgrammeAction::AnnualPlan(Box::new(action))));
    let result = ledger.apply(&Command { stamp_ms, actor, idempotency: None, action });
    ledger.check_invariants().expect("the ledger keeps its invariants");
    let copy = ledger.copy_through_a_checkpoint_for_tests();
    assert_eq!(copy.digest(), ledger.digest());
    match result {
        Ok(applied) => match applied.record {
            Some(ProgrammeRecord::AnnualPlan(changed)) => Ok((changed.1.number, changed.1.step)),
            other => panic!("a plan change answers with the plan, not {other:?}"),
        },
        Err(rejection) => {
            assert_eq!(ledger.annual_plans(), &before, "a refusal changes nothing");
            Err(rejection)
        }
    }
}

#[test]
fn cities_propose_the_province_plans_publishes_and_adjusts_with_reasons() {
    let mut ledger = Ledger::new();
    let province = || command("gd-command", "440000");
    let guangzhou = || command("gz-command", "440100");
    // Guangzhou proposes a batch of its own region; not Shenzhen's; it sets no batch itself.
    let propose = |spec| PlanAction::Propose { year: 2027, spec, note: "本市餐饮重点".into() };
    assert_eq!(
        plan(&mut ledger, guangzhou(), propose(batch("广州餐饮", "440100", 2_000))),
        Ok((1, PlanStep::Proposed { proposal: 1 }))
    );
    assert!(matches!(
        plan(&mut ledger, guangzhou(), propose(batch("深圳", "440300", 10))),
        Err(Rejection::Forbidden(_))
    ));
    let set = |spec, batch, from_proposal, reason: &str| PlanAction::SetBatch {
        year: 2027,
        batch,
        spec,
        from_proposal,
        reason: reason.into(),
    };
    assert!(matches!(
        plan(&mut ledger, guangzhou(), set(batch("x", "440100", 1), None, None, "")),
        Err(Rejection::Forbidden(_))
    ));
    // The province takes the proposal as batch 1 and adds one of its own.
    assert_eq!(
        plan(&mut ledger, province(), set(batch("广州餐饮", "440100", 2_000), None, Some(1), "")),
        Ok((2, PlanStep::BatchSet { batch: 1, new: true }))
    );
    assert!(
        matches!(
            plan(&mut ledger, province(), set(batch("again", "440100", 1), None, Some(1), "")),
            Err(Rejection::NothingToRecord(_))
        ),
        "a proposal is taken once"
    );
    plan(&mut ledger, province(), set(batch("全省公示信息", "440000", 180_000), None, None, "")).unwrap();
    // Bad batches: a period outside the year, no entities, an empty name, outside the province.
    let mut late = batch("晚", "440100", 10);
    late.ends = Day::parse("2028-01-31").unwrap();
    for (spec, what) in [(late, "period"), (batch("零", "440100", 0), "entities"), (batch(" ", "440100", 1), "name")] {
        let refused = plan(&mut ledger, province(), set(spec, None, None, ""));
        assert!(matches!(refused, Err(Rejection::Invalid { ref field, .. }) if field == what), "{what}: {refused:?}");
    }
    assert!(matches!(
        plan(&mut ledger, province(), set(batch("浙江", "330100", 1), None, None, "")),
        Err(Rejection::Invalid { .. })
    ));
    assert_eq!(plan(&mut ledger, province(), PlanAction::Publish { year: 2027 }), Ok((4, PlanStep::Published)));
    assert!(matches!(
        plan(&mut ledger, province(), PlanAction::Publish { year: 2027 }),
        Err(Rejection::NothingToRecord(_))
    ));
    // After publication a change is an adjustment: it says why.
    let adjusted = batch("广州餐饮", "440100", 3_000);
    assert!(matches!(
        plan(&mut ledger, province(), set(adjusted.clone(), Some(1), None, "")),
        Err(Rejection::Invalid { .. })
    ));
    assert_eq!(
        plan(&mut ledger, province(), set(adjusted, Some(1), None, "春节食品安全形势")),
        Ok((5, PlanStep::BatchSet { batch: 1, new: false }))
    );
    let withdraw = |reason: &str| PlanAction::WithdrawBatch { year: 2027, batch: 2, reason: reason.into() };
    assert!(matches!(plan(&mut ledger, province(), withdraw("")), Err(Rejection::Invalid { .. })));
    plan(&mut ledger, province(), withdraw("并入国家局部署")).unwrap();
    let stored = ledger.annual_plans().plan(bureau("440000"), 2027).unwrap();
    assert_eq!(stored.batches[0].spec.entities, 3_000);
    assert_eq!((stored.batches[0].listed_in, stored.batches[0].changed_in), (2, 5));
    assert!(stored.batches[1].withdrawn, "withdrawn, never removed");
    assert_eq!(stored.proposals[0].taken_as, Some(1));
    assert_eq!(stored.versions.len(), 6);
    assert_eq!(stored.versions[4].reason, "春节食品安全形势");
    // Another province's plan is its own; an operator keeps none.
    plan(&mut ledger, command("zj-command", "330000"), set(batch("杭州", "330100", 5), None, None, "")).unwrap();
    assert_eq!(ledger.annual_plans().of_province(bureau("330000")).count(), 1);
    let operator = Actor { user: "op".into(), bureau: bureau("440106"), role: Role::Operator };
    assert!(matches!(plan(&mut ledger, operator, propose(batch("天河", "440106", 5))), Err(Rejection::Forbidden(_))));
}
