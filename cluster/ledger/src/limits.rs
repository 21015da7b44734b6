//! Caps that change replicated behaviour. They are constants, never per-node configuration:
//! two replicas with different values would reach different outcomes for the same entry.

/// Task titles are one line on the console; 200 characters fit a wall-screen row twice over.
pub const TITLE_CHARS_MAX: usize = 200;
/// A description is a short case summary, not a document; attachments come later.
pub const DESCRIPTION_CHARS_MAX: usize = 4_000;
/// Notes on actions (feedback text, return reasons).
pub const NOTE_CHARS_MAX: usize = 2_000;
/// Registered entity names are at most about 100 characters in practice.
pub const SUBJECT_NAME_CHARS_MAX: usize = 200;
pub const SUBJECT_ADDRESS_CHARS_MAX: usize = 300;
/// A user name in the actor of a command.
pub const USER_CHARS_MAX: usize = 64;
/// Timeline entries per task: a task is changed a few dozen times in real life; this bound
/// keeps one task's JSON (and a console drawer) bounded even under a runaway client.
pub const TIMELINE_ENTRIES_MAX: usize = 500;
/// The largest value a ledger's counters (task ids, message numbers) may hold in a ledger loaded
/// from outside: ids stay exact numbers in a browser's JSON (2^53), and a counter that grows by
/// one a command can never wrap from here.
pub const COUNTER_MAX: u64 = 1 << 53;
/// Idempotency keys are client-chosen strings, typically a UUID (36 characters).
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 128;
/// How long a key's first answer is kept: a day covers any sane client retry window.
pub const IDEMPOTENCY_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// Records kept at most, oldest evicted first: bounds the ledger's memory under a write storm
/// (at ~2 KB each this is about 400 MB at worst).
pub const IDEMPOTENCY_RECORDS_MAX: usize = 200_000;
/// Records kept at most per user, its own oldest evicted first: a busy desk's keyed writes of a
/// day, and a tenth of the whole, so a user's flood of keys pushes out only its own records.
pub const IDEMPOTENCY_RECORDS_PER_USER_MAX: usize = 20_000;
/// Commands in one Raft entry (one batch of group commit). Bounds entry size and apply time.
pub const COMMANDS_PER_ENTRY_MAX: usize = 512;
/// A deadline must fall within this distance of its command's stamp: 400 days covers the
/// longest statutory period with extensions and catches unit mistakes (seconds vs ms).
pub const DEADLINE_HORIZON_MS: u64 = 400 * 24 * 60 * 60 * 1000;

/// A source's own id for a signal (a UUID or a system's record number).
pub const SOURCE_ID_CHARS_MAX: usize = 128;
/// Evidence links per signal and their length.
pub const EVIDENCE_LINKS_MAX: usize = 5;
pub const EVIDENCE_LINK_CHARS_MAX: usize = 500;
/// How long a source-side id is remembered, so a source that re-sends a signal within this
/// time changes nothing: a month covers any retry and replay of a monitoring system.
pub const INTAKE_SEEN_RETENTION_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// Source-side ids remembered at most, oldest forgotten first (about 150 bytes each).
pub const INTAKE_SEEN_MAX: usize = 2_000_000;
/// The longest grouping window a source may configure.
pub const GROUPING_WINDOW_MAX_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// A signal observed more than this ahead of the ledger's clock is refused (clock skew bound).
pub const OBSERVED_AHEAD_MAX_MS: u64 = 5 * 60 * 1000;
/// A signal observed longer ago than this is not intake any more but a historical import.
pub const OBSERVED_AGE_MAX_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// How long a signal group is remembered after its first task was registered. Past this no
/// signal can join it: a new signal is observed at most `OBSERVED_AGE_MAX_MS` before the
/// ledger's clock, the group's first signal at most `OBSERVED_AHEAD_MAX_MS` after the
/// registration, and a window spans at most `GROUPING_WINDOW_MAX_MS`. So forgetting it then
/// changes no outcome, and the groups kept are those of the last two months, not of history.
pub const INTAKE_GROUP_LIFETIME_MS: u64 = OBSERVED_AHEAD_MAX_MS + OBSERVED_AGE_MAX_MS + GROUPING_WINDOW_MAX_MS;
/// Signal groups remembered at most, oldest forgotten first (about 120 bytes each). Forgetting
/// a live group early costs a second task for its next signal, never a lost signal.
pub const INTAKE_GROUPS_MAX: usize = 2_000_000;

const _: () = assert!(NOTE_CHARS_MAX <= DESCRIPTION_CHARS_MAX);
const _: () = assert!(IDEMPOTENCY_RECORDS_MAX > COMMANDS_PER_ENTRY_MAX);
const _: () = assert!(IDEMPOTENCY_RECORDS_PER_USER_MAX * 10 <= IDEMPOTENCY_RECORDS_MAX);
