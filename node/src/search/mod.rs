//! Search across the group's open and closed tasks (`GET /api/v1/search?q=`): a USCC exactly,
//! or any part of an enterprise name or a task title, Chinese included (`tokenizer`: character
//! bigrams). A full-text index (tantivy) on each node, derived from the ledger and never part of
//! the Raft log: the indexer follows the store's positions of last change
//! (`task_query::changes_after`, the export feed's source), so it catches up from wherever it
//! stopped, after a restart, a snapshot installed from the leader, or a lost index (rebuilt from
//! the store). Each commit carries the position it reached.
//!
//! An answer is checked against the ledger: the hits are read again as they stand and shown only
//! when the caller may see them (`ledger::access`), so an index a moment behind never widens
//! anyone's view.

pub mod tokenizer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::raft::LedgerStore;
use ledger::{access, Actor, Role, Task, TaskId};
use tantivy::collector::TopDocs;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STRING};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};
use tokio_util::sync::CancellationToken;

use crate::task_query::{self, ChangesCursor};

/// The directory of the index inside a node's data directory.
pub const SEARCH_DIR: &str = "search";
/// The version of the index's schema and tokens; an index of another is built again.
const SEARCH_VERSION: u32 = 1;
/// How often the indexer takes in what changed.
const INDEX_EVERY: Duration = Duration::from_millis(500);
/// Positions (log entries) and tasks one page of changes reads at most: the replica's lock is
/// held while a page is read from memory, so pages stay short.
const PAGE_POSITIONS: usize = 1_000;
const PAGE_TASKS: usize = 2_000;
/// Tasks taken in per round before committing, so a rebuild shows progress and memory stays
/// bounded.
const ROUND_TASKS_MAX: usize = 50_000;
/// The writer's memory (tantivy's minimum per indexing thread is 15 MB).
const WRITER_BYTES: usize = 24_000_000;
/// Hits one answer gives at most.
pub const SEARCH_LIMIT_MAX: usize = 50;
/// Characters of a query at most.
pub const QUERY_CHARS_MAX: usize = 64;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    /// Every bureau the task is listed under (`cluster::store::index::listed_under`): a command
    /// centre's subtree.
    scope: Field,
    assignee: Field,
    uscc: Field,
    /// The title and the subject's name.
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text_indexing = TextFieldIndexing::default()
        .set_tokenizer(tokenizer::NAME)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let fields = Fields {
        id: builder.add_u64_field("id", INDEXED | FAST),
        scope: builder.add_u64_field("scope", INDEXED),
        assignee: builder.add_u64_field("assignee", INDEXED),
        uscc: builder.add_text_field("uscc", STRING),
        text: builder.add_text_field("text", TextOptions::default().set_indexing_options(text_indexing)),
    };
    (builder.build(), fields)
}

/// Why a query is refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("give at least two characters of a name or a title, or a USCC")]
    TooShort,
    #[error("at most {QUERY_CHARS_MAX} characters")]
    TooLong,
    #[error("the search index cannot be read: {0}")]
    Unreadable(String),
}

/// What a search answers: the tasks, newest first, and the position the index has reached.
pub struct Hits {
    pub tasks: Vec<Arc<Task>>,
    /// More tasks matched than were given.
    pub more: bool,
    pub indexed_through: u64,
}

/// The writer and where its last commit reached: one round of the indexer at a time.
struct Indexer {
    writer: IndexWriter,
    /// The cursor of the last commit: a round that fails before committing starts again here
    /// (taking a task in again replaces its document).
    committed: ChangesCursor,
}

struct Inner {
    reader: IndexReader,
    fields: Fields,
    indexer: Mutex<Indexer>,
    /// `indexer.committed` as a log index, read by searches without waiting for a round.
    indexed_through: AtomicU64,
}

/// One node's search index.
#[derive(Clone)]
pub struct Search {
    inner: Arc<Inner>,
}

