//! Policy loading from arbitrary bytes: never a panic; a policy that loads, saved and
//! loaded again, is the same policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_cors::Policy;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let Ok(policy) = Policy::from_toml_str(text) else { return };
    let saved = policy.to_toml_string();
    let again = Policy::from_toml_str(&saved).expect("a saved policy loads");
    assert_eq!(policy.settings(), again.settings(), "load -> save -> load keeps the policy");
});
