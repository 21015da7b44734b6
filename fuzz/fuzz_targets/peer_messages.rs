//! What a linked group may send (`/federation/v1/deliver` and `/report` bodies), decoded and
//! applied to a ledger with a received dispatch and a handed-over task. A panic, or a ledger
//! that breaks its invariants after an input, is a finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    node::fuzz_entry::peer_messages(bytes);
});
