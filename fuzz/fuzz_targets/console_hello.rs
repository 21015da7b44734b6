//! The console's WebSocket hello decoder. A panic is a finding.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    node::fuzz_entry::console_hello(bytes);
});
