//! The whole intent path: bytes -> MachineConfig -> routes. Any input gives an
//! intent or an error, never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use routewarden::intent::{self, Options};

fuzz_target!(|data: &[u8]| {
    let options = Options { node_name: Some("worker-0".into()), ..Options::default() };
    if let Ok(intent) = intent::from_bytes(data, &options) {
        let _ = serde_json::to_string(&intent);
    }
});