impl Search {
    /// Opens the index under `data_dir`, or makes an empty one there (none yet, another
    /// version, or one that does not open): the indexer fills it from the store.
    pub fn open(data_dir: &Path) -> anyhow::Result<Search> {
        let dir = data_dir.join(SEARCH_DIR);
        let (schema, fields) = schema();
        let opened = std::fs::create_dir_all(&dir)
            .map_err(anyhow::Error::from)
            .and_then(|()| Index::open_in_dir(&dir).map_err(anyhow::Error::from))
            .and_then(|index| {
                let cursor = committed_cursor(&index)?;
                anyhow::ensure!(index.schema() == schema, "another schema");
                Ok((index, cursor))
            });
        let (index, cursor) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                tracing::info!(dir = %dir.display(), %error, "building the search index from the store");
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                (Index::create_in_dir(&dir, schema)?, ChangesCursor::default())
            }
        };
        index.tokenizers().register(tokenizer::NAME, tokenizer::CjkBigramTokenizer);
        let options = IndexWriterOptions::builder()
            .num_worker_threads(1)
            .num_merge_threads(1)
            .memory_budget_per_thread(WRITER_BYTES)
            .build();
        let writer = index.writer_with_options(options)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let inner = Inner {
            reader,
            fields,
            indexer: Mutex::new(Indexer { writer, committed: cursor }),
            indexed_through: AtomicU64::new(indexed(cursor)),
        };
        Ok(Search { inner: Arc::new(inner) })
    }

    /// The position the index holds every change up to.
    pub fn indexed_through(&self) -> u64 {
        self.inner.indexed_through.load(Ordering::Acquire)
    }

    /// Runs the indexer until `shutdown`: every `INDEX_EVERY`, takes in what changed.
    pub fn start(&self, store: LedgerStore, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let search = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(INDEX_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let (search, store) = (search.clone(), store.clone());
                match tokio::task::spawn_blocking(move || search.catch_up(&store)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "the search index could not take in the changes"),
                    Err(error) => tracing::error!(%error, "the search indexer failed"),
                }
            }
        })
    }

    /// Takes in the tasks changed since the position reached, up to `ROUND_TASKS_MAX`, and
    /// commits with the new position.
    pub fn catch_up(&self, store: &LedgerStore) -> anyhow::Result<()> {
        let inner = &self.inner;
        let mut indexer = inner.indexer.lock().expect("not poisoned");
        let mut cursor = indexer.committed;
        let mut taken = 0;
        while taken < ROUND_TASKS_MAX {
            let (page, regions) = {
                let replica = store.read();
                let view = store.store_view()?;
                let page = task_query::changes_after(&replica, &view, cursor, PAGE_POSITIONS, PAGE_TASKS, |_| true)?;
                (page, replica.ledger.regions())
            };
            for (_, task) in &page.tasks {
                indexer.writer.delete_term(Term::from_field_u64(inner.fields.id, task.id.0));
                indexer.writer.add_document(document(&inner.fields, &regions, task))?;
            }
            taken += page.tasks.len();
            let moved = page.next != cursor;
            cursor = page.next;
            if !moved {
                break;
            }
        }
        if cursor == indexer.committed {
            return Ok(());
        }
        let mut commit = indexer.writer.prepare_commit()?;
        let after = cursor.after.map_or(0, |id| id.0);
        commit.set_payload(&format!("{SEARCH_VERSION} {} {after}", cursor.since));
        commit.commit()?;
        indexer.committed = cursor;
        drop(indexer);
        inner.reader.reload()?;
        inner.indexed_through.store(indexed(cursor), Ordering::Release);
        Ok(())
    }

    /// The tasks `actor` may see that match `query`, newest first, at most `limit`.
    pub fn search(&self, store: &LedgerStore, actor: &Actor, query: &str, limit: usize) -> Result<Hits, QueryError> {
        let fields = &self.inner.fields;
        let query = query.trim();
        if query.chars().count() > QUERY_CHARS_MAX {
            return Err(QueryError::TooLong);
        }
        let matching = match ledger::Uscc::parse(&query.to_uppercase()) {
            Ok(uscc) => {
                Box::new(TermQuery::new(Term::from_field_text(fields.uscc, uscc.as_str()), IndexRecordOption::Basic))
                    as Box<dyn Query>
            }
            Err(_) => text_query(fields.text, query)?,
        };
        let scope = match actor.role {
            Role::Command | Role::Leadership => Term::from_field_u64(fields.scope, u64::from(actor.bureau.as_u32())),
            Role::Operator => Term::from_field_u64(fields.assignee, u64::from(actor.bureau.as_u32())),
            // Machine roles and other departments' inspectors do not search; they see nothing.
            Role::System | Role::Peer | Role::Source | Role::Department => {
                return Ok(Hits { tasks: Vec::new(), more: false, indexed_through: self.indexed_through() })
            }
        };
        let query = BooleanQuery::new(vec![
            (Occur::Must, matching),
            (Occur::Must, Box::new(TermQuery::new(scope, IndexRecordOption::Basic))),
        ]);
        let searcher = self.inner.reader.searcher();
        let newest_first = TopDocs::with_limit(limit + 1).order_by_fast_field::<u64>("id", Order::Desc);
        let found = searcher.search(&query, &newest_first).map_err(|e| QueryError::Unreadable(e.to_string()))?;
        let more = found.len() > limit;
        let replica = store.read();
        let regions = replica.ledger.regions();
        let tasks = found
            .iter()
            .take(limit)
            .filter_map(|(id, _)| *id)
            .filter_map(|id| replica.ledger.task(TaskId(id)))
            .filter(|task| access::can_see(&regions, actor, task))
            .collect();
        Ok(Hits { tasks, more, indexed_through: self.indexed_through() })
    }
}

