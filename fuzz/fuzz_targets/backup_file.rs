//! A backup file from wherever backups are kept, checked as `xietong admin restore` checks it,
//! and the same bytes decoded as a task and a reporter. A panic is a finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    node::fuzz_entry::backup_file(bytes);
});
