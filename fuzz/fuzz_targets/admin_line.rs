//! The admin protocol's line decoder: never a panic; a request that decodes re-encodes to
//! the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_cors::protocol::{MAX_LINE, Request};

fuzz_target!(|line: &[u8]| {
    if line.len() > MAX_LINE {
        return; // the server refuses longer lines before decoding
    }
    let Ok(request) = serde_json::from_slice::<Request>(line) else { return };
    let encoded = serde_json::to_vec(&request).expect("requests encode");
    let decoded: Request = serde_json::from_slice(&encoded).expect("encoded requests decode");
    assert_eq!(request, decoded);
});