/// The query for words and fragments: every whitespace-separated part must occur, each as a
/// phrase of its bigrams.
fn text_query(field: Field, query: &str) -> Result<Box<dyn Query>, QueryError> {
    let mut parts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for part in query.split_whitespace() {
        let terms: Vec<Term> =
            tokenizer::tokens(part).into_iter().map(|(_, _, text)| Term::from_field_text(field, &text)).collect();
        // A lone Chinese character is too common to search for.
        let lone_character = part.chars().count() == 1 && terms.len() == 1;
        let query: Box<dyn Query> = match terms.len() {
            0 => continue,
            _ if lone_character => return Err(QueryError::TooShort),
            1 => Box::new(TermQuery::new(terms.into_iter().next().expect("one"), IndexRecordOption::Basic)),
            _ => Box::new(PhraseQuery::new(terms)),
        };
        parts.push((Occur::Must, query));
    }
    if parts.is_empty() {
        return Err(QueryError::TooShort);
    }
    Ok(Box::new(BooleanQuery::new(parts)))
}

/// The document of a task.
fn document(fields: &Fields, regions: &ledger::Regions, task: &Task) -> TantivyDocument {
    let mut document = TantivyDocument::new();
    document.add_u64(fields.id, task.id.0);
    for bureau in cluster::store::index::listed_under(regions, task) {
        document.add_u64(fields.scope, u64::from(bureau.as_u32()));
    }
    // The units whose operators see the task (its assignee, for a task as before stations).
    for unit in ledger::access::operator_units(task) {
        document.add_u64(fields.assignee, u64::from(unit.as_u32()));
    }
    if let Some(uscc) = &task.subject.uscc {
        document.add_text(fields.uscc, uscc.as_str());
    }
    document.add_text(fields.text, &task.title);
    document.add_text(fields.text, &task.subject.name);
    document
}

/// The position every change up to is in an index at `cursor`.
fn indexed(cursor: ChangesCursor) -> u64 {
    match cursor.after {
        None => cursor.since,
        Some(_) => cursor.since.saturating_sub(1),
    }
}

/// Where an index's last commit reached; an index of another version is refused.
fn committed_cursor(index: &Index) -> anyhow::Result<ChangesCursor> {
    let Some(payload) = index.load_metas()?.payload else { return Ok(ChangesCursor::default()) };
    let words: Vec<u64> = payload.split(' ').map(str::parse).collect::<Result<_, _>>().unwrap_or_default();
    match words[..] {
        [version, since, after] if version == u64::from(SEARCH_VERSION) => {
            Ok(ChangesCursor { since, after: (after > 0).then_some(TaskId(after)) })
        }
        _ => anyhow::bail!("an index of another version ({payload:?})"),
    }
}
