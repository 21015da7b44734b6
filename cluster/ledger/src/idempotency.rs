//! The first answers to requests that carried an `Idempotency-Key`, so that a retry on any
//! node, also after a failover, gets the first answer and writes nothing.
//!
//! Records are kept for `IDEMPOTENCY_RETENTION_MS`, at most `IDEMPOTENCY_RECORDS_PER_USER_MAX`
//! per user and `IDEMPOTENCY_RECORDS_MAX` in all. A user over its quota loses its own oldest
//! record, and when the table is full the user holding the most loses its oldest: so no flood
//! of keys, by one account or by several, pushes out the records of a user who holds fewer (a
//! later retry of theirs would write twice). Only answers that wrote something are kept: a
//! refusal changed nothing, and its retry is simply judged again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::campaign::ProgrammeRecord;
use super::command::{Applied, CommandResult, IdempotencyTag, Rejection};
use super::task::{Task, TaskId};
use crate::limits::{IDEMPOTENCY_RECORDS_MAX, IDEMPOTENCY_RECORDS_PER_USER_MAX, IDEMPOTENCY_RETENTION_MS};

/// Keys are scoped per user: two users may pick the same key.
type Scope = (String, String);

/// The first answer to a request that carried an idempotency key: which tasks it wrote (not
/// copies of them: a copy per keyed write of a long task would grow the snapshot with the
/// square of its timeline), and what a programme command recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    fingerprint: [u8; 32],
    /// Its place in the order of storing (`IdempotencyTable::order`).
    number: u64,
    tasks: Vec<TaskId>,
    record: Option<ProgrammeRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyTable {
    records: BTreeMap<Scope, Record>,
    /// Every record by the number it was stored under (numbers grow with the ledger's clock,
    /// so this is also the order of expiry), with its stamp.
    order: BTreeMap<u64, (u64, Scope)>,
    /// Each user's records, oldest first. A record leaves only as its user's oldest: by
    /// expiry (the oldest of all is its user's oldest), by the quota, or by the cap.
    by_user: BTreeMap<String, VecDeque<u64>>,
    /// Users by how many records they hold: the cap takes from the largest holder.
    holdings: BTreeSet<(usize, String)>,
    next_number: u64,
}

impl IdempotencyTable {
    /// The stored answer to `tag` from `user`, if any: the tasks the first request wrote, as
    /// they stand now (`task_of`), marked replayed; or a refusal when the key was used for
    /// another request.
    pub fn answer(
        &self,
        user: &str,
        tag: &IdempotencyTag,
        task_of: impl Fn(TaskId) -> Option<Arc<Task>>,
    ) -> Option<CommandResult> {
        let record = self.records.get(&(user.to_owned(), tag.key.clone()))?;
        if record.fingerprint != tag.fingerprint {
            return Some(Err(Rejection::IdempotencyKeyReused));
        }
        let tasks = record.tasks.iter().filter_map(|id| task_of(*id)).collect();
        Some(Ok(Applied { tasks, record: record.record.clone(), replayed: true, ..Applied::default() }))
    }

    /// Keeps the answer `result` to `tag` from `user`, if it wrote something.
    pub fn remember(&mut self, user: &str, tag: &IdempotencyTag, stamp_ms: u64, result: &CommandResult) {
        let Ok(applied) = result else { return };
        if self.by_user.get(user).is_some_and(|records| records.len() >= IDEMPOTENCY_RECORDS_PER_USER_MAX) {
            let oldest = self.by_user[user][0];
            self.forget(oldest);
        }
        while self.records.len() >= IDEMPOTENCY_RECORDS_MAX {
            let (_, largest) = self.holdings.last().expect("a full table has holders");
            let oldest = self.by_user[largest][0];
            self.forget(oldest);
        }
        let number = self.next_number;
        self.next_number += 1;
        let scope = (user.to_owned(), tag.key.clone());
        self.order.insert(number, (stamp_ms, scope.clone()));
        let records = self.by_user.entry(user.to_owned()).or_default();
        self.holdings.remove(&(records.len(), user.to_owned()));
        records.push_back(number);
        self.holdings.insert((records.len(), user.to_owned()));
        let tasks = applied.tasks.iter().map(|task| task.id).collect();
        let record = applied.record.as_ref().map(crate::campaign::ProgrammeRecord::as_encoded);
        let record = Record { fingerprint: tag.fingerprint, number, tasks, record };
        let previous = self.records.insert(scope, record);
        assert!(previous.is_none(), "a key is remembered once: apply answers a known key from the table");
    }

    /// Forgets what was stored longer ago than the retention.
    pub fn expire(&mut self, now_ms: u64) {
        while let Some((&number, (stamp_ms, _))) = self.order.first_key_value() {
            if stamp_ms.saturating_add(IDEMPOTENCY_RETENTION_MS) >= now_ms {
                break;
            }
            self.forget(number);
        }
    }

