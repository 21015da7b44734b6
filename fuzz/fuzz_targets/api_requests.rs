//! Every REST request decoder on the same bytes: task creation, task actions, complaints, intake
//! batches and list queries. A panic anywhere is a finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    node::fuzz_entry::create_task(bytes);
    node::fuzz_entry::task_action(bytes);
    node::fuzz_entry::complaint(bytes);
    node::fuzz_entry::intake_batch(bytes);
    node::fuzz_entry::list_query(bytes);
});