    /// Removes record `number`, which is its user's oldest.
    fn forget(&mut self, number: u64) {
        let (_, scope) = self.order.remove(&number).expect("forgets a stored record");
        self.records.remove(&scope);
        let records = self.by_user.get_mut(&scope.0).expect("every record is its user's");
        self.holdings.remove(&(records.len(), scope.0.clone()));
        assert_eq!(records.pop_front(), Some(number), "records leave as their user's oldest");
        if records.is_empty() {
            self.by_user.remove(&scope.0);
        } else {
            self.holdings.insert((records.len(), scope.0));
        }
    }

    /// The table's own invariants, for `Ledger::check_invariants`.
    pub fn check(&self) -> Result<(), String> {
        if self.records.len() != self.order.len() {
            return Err("idempotency records and their order differ".into());
        }
        if self.records.len() > IDEMPOTENCY_RECORDS_MAX {
            return Err("too many idempotency records".into());
        }
        let mut counted = 0;
        for (user, numbers) in &self.by_user {
            if numbers.is_empty() || numbers.len() > IDEMPOTENCY_RECORDS_PER_USER_MAX {
                return Err(format!("user {user} has {} idempotency records", numbers.len()));
            }
            if !numbers.iter().zip(numbers.iter().skip(1)).all(|(a, b)| a < b) {
                return Err(format!("user {user}'s idempotency records are out of order"));
            }
            for number in numbers {
                let named = self.order.get(number).map(|(_, scope)| &scope.0);
                if named != Some(user) || number >= &self.next_number {
                    return Err(format!("idempotency record {number} is not {user}'s"));
                }
            }
            counted += numbers.len();
        }
        if counted != self.records.len() {
            return Err("idempotency records and their users differ".into());
        }
        let holdings: BTreeSet<(usize, String)> =
            self.by_user.iter().map(|(user, numbers)| (numbers.len(), user.clone())).collect();
        if holdings != self.holdings {
            return Err("idempotency holdings do not match the users' records".into());
        }
        for (scope, record) in &self.records {
            if self.order.get(&record.number).map(|(_, s)| s) != Some(scope) {
                return Err(format!("idempotency record {} is out of order", record.number));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str) -> IdempotencyTag {
        IdempotencyTag { key: key.to_owned(), fingerprint: [7; 32] }
    }

    fn written() -> CommandResult {
        Ok(Applied::default())
    }

    #[test]
    fn a_flood_of_one_users_keys_pushes_out_only_its_own_records() {
        let mut table = IdempotencyTable::default();
        table.remember("victim", &tag("k"), 1, &written());
        for n in 0..IDEMPOTENCY_RECORDS_PER_USER_MAX + 10 {
            table.remember("flooder", &tag(&format!("f{n}")), 2, &written());
        }
        assert!(table.answer("victim", &tag("k"), |_| None).is_some(), "the victim's record stays");
        assert!(table.answer("flooder", &tag("f0"), |_| None).is_none(), "the flooder lost its own oldest");
        assert_eq!(table.records.len(), IDEMPOTENCY_RECORDS_PER_USER_MAX + 1);
        table.check().expect("consistent");
    }

    #[test]
    fn a_full_table_takes_from_the_largest_holder() {
        let mut table = IdempotencyTable::default();
        table.remember("victim", &tag("k"), 1, &written());
        // Accounts enough to fill the whole table, each at its quota.
        let accounts = IDEMPOTENCY_RECORDS_MAX / IDEMPOTENCY_RECORDS_PER_USER_MAX + 1;
        for account in 0..accounts {
            for n in 0..IDEMPOTENCY_RECORDS_PER_USER_MAX {
                table.remember(&format!("flooder{account}"), &tag(&format!("f{n}")), 2, &written());
            }
        }
        assert_eq!(table.records.len(), IDEMPOTENCY_RECORDS_MAX);
        assert!(table.answer("victim", &tag("k"), |_| None).is_some(), "the smallest holder keeps its record");
        table.check().expect("consistent");
    }

    #[test]
    fn refusals_are_not_kept_and_records_expire_in_order() {
        let mut table = IdempotencyTable::default();
        table.remember("u", &tag("refused"), 1, &Err(crate::command::conflict(crate::ConflictCode::NoResult, "no")));
        assert!(table.answer("u", &tag("refused"), |_| None).is_none());
        table.remember("u", &tag("a"), 1, &written());
        table.remember("v", &tag("b"), 5, &written());
        let reused = IdempotencyTag { fingerprint: [8; 32], ..tag("a") };
        assert_eq!(table.answer("u", &reused, |_| None), Some(Err(Rejection::IdempotencyKeyReused)));
        table.expire(IDEMPOTENCY_RETENTION_MS + 2);
        assert!(table.answer("u", &tag("a"), |_| None).is_none() && table.answer("v", &tag("b"), |_| None).is_some());
        table.check().expect("consistent");
    }
}
